/**
 * `npm run bench`: PUT and GET throughput directly against an s3rver and through the orchestrator (whose
 * only backend is a second s3rver), with the same client code on both sides, then the orchestrator's RSS
 * around a large PUT and GET. See docs/benchmarks.md for how to read the figures.
 *
 * Flags (each also read from the environment variable in brackets):
 *   --quick               small sizes only, 2 s per figure, no memory probe        [BENCH_QUICK=1]
 *   --sizes 4KiB,1MiB,…   object sizes (default 4KiB,1MiB,256MiB)                  [BENCH_SIZES]
 *   --seconds N           seconds per small-object figure (default 5)              [BENCH_SECONDS]
 *   --rounds N            rounds the seconds are split into, alternating sides     [BENCH_ROUNDS]
 *                         (default 3; 1 with --quick)
 *   --concurrency N       requests in flight for small objects (default 8)         [BENCH_CONCURRENCY]
 *   --iterations N        sequential transfers per large-object figure (default 3), [BENCH_ITERATIONS]
 *                         alternating sides
 *   --rss-size SIZE       object size of the memory probe, 0 = skip (default 1GiB)  [BENCH_RSS_SIZE]
 *   --db embedded|postgres  the orchestrator's metadata store (default embedded)   [BENCH_DB]
 *   --cpu-prof DIR        write a V8 CPU profile of the orchestrator process to DIR [BENCH_CPU_PROF]
 *   --only LIST           run only these sections: throughput, memory, multipart   [BENCH_ONLY]
 *                         (default all three)
 *   --multipart-sizes …   object sizes of the multipart case, 0 = skip             [BENCH_MULTIPART_SIZES]
 *                         (default 256MiB,1GiB; 32MiB with --quick)
 *   --part-size SIZE      multipart part size (default 16MiB)                      [BENCH_PART_SIZE]
 *   --part-concurrency N  UploadPart requests in flight (default 4)                [BENCH_PART_CONCURRENCY]
 *   --multipart-iterations N  uploads per size and side, alternating (default 2;   [BENCH_MULTIPART_ITERATIONS]
 *                         1 with --quick)
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/config/units.js';
import { snapshot, spent } from './cpu.js';
import { makeClient, PAYLOAD_CHUNK, payloadDigest, type ChecksumMode } from './client.js';
import { completeTable, multipartCpuTable, multipartRssTable, multipartThroughputTable, multipartVerdicts, runMultipart, type MultipartOptions } from './multipart.js';
import { iterations, megabytesPerSecond, merge, populate, timed, type LoopSpec, type Measurement, type Operation } from './measure.js';
import { cpuTable, formatSize, rssTable, throughputTable, type Row, type RssRow, type Side } from './report.js';
import { startBenchEnv, type BenchEnv, type Target } from './setup.js';

/** Objects at least this large are measured by sequential iterations rather than a timed concurrent loop. */
const LARGE = 64 * 1024 * 1024;
/** Targets stated in the brief, checked at the end of the run. */
const TARGET_RATIO = 0.9;
const TARGET_RSS_GROWTH = 64 * 1024 * 1024;
/** Distinct keys per small-object figure. */
const SMALL_KEYS = 64;
/** The sections a run can be limited to with --only. */
const SECTIONS = ['throughput', 'memory', 'multipart'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  quick: boolean;
  sizes: number[];
  seconds: number;
  concurrency: number;
  iterations: number;
  rounds: number;
  rssSize: number;
  db: 'embedded' | 'postgres';
  cpuProf?: string;
  only: ReadonlySet<Section>;
  multipart: MultipartOptions;
}

function sizeList(flag: string, arg: string): number[] {
  return arg
    .split(',')
    .map((s) => {
      try {
        return parseSize(s.trim());
      } catch (err) {
        throw new Error(`--${flag}: ${JSON.stringify(s)} ${(err as Error).message}`);
      }
    })
    .filter((n) => n > 0);
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      sizes: { type: 'string' },
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      iterations: { type: 'string' },
      rounds: { type: 'string' },
      'rss-size': { type: 'string' },
      db: { type: 'string' },
      'cpu-prof': { type: 'string' },
      only: { type: 'string' },
      'multipart-sizes': { type: 'string' },
      'part-size': { type: 'string' },
      'part-concurrency': { type: 'string' },
      'multipart-iterations': { type: 'string' },
    },
  });
  const env = process.env;
  const quick = values.quick ?? env.BENCH_QUICK === '1';
  const positive = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const sizesArg = values.sizes ?? env.BENCH_SIZES ?? (quick ? '4KiB,1MiB' : '4KiB,1MiB,256MiB');
  const sizes = sizeList('sizes', sizesArg);
  const only = new Set<Section>();
  for (const s of (values.only ?? env.BENCH_ONLY ?? SECTIONS.join(',')).split(',')) {
    const name = s.trim() as Section;
    if (!SECTIONS.includes(name)) throw new Error(`--only: ${JSON.stringify(s)} is not one of ${SECTIONS.join(', ')}`);
    only.add(name);
  }
  const partSize = parseSize(values['part-size'] ?? env.BENCH_PART_SIZE ?? '16MiB');
  if (partSize <= 0 || partSize % PAYLOAD_CHUNK !== 0) throw new Error(`--part-size must be a positive multiple of 1 MiB`);
  const multipart: MultipartOptions = {
    sizes: sizeList('multipart-sizes', values['multipart-sizes'] ?? env.BENCH_MULTIPART_SIZES ?? (quick ? '32MiB' : '256MiB,1GiB')),
    shape: { partSize, parallel: Math.floor(positive('part-concurrency', values['part-concurrency'] ?? env.BENCH_PART_CONCURRENCY, 4)) },
    iterations: Math.floor(positive('multipart-iterations', values['multipart-iterations'] ?? env.BENCH_MULTIPART_ITERATIONS, quick ? 1 : 2)),
  };
  const db = values.db ?? env.BENCH_DB ?? 'embedded';
  if (db !== 'embedded' && db !== 'postgres') throw new Error(`--db must be embedded or postgres, got ${JSON.stringify(db)}`);
  const cpuProf = values['cpu-prof'] ?? env.BENCH_CPU_PROF;
  return {
    quick,
    sizes,
    seconds: positive('seconds', values.seconds ?? env.BENCH_SECONDS, quick ? 2 : 5),
    concurrency: Math.floor(positive('concurrency', values.concurrency ?? env.BENCH_CONCURRENCY, 8)),
    iterations: Math.floor(positive('iterations', values.iterations ?? env.BENCH_ITERATIONS, 3)),
    rounds: Math.floor(positive('rounds', values.rounds ?? env.BENCH_ROUNDS, quick ? 1 : 3)),
    rssSize: parseSize(values['rss-size'] ?? env.BENCH_RSS_SIZE ?? (quick ? '0' : '1GiB')),
    db,
    ...(cpuProf ? { cpuProf } : {}),
    only,
    multipart,
  };
}

/** One side of the comparison with its own client. */
interface Variant {
  side: Side;
  target: Target;
  mode: ChecksumMode;
  client: ReturnType<typeof makeClient>;
}

function variants(env: BenchEnv, concurrency: number): Variant[] {
  const mk = (label: string, baseline: boolean, target: Target, mode: ChecksumMode): Variant => ({
    side: { label, baseline },
    target,
    mode,
    client: makeClient(target, mode, concurrency * 2),
  });
  return [
    // s3rver would store aws-chunked framing as object data, so the direct side must send plain bodies.
    mk('direct (WHEN_REQUIRED)', true, env.direct, 'when-required'),
    mk('orchestrator (WHEN_REQUIRED)', false, env.orchestrator, 'when-required'),
    mk('orchestrator (SDK default)', false, env.orchestrator, 'sdk-default'),
  ];
}

function slug(v: Variant): string {
  return v.side.label.replace(/[^a-z]+/gi, '-').toLowerCase();
}

function spec(v: Variant, op: Operation, size: number, keys: number): LoopSpec {
  return { client: v.client, target: v.target, op, size, prefix: `${slug(v)}/${size}/`, keys };
}

/** Runs one measurement and records the CPU each process spent on it. */
async function withCpu(env: BenchEnv, v: Variant, run: () => Promise<Measurement>): Promise<Measurement> {
  const before = snapshot(env.pids);
  const m = await run();
  m.cpu = spent(before, snapshot(env.pids), v.side.baseline);
  return m;
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/**
 * Every figure is taken in rounds that alternate between the sides (direct, orchestrator, orchestrator,
 * direct, …), so a burst of load from elsewhere on the machine hits all sides alike instead of one.
 */
async function throughput(opts: Options, env: BenchEnv, vs: Variant[]): Promise<Row[]> {
  const rows: Row[] = [];
  const warm = Math.min(1, opts.seconds / 2);
  for (const v of vs) {
    log(`warm-up: ${v.side.label}`);
    await populate(spec(v, 'PUT', 4096, SMALL_KEYS), opts.concurrency);
    for (const op of ['PUT', 'GET'] as const) await timed(spec(v, op, 4096, SMALL_KEYS), opts.concurrency, warm);
  }
  for (const size of opts.sizes) {
    const large = size >= LARGE;
    for (const op of ['PUT', 'GET'] as const) {
      const specs = vs.map((v) => spec(v, op, size, large ? 1 : SMALL_KEYS));
      if (op === 'GET' && !large) for (const s of specs) await populate(s, opts.concurrency);
      const rounds = large ? opts.iterations : opts.rounds;
      const taken: Measurement[][] = vs.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (const [i, v] of vs.entries()) {
          log(`${op} ${formatSize(size)} ${v.side.label} (round ${r + 1}/${rounds})`);
          const s = specs[i]!;
          taken[i]!.push(await withCpu(env, v, () => (large ? iterations(s, 1) : timed(s, opts.concurrency, opts.seconds / rounds))));
        }
      }
      vs.forEach((v, i) => rows.push({ op, size, side: v.side, m: merge(taken[i]!) }));
    }
  }
  return rows;
}

/** Large PUT then GET through the orchestrator (both checksum modes) with the child's RSS around each. */
async function memory(opts: Options, env: BenchEnv, vs: Variant[]): Promise<RssRow[]> {
  const rows: RssRow[] = [];
  const size = opts.rssSize;
  for (const v of vs) {
    for (const op of ['PUT', 'GET'] as const) {
      log(`memory probe: ${op} ${formatSize(size)} ${v.side.label}`);
      const orch = !v.side.baseline;
      if (orch) await env.child.mark();
      const m = await withCpu(env, v, () => iterations(spec(v, op, size, 1), 1));
      rows.push({ label: v.side.label, op, size, m, ...(orch ? { rss: await env.child.report() } : {}) });
    }
  }
  return rows;
}

function verdicts(rows: Row[], rss: RssRow[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.size < LARGE || r.side.baseline) continue;
    const base = rows.find((b) => b.side.baseline && b.op === r.op && b.size === r.size);
    if (!base) continue;
    const ratio = megabytesPerSecond(r.m) / megabytesPerSecond(base.m);
    out.push(`${ratio >= TARGET_RATIO ? 'MET ' : 'MISS'} throughput ${r.op} ${formatSize(r.size)} ${r.side.label}: ${ratio.toFixed(2)}× direct (target ≥ ${TARGET_RATIO})`);
  }
  for (const r of rss) {
    if (!r.rss) continue;
    if (r.m.errors > 0) {
      out.push(`FAIL memory ${r.op} ${formatSize(r.size)} ${r.label}: the transfer failed, no figure (${r.m.firstError ?? ''})`);
      continue;
    }
    const growth = Math.max(r.rss.peak, r.rss.hwm ?? 0) - r.rss.baseline;
    out.push(
      `${growth < TARGET_RSS_GROWTH ? 'MET ' : 'MISS'} memory ${r.op} ${formatSize(r.size)} ${r.label}: RSS growth ${(growth / 1048576).toFixed(1)} MiB (target < 64 MiB)`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const loadStart = os.loadavg();
  const runs = (s: Section) => opts.only.has(s);
  const mp = opts.multipart;
  log(
    `starting: ${[...opts.only].join(', ')}; sizes ${opts.sizes.map(formatSize).join(', ')}, ${opts.seconds}s per small figure, concurrency ${opts.concurrency}, ${opts.iterations} iterations per large figure; ` +
      `multipart ${mp.sizes.map(formatSize).join(', ') || 'none'} in ${formatSize(mp.shape.partSize)} parts, ${mp.shape.parallel} in flight, ${mp.iterations} iterations; db ${opts.db}`,
  );
  // Hashing a large payload blocks the event loop for seconds: done now, it cannot stall a keep-alive socket.
  const digestSizes = [...(runs('throughput') ? opts.sizes : []), ...(runs('memory') ? [opts.rssSize] : []), ...(runs('multipart') ? mp.sizes : [])];
  for (const size of digestSizes) if (size > 0) payloadDigest(size);
  const env = await startBenchEnv({ db: opts.db, ...(opts.cpuProf ? { cpuProfDir: opts.cpuProf } : {}) });
  const vs = variants(env, opts.concurrency);
  let failed = false;
  try {
    await env.child.mark();
    const rows = runs('throughput') ? await throughput(opts, env, vs) : [];
    const during = await env.child.report();
    const rss = runs('memory') && opts.rssSize > 0 ? await memory(opts, env, vs) : [];
    const mpRows = runs('multipart') && mp.sizes.length > 0 ? await runMultipart(mp, env, vs, log) : [];
    const cpus = os.cpus();
    const out = [
      `# s3-orchestrator benchmark`,
      ``,
      `node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}`,
      `load average at start ${loadStart.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
      `command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
      `metadata: ${opts.db}; objects < ${formatSize(LARGE)}: ${opts.concurrency} in flight, ${opts.seconds}s per figure in ${opts.rounds} alternating rounds; larger: ${opts.iterations} sequential iterations, alternating`,
    ];
    if (rows.length > 0) {
      out.push(
        ``,
        `## Throughput (MB = 10^6 bytes; ratio = MB/s ÷ direct MB/s)`,
        ``,
        throughputTable(rows),
        ``,
        `## CPU: average cores busy while each figure was taken (the machine has ${cpus.length})`,
        ``,
        cpuTable(rows),
        ``,
        `orchestrator RSS during the throughput runs: baseline ${(during.baseline / 1048576).toFixed(1)} MiB, peak ${(during.peak / 1048576).toFixed(1)} MiB`,
      );
    }
    if (rss.length > 0) out.push(``, `## Memory of the orchestrator process (MiB)`, ``, rssTable(rss));
    if (mpRows.length > 0) {
      out.push(
        ``,
        `## Multipart: ${formatSize(mp.shape.partSize)} parts, ${mp.shape.parallel} in flight, ${mp.iterations} iteration(s) (upload, then GET) per size and side`,
        ``,
        multipartThroughputTable(mpRows, mp.shape),
        ``,
        `### CompleteMultipartUpload latency (ms; backend's = the orchestrator's own timing of its call to the backend)`,
        ``,
        completeTable(mpRows),
        ``,
        `### CPU seconds per GiB moved (machine cores = average busy cores of the whole machine)`,
        ``,
        multipartCpuTable(mpRows),
        ``,
        `### Orchestrator RSS (MiB; the iteration with the largest growth)`,
        ``,
        multipartRssTable(mpRows),
      );
    }
    const v = [...verdicts(rows, rss), ...multipartVerdicts(mpRows, TARGET_RATIO, TARGET_RSS_GROWTH)];
    if (v.length > 0) out.push(``, `## Targets`, ``, ...v.map((l) => `- ${l}`));
    process.stdout.write(out.join('\n') + '\n');
    failed = [...rows, ...rss].some((r) => r.m.errors > 0) || mpRows.some((r) => r.upload.errors + r.get.errors > 0);
  } finally {
    for (const v of vs) v.client.destroy();
    await env.stop();
  }
  if (opts.cpuProf) log(`CPU profile of the orchestrator written to ${opts.cpuProf}`);
  if (failed) {
    log('some operations failed: see the errors column');
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
