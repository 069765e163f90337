/**
 * The multipart case of `npm run bench`: a large object uploaded in parts with several in flight
 * (CreateMultipartUpload, UploadPart ×n, CompleteMultipartUpload) directly to an s3rver and through the
 * orchestrator, then read back whole and verified. Besides throughput it records how long the Complete call
 * takes on each side and, through the orchestrator, how much of that the backend's own completion took
 * (from the orchestrator's `s3o_backend_call_duration_seconds` histogram), so the doc can show that the
 * orchestrator adds a constant to Complete while the backend's share grows with the object.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { snapshot, spent } from './cpu.js';
import { getAndVerify, multipartUpload, type MultipartShape } from './client.js';
import { megabytesPerSecond, merge, type Measurement } from './measure.js';
import type { RssReport } from './orchestrator-child.js';
import { formatSize, table, type Side } from './report.js';
import type { BenchEnv, Target } from './setup.js';

/** What the multipart case runs. */
export interface MultipartOptions {
  /** Object sizes, each uploaded `iterations` times per side. */
  sizes: number[];
  shape: MultipartShape;
  iterations: number;
}

/** One side of the comparison (the run's variants fit this shape). */
export interface MultipartVariant {
  side: Side;
  target: Target;
  client: S3Client;
}

/** Everything measured for one side at one size, over all iterations. */
export interface MultipartRow {
  size: number;
  side: Side;
  /** One op per upload; latenciesMs are whole-upload times. */
  upload: Measurement;
  /** One op per GET of the whole object. */
  get: Measurement;
  /** Client-observed CompleteMultipartUpload latencies, ms, in run order. */
  completeMs: number[];
  /** The backend's own completion as the orchestrator timed it, ms; empty on the direct side. */
  backendCompleteMs: number[];
  /** The orchestrator's RSS around the upload and the GET with the largest growth; direct side: none. */
  uploadRss?: RssReport;
  getRss?: RssReport;
}

const COMPLETE_METRIC = /^s3o_backend_call_duration_seconds_sum\{([^}]*)\}\s+(\S+)$/;

/** Seconds the orchestrator has spent in successful backend completions so far (its /metrics). */
async function backendCompleteSeconds(admin: string): Promise<number> {
  const res = await fetch(`${admin}/metrics`);
  if (!res.ok) throw new Error(`GET ${admin}/metrics: ${res.status}`);
  let sum = 0;
  for (const line of (await res.text()).split('\n')) {
    const m = COMPLETE_METRIC.exec(line);
    if (m && m[1]!.includes('call="complete_multipart"') && m[1]!.includes('outcome="ok"')) sum += Number(m[2]);
  }
  return sum;
}

function growth(r: RssReport): number {
  return Math.max(r.peak, r.hwm ?? 0) - r.baseline;
}

function worse(a: RssReport | undefined, b: RssReport): RssReport {
  return a && growth(a) >= growth(b) ? a : b;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Runs `fn` once as a one-op measurement of `bytes`, with the CPU each process spent on it. */
async function once(env: BenchEnv, direct: boolean, bytes: number, fn: () => Promise<unknown>): Promise<Measurement> {
  const m: Measurement = { ops: 0, errors: 0, bytes: 0, seconds: 0, latenciesMs: [] };
  const before = snapshot(env.pids);
  const t0 = performance.now();
  try {
    await fn();
    m.ops = 1;
    m.bytes = bytes;
  } catch (err) {
    m.errors = 1;
    m.firstError = errorMessage(err);
  }
  const ms = performance.now() - t0;
  m.seconds = ms / 1000;
  m.latenciesMs.push(ms);
  m.cpu = spent(before, snapshot(env.pids), direct);
  return m;
}

/**
 * Uploads and reads back each size `iterations` times per side, alternating sides within every iteration
 * (direct, orchestrator, …) so that load from elsewhere on the machine falls on all sides alike.
 */
export async function runMultipart(
  opts: MultipartOptions,
  env: BenchEnv,
  vs: readonly MultipartVariant[],
  log: (line: string) => void,
): Promise<MultipartRow[]> {
  const rows: MultipartRow[] = [];
  // A small unmeasured upload per side first, so the first measured one does not pay for JIT and sockets.
  const warm = Math.min(2 * opts.shape.partSize, ...opts.sizes);
  for (const v of vs) {
    log(`multipart warm-up: ${v.side.label}`);
    const key = `multipart-warm/${v.side.label.replace(/[^a-z]+/gi, '-').toLowerCase()}`;
    await multipartUpload(v.client, v.target, key, warm, opts.shape);
    await getAndVerify(v.client, v.target, key, warm);
  }
  for (const size of opts.sizes) {
    const acc = vs.map(() => ({ uploads: [] as Measurement[], gets: [] as Measurement[], completeMs: [] as number[], backendMs: [] as number[], uploadRss: undefined as RssReport | undefined, getRss: undefined as RssReport | undefined }));
    for (let r = 0; r < opts.iterations; r++) {
      for (const [i, v] of vs.entries()) {
        const a = acc[i]!;
        const direct = v.side.baseline;
        const key = `multipart/${v.side.label.replace(/[^a-z]+/gi, '-').toLowerCase()}/${size}`;
        log(`multipart ${formatSize(size)} ${v.side.label} (iteration ${r + 1}/${opts.iterations})`);
        if (!direct) await env.child.mark();
        const backendBefore = direct ? 0 : await backendCompleteSeconds(env.orchestratorAdmin);
        let completeMs = Number.NaN;
        const up = await once(env, direct, size, async () => {
          completeMs = (await multipartUpload(v.client, v.target, key, size, opts.shape)).completeMs;
        });
        a.uploads.push(up);
        if (up.errors === 0) a.completeMs.push(completeMs);
        if (!direct) {
          a.uploadRss = worse(a.uploadRss, await env.child.report());
          if (up.errors === 0) a.backendMs.push((await backendCompleteSeconds(env.orchestratorAdmin) - backendBefore) * 1000);
          await env.child.mark();
        }
        a.gets.push(await once(env, direct, size, () => getAndVerify(v.client, v.target, key, size)));
        if (!direct) a.getRss = worse(a.getRss, await env.child.report());
      }
    }
    vs.forEach((v, i) => {
      const a = acc[i]!;
      rows.push({
        size,
        side: v.side,
        upload: merge(a.uploads),
        get: merge(a.gets),
        completeMs: a.completeMs,
        backendCompleteMs: a.backendMs,
        ...(a.uploadRss ? { uploadRss: a.uploadRss } : {}),
        ...(a.getRss ? { getRss: a.getRss } : {}),
      });
    });
  }
  return rows;
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function f(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function mbps(m: Measurement): string {
  const v = megabytesPerSecond(m);
  return v >= 100 ? v.toFixed(0) : f(v, 1);
}

/**
 * MB/s of the upload without its Complete call: the phase in which the bytes flow (s3rver's Complete
 * copies every part once more, so leaving it out shows the streaming path on its own).
 */
function partsMBps(r: MultipartRow): number {
  if (r.upload.errors > 0 || r.upload.ops === 0) return Number.NaN;
  const seconds = r.upload.seconds - r.completeMs.reduce((a, b) => a + b, 0) / 1000;
  return seconds > 0 ? r.upload.bytes / 1e6 / seconds : Number.NaN;
}

function errors(r: MultipartRow): string {
  const n = r.upload.errors + r.get.errors;
  return n === 0 ? '0' : `${n} (${r.upload.firstError ?? r.get.firstError ?? ''})`;
}

function baseOf(rows: readonly MultipartRow[], r: MultipartRow): MultipartRow | undefined {
  return rows.find((b) => b.side.baseline && b.size === r.size);
}

/** Throughput of the whole upload (Create through Complete) and of the GET, with ratios to direct. */
export function multipartThroughputTable(rows: readonly MultipartRow[], shape: MultipartShape): string {
  const ratio = (r: MultipartRow, pick: (x: MultipartRow) => Measurement) => {
    const b = baseOf(rows, r);
    return r.side.baseline ? '1.00' : b ? f(megabytesPerSecond(pick(r)) / megabytesPerSecond(pick(b)), 2) : '-';
  };
  const body = rows.map((r) => {
    const b = baseOf(rows, r);
    const pr = b ? partsMBps(r) / partsMBps(b) : Number.NaN;
    return [
      formatSize(r.size),
      r.side.label,
      String(Math.ceil(r.size / shape.partSize)),
      String(r.upload.ops),
      f(r.upload.ops > 0 ? r.upload.seconds / (r.upload.ops + r.upload.errors) : Number.NaN, 2),
      mbps(r.upload),
      ratio(r, (x) => x.upload),
      f(partsMBps(r), 1),
      r.side.baseline ? '1.00' : f(pr, 2),
      mbps(r.get),
      ratio(r, (x) => x.get),
      errors(r),
    ];
  });
  return table(
    ['size', 'side', 'parts', 'uploads', 'upload s (mean)', 'upload MB/s', 'upload ratio', 'parts MB/s', 'parts ratio', 'GET MB/s', 'GET ratio', 'errors'],
    body,
    2,
  );
}

/** Complete latency: what the client saw, what the backend took inside it, and the difference. */
export function completeTable(rows: readonly MultipartRow[]): string {
  const body = rows.map((r) => {
    const b = baseOf(rows, r);
    const seen = median(r.completeMs);
    const backend = median(r.backendCompleteMs);
    const added = r.completeMs.map((c, i) => c - (r.backendCompleteMs[i] ?? Number.NaN));
    return [
      formatSize(r.size),
      r.side.label,
      f(seen, 0),
      r.completeMs.map((c) => c.toFixed(0)).join(', '),
      r.side.baseline ? '-' : f(backend, 0),
      r.side.baseline ? '-' : f(median(added), 1),
      r.side.baseline ? '1.00' : b ? f(seen / median(b.completeMs), 2) : '-',
    ];
  });
  return table(['size', 'side', 'Complete ms (median)', 'each run', "backend's Complete ms", 'added by orchestrator ms', 'ratio to direct'], body, 2);
}

/** CPU seconds per GiB moved, by process, for the upload and for the GET. */
export function multipartCpuTable(rows: readonly MultipartRow[]): string {
  const perGiB = (m: Measurement, pick: (c: NonNullable<Measurement['cpu']>) => number, skip = false) =>
    skip || !m.cpu || m.bytes === 0 ? '-' : f(pick(m.cpu) / (m.bytes / 2 ** 30), 2);
  const body = rows.map((r) => [
    formatSize(r.size),
    r.side.label,
    perGiB(r.upload, (c) => c.client),
    perGiB(r.upload, (c) => c.orchestrator, r.side.baseline),
    perGiB(r.upload, (c) => c.s3rver),
    f(r.upload.cpu && r.upload.seconds > 0 ? r.upload.cpu.machine / r.upload.seconds : Number.NaN, 2),
    perGiB(r.get, (c) => c.client),
    perGiB(r.get, (c) => c.orchestrator, r.side.baseline),
    perGiB(r.get, (c) => c.s3rver),
    f(r.get.cpu && r.get.seconds > 0 ? r.get.cpu.machine / r.get.seconds : Number.NaN, 2),
  ]);
  return table(
    ['size', 'side', 'upload: client', 'orchestrator', 's3rver', 'machine cores', 'GET: client', 'orchestrator', 's3rver', 'machine cores'],
    body,
    2,
  );
}

/** The orchestrator's RSS around the upload and the GET (the iteration with the largest growth), MiB. */
export function multipartRssTable(rows: readonly MultipartRow[]): string {
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const body: string[][] = [];
  for (const r of rows) {
    for (const [op, rss] of [['upload', r.uploadRss], ['GET', r.getRss]] as const) {
      if (!rss) continue;
      body.push([formatSize(r.size), r.side.label, op, mib(rss.baseline), mib(rss.peak), mib(rss.peak - rss.baseline), rss.hwm !== undefined ? mib(rss.hwm - rss.baseline) : '-', String(rss.samples)]);
    }
  }
  return table(['size', 'side', 'op', 'RSS base MiB', 'RSS peak MiB', 'growth MiB', 'VmHWM growth MiB', 'samples'], body, 3);
}

/** Verdict lines: throughput ratio, RSS growth, and whether Complete's added cost stays constant in size. */
export function multipartVerdicts(rows: readonly MultipartRow[], targetRatio: number, targetRss: number): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.side.baseline) continue;
    const b = baseOf(rows, r);
    const name = `multipart ${formatSize(r.size)} ${r.side.label}`;
    if (r.upload.errors + r.get.errors > 0) {
      out.push(`FAIL ${name}: ${r.upload.errors} uploads and ${r.get.errors} GETs failed (${r.upload.firstError ?? r.get.firstError ?? ''})`);
    }
    if (b) {
      // The parts phase, not the whole upload: s3rver's Complete copies every byte once more and its time
      // swings by 2× between runs on either side, which would decide a whole-upload ratio on its own.
      const ratios = [
        ['upload parts', partsMBps(r) / partsMBps(b)],
        ['GET', megabytesPerSecond(r.get) / megabytesPerSecond(b.get)],
      ] as const;
      for (const [op, ratio] of ratios) {
        out.push(`${ratio >= targetRatio ? 'MET ' : 'MISS'} throughput ${name} ${op}: ${f(ratio, 2)}× direct (target ≥ ${targetRatio})`);
      }
    }
    for (const [op, rss] of [['upload', r.uploadRss], ['GET', r.getRss]] as const) {
      if (!rss) continue;
      const g = growth(rss);
      out.push(`${g < targetRss ? 'MET ' : 'MISS'} memory ${name} ${op}: RSS growth ${(g / 1048576).toFixed(1)} MiB (target < ${targetRss / 1048576} MiB)`);
    }
  }
  const orchLabels = [...new Set(rows.filter((r) => !r.side.baseline).map((r) => r.side.label))];
  for (const label of orchLabels) {
    const mine = rows.filter((r) => r.side.label === label && r.completeMs.length > 0).sort((a, b) => a.size - b.size);
    if (mine.length < 2) continue;
    const added = (r: MultipartRow) => median(r.completeMs.map((c, i) => c - (r.backendCompleteMs[i] ?? Number.NaN)));
    const parts = mine.map((r) => `${f(added(r), 0)} ms at ${formatSize(r.size)}`).join(', ');
    const direct = mine.map((r) => baseOf(rows, r)).map((b, i) => `${f(median(b?.completeMs ?? []), 0)} ms at ${formatSize(mine[i]!.size)}`).join(', ');
    out.push(`INFO Complete ${label}: added by the orchestrator ${parts}; direct Complete took ${direct}`);
  }
  return out;
}
