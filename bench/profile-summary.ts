/**
 * Summarises a V8 `.cpuprofile` (as written by `npm run bench -- --cpu-prof DIR`): self time by function
 * and by file, so the hot spots of the orchestrator process can be named without opening DevTools.
 *
 *   node --import tsx bench/profile-summary.ts DIR/CPU.*.cpuprofile [--top 25] [--stacks REGEX]
 *
 * `--stacks REGEX` adds a table of the call stacks (innermost first, up to 8 frames) under the functions
 * whose `name file:line` matches REGEX, e.g. `--stacks '^update '` to see who hashes.
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

function frameName(n: ProfileNode): string {
  return `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
}

/** Frames kept per stack in the --stacks table. */
const STACK_DEPTH = 8;

function tallyProfile(p: Profile, byFn: Tally, byFile: Tally, stacks?: { re: RegExp; t: Tally }): number {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
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
    if (stacks && stacks.re.test(frameName(n))) {
      const frames: string[] = [];
      for (let f: ProfileNode | undefined = n; f && frames.length < STACK_DEPTH; f = parent.get(f.id)) {
        if (f.callFrame.functionName !== '(root)') frames.push(frameName(f));
      }
      add(stacks.t, frames.join(' ← '), us);
    }
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
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, stacks: { type: 'string' } } });
  if (positionals.length === 0) throw new Error('usage: profile-summary.ts FILE.cpuprofile… [--top N] [--stacks REGEX]');
  const stacks = values.stacks ? { re: new RegExp(values.stacks), t: new Map() as Tally } : undefined;
  const n = Number(values.top ?? 25);
  const byFn: Tally = new Map();
  const byFile: Tally = new Map();
  let total = 0;
  for (const f of positionals) total += tallyProfile(JSON.parse(readFileSync(f, 'utf8')) as Profile, byFn, byFile, stacks);
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
      ...(stacks ? [`## Stacks under /${stacks.re.source}/ (innermost first)`, '', table(['stack', 'ms', '%'], top(stacks.t, total, n)), ''] : []),
    ].join('\n'),
  );
}

main();
