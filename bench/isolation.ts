/**
 * Test isolation check: does every test of a file pass when it runs ALONE?
 *
 *   node --import tsx bench/isolation.ts [--only REGEX] [--retries N] [--timeout SECONDS] [--json OUT] FILE...
 *
 * For each file (one at a time, never in parallel): one normal run with the TAP reporter lists its tests
 * (`node --import tsx --test --test-reporter=tap FILE`), then each test that passed there runs again alone
 * with `--test-name-pattern='^<escaped name>$'`. The file's before/after hooks still run; what this catches
 * is a test that relies on objects, counters or other state left by an earlier test of the same file, or on
 * running in a particular order. A test that fails alone is retried alone (`--retries`, default 1) so a
 * flaky test is told apart from an order-dependent one. `--only REGEX` runs alone only the tests whose
 * `suite > … > name` matches (the full run still runs them all), e.g. to re-check the tests just fixed.
 *
 * Node 20 matches `--test-name-pattern` against a test's own name, not its suite's: tests sharing a name
 * in one file (shared suites run once per backend, loops over engines) run together, and are reported as
 * such. A test with subtests is one unit (its subtests cannot run without it).
 *
 * Exit code: 0 if every test passed alone, 1 otherwise. See docs/testing.md ("Test isolation").
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface TapNode {
  name: string; // unescaped
  ok: boolean;
  directive: 'skip' | 'todo' | null;
  directiveReason: string;
  suite: boolean;
  error: string; // first lines of the YAML `error:` field
  location: string;
  children: TapNode[];
}

/** Undoes the TAP reporter's escaping of `\` and `#` (a newline shows as `\n`, indistinguishable from a literal backslash-n). */
function tapUnescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => c);
}

/** Splits `NAME # SKIP reason` at the first unescaped ` # `. */
function splitDirective(rest: string): { name: string; directive: TapNode['directive']; reason: string } {
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '\\') {
      i++;
      continue;
    }
    if (rest[i] === '#' && rest[i - 1] === ' ') {
      const d = rest.slice(i + 1).trim();
      const m = /^(SKIP|TODO)\b\s*(.*)$/i.exec(d);
      if (m) {
        return {
          name: tapUnescape(rest.slice(0, i - 1)),
          directive: m[1]!.toLowerCase() as 'skip' | 'todo',
          reason: m[2] ?? '',
        };
      }
    }
  }
  return { name: tapUnescape(rest), directive: null, reason: '' };
}

/** Parses node:test's TAP output (4 spaces per nesting level; a YAML block after each result line). */
function parseTap(text: string): TapNode[] {
  const lines = text.split('\n');
  const pending: TapNode[][] = [[]]; // results seen per depth, waiting for their parent's result line
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^( *)(ok|not ok) \d+ - (.*)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    if (!Number.isInteger(depth)) continue;
    const { name, directive, reason } = splitDirective(m[3]!);
    const node: TapNode = {
      name,
      ok: m[2] === 'ok',
      directive,
      directiveReason: reason,
      suite: false,
      error: '',
      location: '',
      children: pending[depth + 1] ?? [],
    };
    pending[depth + 1] = [];
    // The YAML block: `  ---` … `  ...` indented 2 more than the result line.
    const ind = m[1]! + '  ';
    if (lines[i + 1] === `${ind}---`) {
      let j = i + 2;
      for (; j < lines.length && lines[j] !== `${ind}...`; j++) {
        const y = lines[j]!;
        if (y === `${ind}type: 'suite'`) node.suite = true;
        const loc = /^ *location: '(.*)'$/.exec(y);
        if (loc && y.startsWith(`${ind}location:`)) node.location = loc[1]!;
        if (y.startsWith(`${ind}error: `)) {
          const v = y.slice(`${ind}error: `.length);
          if (v === '|-' || v === '>-' || v === '|' || v === '>') {
            const body: string[] = [];
            for (let k = j + 1; k < lines.length && lines[k]!.startsWith(`${ind}  `) && body.length < 3; k++) {
              if (lines[k]!.trim()) body.push(lines[k]!.trim());
            }
            node.error = body.join(' / ');
          } else {
            node.error = v.replace(/^'(.*)'$/, '$1');
          }
        }
      }
      i = j;
    }
    (pending[depth] ??= []).push(node);
  }
  return pending[0] ?? [];
}

interface Leaf {
  path: string[]; // suite names then the test's name
  node: TapNode;
}

/** Tests (not suites), with their suite path; a test with subtests counts as one. */
function leaves(nodes: TapNode[], path: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const n of nodes) {
    if (n.suite) out.push(...leaves(n.children, [...path, n.name]));
    else out.push({ path: [...path, n.name], node: n });
  }
  return out;
}

/** Every failing node anywhere in the tree (hooks failing show as their suite failing). */
function failures(nodes: TapNode[], path: string[] = []): Leaf[] {
  const out: Leaf[] = [];
  for (const n of nodes) {
    const p = [...path, n.name];
    if (!n.ok && n.directive !== 'todo') {
      // A suite failing only because a subtest failed adds nothing.
      const childFailed = n.children.some((c) => !c.ok && c.directive !== 'todo');
      if (!(n.suite && childFailed)) out.push({ path: p, node: n });
    }
    out.push(...failures(n.children, p));
  }
  return out;
}

/** Suites skipped whole (e.g. a client not installed), with their reason: their tests are not listed. */
function skippedSuites(nodes: TapNode[], path: string[] = []): string[] {
  return nodes.flatMap((n) =>
    n.suite && n.directive === 'skip'
      ? [`${[...path, n.name].join(' > ')} (${n.directiveReason})`]
      : skippedSuites(n.children, [...path, n.name]),
  );
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

interface RunResult {
  code: number | null;
  tap: TapNode[];
  stdout: string;
  stderr: string;
  seconds: number;
}

function runNode(file: string, extra: string[], timeoutSeconds: number): Promise<RunResult> {
  const args = ['--import', 'tsx', '--test', '--test-reporter=tap', ...extra, file];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[isolation] killed after ${timeoutSeconds} s`;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the runner and the test process it started
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutSeconds * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, tap: parseTap(stdout), stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

type Verdict = 'pass' | 'fail' | 'flaky' | 'not-run';

interface TestReport {
  test: string; // suite > … > name
  sharedName: number; // how many tests of the file ran with this one (same name)
  verdict: Verdict;
  attempts: { ok: boolean; reason: string; seconds: number }[];
}

interface FileReport {
  file: string;
  fullRun: { code: number | null; seconds: number; tests: number; failed: string[]; skipped: number };
  tests: TestReport[];
}

/** Judges one alone-run: every test with the target name ran and passed, nothing else failed, exit 0. */
function judge(r: RunResult, name: string): { ok: boolean; reason: string } {
  const ran = leaves(r.tap).filter((l) => l.node.name === name && l.node.directive !== 'skip');
  const failed = failures(r.tap);
  if (failed.length > 0) {
    const f = failed[0]!;
    const where = f.node.location ? ` (${f.node.location.replace(/^.*\/test\//, 'test/')})` : '';
    return { ok: false, reason: `${f.path.join(' > ')}: ${f.node.error || 'failed'}${where}` };
  }
  if (ran.length === 0) {
    const tail = r.stderr.trim().split('\n').slice(-3).join(' / ');
    return { ok: false, reason: `did not run (exit ${r.code})${tail ? `: ${tail}` : ''}` };
  }
  if (r.code !== 0) return { ok: false, reason: `exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' / ')}` };
  return { ok: true, reason: '' };
}

async function checkFile(file: string, retries: number, timeout: number, only: RegExp | undefined, log: (s: string) => void): Promise<FileReport> {
  log(`\n== ${file}: full run`);
  const full = await runNode(file, [], timeout);
  const all = leaves(full.tap);
  const fullFailed = failures(full.tap).map((f) => f.path.join(' > '));
  const skipped = all.filter((l) => l.node.directive !== null).length;
  log(`   ${all.length} tests, ${fullFailed.length} failing, ${skipped} skipped/todo, exit ${full.code}, ${full.seconds.toFixed(1)} s`);
  for (const f of fullFailed) log(`   FAILS IN THE FULL RUN: ${f}`);
  for (const sk of skippedSuites(full.tap)) log(`   suite skipped: ${sk}`);
  const report: FileReport = {
    file,
    fullRun: { code: full.code, seconds: full.seconds, tests: all.length, failed: fullFailed, skipped },
    tests: [],
  };
  const byName = new Map<string, Leaf[]>();
  for (const l of all) byName.set(l.node.name, [...(byName.get(l.node.name) ?? []), l]);
  const done = new Set<string>();
  for (const l of all) {
    const name = l.node.name;
    if (done.has(name)) continue;
    const same = byName.get(name)!;
    if (only && !same.some((s) => only.test(s.path.join(' > ')))) continue;
    done.add(name);
    const label = same.length > 1 ? `${name} (×${same.length}, run together)` : l.path.join(' > ');
    if (same.every((s) => !s.node.ok || s.node.directive !== null)) {
      log(`   -    ${label}: not run alone (failed or skipped in the full run)`);
      continue;
    }
    if (name.includes('\\')) log(`   note: '${name}' contains a backslash; TAP escaping may make its pattern miss`);
    const pattern = `^${escapeRegExp(name)}$`;
    const attempts: TestReport['attempts'] = [];
    for (let a = 0; a <= retries; a++) {
      const r = await runNode(file, [`--test-name-pattern=${pattern}`], timeout);
      const j = judge(r, name);
      attempts.push({ ...j, seconds: r.seconds });
      if (j.ok) break;
    }
    const last = attempts[attempts.length - 1]!;
    const verdict: Verdict = attempts[0]!.ok
      ? 'pass'
      : last.ok
        ? 'flaky'
        : attempts.every((x) => x.reason.startsWith('did not run'))
          ? 'not-run'
          : 'fail';
    report.tests.push({ test: label, sharedName: same.length, verdict, attempts });
    const secs = attempts.map((x) => x.seconds.toFixed(1)).join('+');
    log(`   ${verdict.toUpperCase().padEnd(4)} ${label} [${secs} s]${verdict === 'pass' ? '' : `\n        ${attempts.map((x) => x.reason || 'ok').join('\n        ')}`}`);
  }
  return report;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      only: { type: 'string' },
      retries: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '600' },
      json: { type: 'string' },
    },
  });
  if (positionals.length === 0) {
    console.error('usage: node --import tsx bench/isolation.ts [--only REGEX] [--retries N] [--timeout SECONDS] [--json OUT] FILE...');
    process.exit(2);
  }
  const log = (s: string) => console.log(s);
  const reports: FileReport[] = [];
  for (const file of positionals) {
    const only = values.only === undefined ? undefined : new RegExp(values.only);
    reports.push(await checkFile(file, Number(values.retries), Number(values.timeout), only, log));
    if (values.json) writeFileSync(values.json, JSON.stringify(reports, null, 2));
  }
  const bad = reports.flatMap((r) => r.tests.filter((t) => t.verdict !== 'pass').map((t) => `${r.file}: ${t.test}: ${t.verdict}`));
  const fullBad = reports.flatMap((r) => r.fullRun.failed.map((f) => `${r.file}: ${f}: fails in the full run`));
  console.log(`\n== summary: ${reports.reduce((n, r) => n + r.tests.length, 0)} tests run alone in ${reports.length} file(s)`);
  for (const b of [...bad, ...fullBad]) console.log(`   ${b}`);
  if (bad.length === 0 && fullBad.length === 0) console.log('   every test passed alone');
  process.exit(bad.length + fullBad.length === 0 ? 0 : 1);
}

await main();
