/**
 * Replication benchmark (issue 8): what `replicas: 2` costs and what a backend failure costs a client.
 *
 *   node --import tsx bench/replication.ts [--quick] [--db postgres|embedded] [--seconds N] [--rounds N]
 *        [--concurrency N] [--iterations N] [--rss-size SIZE] [--failover-rounds N] [--stall-rounds N]
 *        [--stall-size SIZE] [--only throughput,memory,failover,stall]
 *
 * One orchestrator child over two s3rver processes (bench/replication-env.ts), two buckets over the same
 * backends: `rep1` (replicas 1) and `rep2` (replicas 2). Sections:
 * 1. Throughput of PUT and GET at 4 KiB and 1 MiB (timed loops, `--concurrency` in flight) and 64 MiB
 *    (sequential iterations), the two buckets alternating in every round. The ratio column is rep2's MB/s
 *    over rep1's; `time ×` is its inverse (what fan-out costs in time; 2.00 would be two serial uploads).
 * 2. Peak RSS of the orchestrator process during a streamed PUT of `--rss-size` (default 1 GiB) to rep1 and
 *    to rep2: VmRSS of the child read from /proc every 20 ms by this process, and the child's own VmHWM.
 * 3. Failover before the first byte: per round, time-to-first-byte of GETs of a 2-copy object while both
 *    backends live, then s3-a (holding the copy read first) is SIGKILLed and GETs are timed again: the
 *    first one pays the failover (connection refused, then the copy on s3-b); later ones go to s3-b first
 *    once s3-a's breaker opened. s3-a is restarted between rounds and its breaker allowed to close.
 * 4. Mid-stream stall: a GET of `--stall-size` (default 256 MiB) from rep2 read by this process chunk by
 *    chunk; at a quarter of the body s3-a (serving it) is SIGKILLed; the read resumes from s3-b at the
 *    exact offset. Reported: the longest gap between two chunks after the kill vs a control GET without a
 *    kill (alternating), and that the body is byte-exact.
 *
 * Clients send no checksums (`when-required`), so figures measure the orchestrator and not the SDK's CRC.
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseSize } from '../src/config/units.js';
import { makeClient, payloadDigest, putStream } from './client.js';
import { iterations, megabytesPerSecond, merge, populate, timed, type LoopSpec, type Measurement, type Operation } from './measure.js';
import { formatSize, rssTable, table, throughputTable, type Row, type RssRow, type Side } from './report.js';
import { rssSampler, startReplicationEnv, type ReplicationEnv } from './replication-env.js';
import type { Target } from './setup.js';

const LARGE = 64 * 1024 * 1024;
/** What `--only` may name (default: all). */
const SECTIONS = ['throughput', 'memory', 'failover', 'stall'] as const;
const SMALL_KEYS = 64;

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      db: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      concurrency: { type: 'string' },
      iterations: { type: 'string' },
      'rss-size': { type: 'string' },
      'failover-rounds': { type: 'string' },
      'stall-rounds': { type: 'string' },
      'stall-size': { type: 'string' },
      only: { type: 'string' },
    },
  });
  const only = new Set((values.only ?? SECTIONS.join(',')).split(',').map((x) => x.trim()));
  for (const x of only) if (!(SECTIONS as readonly string[]).includes(x)) throw new Error(`--only: ${JSON.stringify(x)} is not one of ${SECTIONS.join(', ')}`);
  const quick = values.quick ?? false;
  const num = (name: string, v: string | undefined, dflt: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const db = values.db ?? 'postgres';
  if (db !== 'postgres' && db !== 'embedded') throw new Error(`--db must be postgres or embedded, got ${JSON.stringify(db)}`);
  return {
    quick,
    db: db as 'postgres' | 'embedded',
    sizes: [4096, 1024 * 1024, LARGE],
    seconds: num('seconds', values.seconds, quick ? 2 : 9),
    rounds: Math.floor(num('rounds', values.rounds, quick ? 1 : 3)),
    concurrency: Math.floor(num('concurrency', values.concurrency, 8)),
    iterations: Math.floor(num('iterations', values.iterations, quick ? 1 : 3)),
    rssSize: parseSize(values['rss-size'] ?? (quick ? '256MiB' : '1GiB')),
    failoverRounds: Math.floor(num('failover-rounds', values['failover-rounds'], quick ? 3 : 10)),
    stallRounds: Math.floor(num('stall-rounds', values['stall-rounds'], quick ? 1 : 3)),
    stallSize: parseSize(values['stall-size'] ?? (quick ? '64MiB' : '256MiB')),
    only,
  };
}
type Options = ReturnType<typeof options>;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const R1: Side = { label: 'replicas=1', baseline: true };
const R2: Side = { label: 'replicas=2', baseline: false };

/** Median (nearest rank) of a list; NaN when empty. */
function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.ceil(s.length / 2) - 1]!;
}
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');

/**
 * {@link populate}, tried up to three times: on this loaded machine a PUT now and then meets a keep-alive
 * socket the backend s3rver is closing (EPIPE); populating is set-up, not a figure (the loops count errors).
 */
async function populateRetrying(spec: LoopSpec, concurrency: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await populate(spec, concurrency);
    } catch (err) {
      if (attempt >= 3) throw err;
      log(`populate ${spec.prefix} failed (${(err as Error).message}); again`);
    }
  }
}

/** Section 1: alternated rounds of rep1 and rep2 per operation and size. */
async function throughput(env: ReplicationEnv, opts: Options, clients: Map<Target, S3Client>): Promise<Row[]> {
  const rows: Row[] = [];
  const sides: Array<[Side, Target]> = [
    [R1, env.r1],
    [R2, env.r2],
  ];
  const spec = (t: Target, op: Operation, size: number): LoopSpec => ({
    client: clients.get(t)!,
    target: t,
    op,
    size,
    prefix: `tp-${size}-`,
    keys: size >= LARGE ? 1 : SMALL_KEYS,
  });
  for (const size of opts.sizes) {
    const large = size >= LARGE;
    for (const [, t] of sides) await populateRetrying(spec(t, 'PUT', size), large ? 1 : opts.concurrency);
    for (const op of ['PUT', 'GET'] as const) {
      const taken: Measurement[][] = [[], []];
      const rounds = large ? opts.iterations : opts.rounds;
      for (let r = 0; r < rounds; r++) {
        // Alternate which side goes first, so a drift of the machine's load hits both alike.
        const order = r % 2 === 0 ? [0, 1] : [1, 0];
        for (const i of order) {
          const [side, t] = sides[i]!;
          log(`${op} ${formatSize(size)} ${side.label} (round ${r + 1}/${rounds})`);
          taken[i]!.push(await (large ? iterations(spec(t, op, size), 1) : timed(spec(t, op, size), opts.concurrency, opts.seconds / rounds)));
        }
      }
      rows.push({ op, size, side: R1, m: merge(taken[0]!) }, { op, size, side: R2, m: merge(taken[1]!) });
    }
  }
  return rows;
}

/** Section 2: the orchestrator's RSS during one streamed PUT per bucket. */
async function memory(env: ReplicationEnv, opts: Options, clients: Map<Target, S3Client>): Promise<{ rows: RssRow[]; external: number[] }> {
  const rows: RssRow[] = [];
  const external: number[] = [];
  for (const [side, t] of [
    [R1, env.r1],
    [R2, env.r2],
  ] as const) {
    log(`PUT ${formatSize(opts.rssSize)} ${side.label} (memory)`);
    await env.child.mark();
    const sampler = rssSampler(env.child.pid);
    const m = await iterations({ client: clients.get(t)!, target: t, op: 'PUT', size: opts.rssSize, prefix: 'rss-', keys: 1 }, 1);
    const { peak } = await sampler.stop();
    rows.push({ label: side.label, op: 'PUT', size: opts.rssSize, m, rss: await env.child.report() });
    external.push(peak);
    await clients.get(t)!.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: 'rss-0' }));
  }
  return { rows, external };
}

/** Time to the first body byte of a GET, ms (the body is then read to its end and checked). */
async function ttfb(client: S3Client, t: Target, key: string, size: number): Promise<number> {
  const t0 = performance.now();
  const res = await client.send(new GetObjectCommand({ Bucket: t.bucket, Key: key }));
  const it = (res.Body as Readable)[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  const at = performance.now() - t0;
  const h = createHash('sha256');
  let n = 0;
  for (let r = first; !r.done; r = await it.next()) {
    h.update(r.value);
    n += r.value.length;
  }
  if (n !== size || h.digest('hex') !== payloadDigest(size)) throw new Error(`GET ${key}: body differs from what was PUT`);
  return at;
}

/**
 * PUTs `key` to rep2 until its version has both copies: a PUT whose copy on one backend failed (this loaded
 * machine now and then loses a keep-alive socket) is acknowledged with one copy and repaired later, and a
 * failure figure needs the copy that survives the kill.
 */
async function putTwoCopies(env: ReplicationEnv, client: S3Client, key: string, size: number): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      await putStream(client, env.r2, key, size);
    } catch (err) {
      log(`PUT ${key} failed (${(err as Error).message}); again`);
      continue;
    }
    if ((await env.liveCopies(env.r2.bucket, key)) === 2) return;
    log(`${key} has fewer than 2 copies after PUT ${attempt}; again`);
  }
  throw new Error(`${key}: no PUT got both copies`);
}

interface FailoverResult {
  size: number;
  healthy: number[];
  first: number[];
  later: number[];
  /** GETs that failed (the first error kept). */
  errors: number;
  firstError?: string;
}

/** {@link ttfb} into `into`; a failure is counted on `f` instead of ending the run. */
async function timeInto(f: FailoverResult, into: number[], client: S3Client, t: Target): Promise<void> {
  try {
    into.push(await ttfb(client, t, `fo-${f.size}`, f.size));
  } catch (err) {
    f.errors++;
    f.firstError ??= (err as Error).message;
  }
}

/** Section 3: TTFB with both copies live, of the first GET after s3-a died, and of the next ones. */
async function failover(env: ReplicationEnv, opts: Options, client: S3Client): Promise<FailoverResult[]> {
  const [a] = env.backends;
  const out: FailoverResult[] = [];
  for (const size of [4096, 1024 * 1024]) {
    await putTwoCopies(env, client, `fo-${size}`, size);
    out.push({ size, healthy: [], first: [], later: [], errors: 0 });
  }
  for (let r = 0; r < opts.failoverRounds; r++) {
    log(`failover round ${r + 1}/${opts.failoverRounds}`);
    if (!(await env.waitHealthy(a.name))) throw new Error(`${a.name} did not become healthy again`);
    for (const f of out) if ((await env.liveCopies(env.r2.bucket, `fo-${f.size}`)) !== 2) await putTwoCopies(env, client, `fo-${f.size}`, f.size);
    for (const f of out) for (let i = 0; i < 5; i++) await timeInto(f, f.healthy, client, env.r2);
    await a.kill();
    // Alternate the size that pays the failover (only the first GET after the kill does).
    const order = r % 2 === 0 ? out : [...out].reverse();
    await timeInto(order[0]!, order[0]!.first, client, env.r2);
    for (const f of order) for (let i = 0; i < 4; i++) await timeInto(f, f.later, client, env.r2);
    await a.restart();
  }
  return out;
}

interface StallRound {
  kill: boolean;
  seconds: number;
  /** Longest gap between two chunks before the kill point (a quarter of the body), ms. */
  gapBefore: number;
  /** Longest gap between two chunks after it, ms. */
  gapAfter: number;
  /** p99 gap over the whole body, ms. */
  p99: number;
  exact: boolean;
}

/** One GET of the stall object, killing s3-a at a quarter of the body when `kill`. */
async function stallRound(env: ReplicationEnv, client: S3Client, key: string, size: number, kill: boolean): Promise<StallRound> {
  const [a] = env.backends;
  if (!(await env.waitHealthy(a.name))) throw new Error(`${a.name} did not become healthy again`);
  if ((await env.liveCopies(env.r2.bucket, key)) !== 2) await putTwoCopies(env, client, key, size);
  const t0 = performance.now();
  const res = await client.send(new GetObjectCommand({ Bucket: env.r2.bucket, Key: key }));
  const h = createHash('sha256');
  let n = 0;
  let last = performance.now();
  let killAt = Number.POSITIVE_INFINITY;
  let gapBefore = 0;
  let gapAfter = 0;
  const gaps: number[] = [];
  let killing: Promise<void> | undefined;
  for await (const c of res.Body as Readable) {
    const now = performance.now();
    const gap = now - last;
    last = now;
    gaps.push(gap);
    if (now > killAt) gapAfter = Math.max(gapAfter, gap);
    else gapBefore = Math.max(gapBefore, gap);
    h.update(c as Buffer);
    n += (c as Buffer).length;
    if (n >= size / 4 && killAt === Number.POSITIVE_INFINITY) {
      killAt = performance.now();
      // SIGKILL the s3rver serving this body (s3-a: read first), without waiting here.
      if (kill) killing = a.kill();
    }
  }
  await killing;
  const seconds = (performance.now() - t0) / 1000;
  gaps.sort((x, y) => x - y);
  const p99 = gaps[Math.min(gaps.length - 1, Math.ceil(gaps.length * 0.99) - 1)] ?? Number.NaN;
  if (kill) await a.restart();
  return { kill, seconds, gapBefore, gapAfter, p99, exact: n === size && h.digest('hex') === payloadDigest(size) };
}

/** Section 4: alternating control and kill rounds. */
async function stall(env: ReplicationEnv, opts: Options, client: S3Client): Promise<StallRound[]> {
  const key = 'stall';
  await env.waitHealthy(env.backends[0].name);
  await putTwoCopies(env, client, key, opts.stallSize);
  const out: StallRound[] = [];
  for (let r = 0; r < opts.stallRounds; r++) {
    for (const kill of r % 2 === 0 ? [false, true] : [true, false]) {
      log(`stall round ${r + 1}/${opts.stallRounds} (${kill ? 'kill' : 'control'})`);
      out.push(await stallRound(env, client, key, opts.stallSize, kill));
    }
  }
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const loadBefore = os.loadavg();
  const env = await startReplicationEnv({ db: opts.db });
  const clients = new Map<Target, S3Client>([
    [env.r1, makeClient(env.r1, 'when-required', opts.concurrency * 2)],
    [env.r2, makeClient(env.r2, 'when-required', opts.concurrency * 2)],
  ]);
  const started = new Date();
  try {
    const tp = opts.only.has('throughput') ? await throughput(env, opts, clients) : [];
    const mem = opts.only.has('memory') ? await memory(env, opts, clients) : { rows: [], external: [] };
    // The failure sections use a client of their own (no keep-alive socket shared with the loops above).
    const probe = makeClient(env.r2, 'when-required', 2);
    const fo = opts.only.has('failover') ? await failover(env, opts, probe) : [];
    const st = opts.only.has('stall') ? await stall(env, opts, probe) : [];
    probe.destroy();
    const loadAfter = os.loadavg();
    const out: string[] = [];
    out.push(`# Replication benchmark (${started.toISOString()})`, '');
    out.push(
      `machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; load average (1/5/15 min) ` +
        `before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
    );
    out.push(
      `metadata: ${opts.db}; objects < ${formatSize(LARGE)}: ${opts.concurrency} in flight, ${opts.seconds}s per figure in ${opts.rounds} ` +
        `alternating rounds; ${formatSize(LARGE)}: ${opts.iterations} sequential iterations per side, alternating`,
      '',
    );
    out.push('## Throughput (ratio = replicas=2 MB/s ÷ replicas=1 MB/s)', '', throughputTable(tp), '');
    const timeRows = tp
      .filter((r) => !r.side.baseline)
      .map((r) => {
        const base = tp.find((b) => b.side.baseline && b.op === r.op && b.size === r.size)!;
        const x = megabytesPerSecond(r.m) > 0 ? megabytesPerSecond(base.m) / megabytesPerSecond(r.m) : Number.NaN;
        return [r.op, formatSize(r.size), Number.isFinite(x) ? x.toFixed(2) : '-'];
      });
    out.push('Time per byte, replicas=2 over replicas=1 (2.00 = as slow as two uploads one after the other):', '');
    out.push(table(['op', 'size', 'time ×'], timeRows, 2), '');
    out.push(`## Orchestrator RSS during one streamed PUT of ${formatSize(opts.rssSize)} (MiB)`, '', rssTable(mem.rows), '');
    out.push(
      table(
        ['side', 'peak VmRSS read from /proc by the bench (MiB)'],
        mem.rows.map((r, i) => [r.label, (mem.external[i]! / 2 ** 20).toFixed(1)]),
      ),
      '',
    );
    out.push('## Failover before the first byte (s3-a SIGKILLed; time to first byte, ms, median / max)', '');
    out.push(
      table(
        ['size', 'both live (n)', 'both live', 'first GET after the kill (n)', 'first GET after the kill', 'added', 'next GETs (n)', 'next GETs', 'failed GETs'],
        fo.map((f) => [
          formatSize(f.size),
          String(f.healthy.length),
          `${ms(median(f.healthy))} / ${ms(Math.max(...f.healthy))}`,
          String(f.first.length),
          `${ms(median(f.first))} / ${ms(Math.max(...f.first))}`,
          ms(median(f.first) - median(f.healthy)),
          String(f.later.length),
          `${ms(median(f.later))} / ${ms(Math.max(...f.later))}`,
          f.errors === 0 ? '0' : `${f.errors} (${f.firstError ?? ''})`,
        ]),
      ),
      '',
    );
    out.push(`## Mid-stream stall (GET of ${formatSize(opts.stallSize)} from rep2; s3-a SIGKILLed at a quarter of the body)`, '');
    out.push(
      table(
        ['round', 'seconds', 'MB/s', 'longest gap before (ms)', 'longest gap after (ms)', 'p99 gap (ms)', 'byte-exact'],
        st.map((s) => [
          s.kill ? 'kill' : 'control',
          s.seconds.toFixed(2),
          (opts.stallSize / 1e6 / s.seconds).toFixed(1),
          ms(s.gapBefore),
          ms(s.gapAfter),
          ms(s.p99),
          s.exact ? 'yes' : 'NO',
        ]),
      ),
      '',
    );
    process.stdout.write(`${out.join('\n')}\n`);
    const failures = [...tp.filter((r) => r.m.errors > 0).map((r) => `${r.op} ${formatSize(r.size)} ${r.side.label}: ${r.m.errors} errors`), ...st.filter((s) => !s.exact).map(() => 'a stall GET was not byte-exact'), ...fo.filter((f) => f.errors > 0).map((f) => `failover ${formatSize(f.size)}: ${f.errors} failed GETs`)];
    if (failures.length > 0) {
      process.stderr.write(`${failures.join('\n')}\n`);
      process.exitCode = 1;
    }
  } finally {
    for (const c of clients.values()) c.destroy();
    await env.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
