/**
 * Summarises a V8 `.cpuprofile` (as written by `npm run bench -- --cpu-prof DIR`): self time by function
 * and by file, so the hot spots of the orchestrator process can be named without opening DevTools.
 *
 *   node --import tsx bench/profile-summary.ts DIR/CPU.*.cpuprofile [--top 25]
 *
 * Several profiles (the child can write more than one, e.g. one per thread) are added together.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { table } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Microseconds of self time per key. */
type Tally = Map<string, number>;

function add(t: Tally, key: string, us: number): void {
  t.set(key, (t.get(key) ?? 0) + us);
}

/** Shortens node_modules and project paths so the table stays readable. */
function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + '/node_modules/'.length);
  const cwd = process.cwd() + path.sep;
  return p.startsWith(cwd) ? p.slice(cwd.length) : p;
}

function tallyProfile(p: Profile, byFn: Tally, byFile: Tally): number {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  let total = 0;
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    const n = nodes.get(id);
    if (!n) return;
    total += us;
    const file = shortUrl(n.callFrame.url);
    const fn = n.callFrame.functionName || '(anonymous)';
    add(byFn, `${fn} ${file}:${n.callFrame.lineNumber + 1}`, us);
    add(byFile, file, us);
  });
  return total;
}

function top(t: Tally, total: number, n: number): string[][] {
  return [...t.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => [k, (us / 1000).toFixed(0), ((100 * us) / total).toFixed(1)]);
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } });
  if (positionals.length === 0) throw new Error('usage: profile-summary.ts FILE.cpuprofile… [--top N]');
  const n = Number(values.top ?? 25);
  const byFn: Tally = new Map();
  const byFile: Tally = new Map();
  let total = 0;
  for (const f of positionals) total += tallyProfile(JSON.parse(readFileSync(f, 'utf8')) as Profile, byFn, byFile);
  const idle = (byFn.get('(idle) (native):0') ?? 0) / 1000;
  process.stdout.write(
    [
      `profiled ${(total / 1e6).toFixed(1)} s, of which idle ${(idle / 1000).toFixed(1)} s`,
      '',
      '## Self time by function',
      '',
      table(['function file:line', 'ms', '%'], top(byFn, total, n)),
      '',
      '## Self time by file',
      '',
      table(['file', 'ms', '%'], top(byFile, total, n)),
      '',
    ].join('\n'),
  );
}

main();
