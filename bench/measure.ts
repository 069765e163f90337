/**
 * The two measuring loops: a timed loop with several requests in flight (small objects) and a fixed number
 * of sequential iterations (large objects). Both count failures instead of stopping, so a run always
 * prints a table, and a non-zero error count is visible next to the figure it affects.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { sumCpu, type CpuSeconds } from './cpu.js';
import { getAndVerify, payloadBuffer, putBuffer, putStream } from './client.js';
import type { Target } from './setup.js';

/** PUT or GET. */
export type Operation = 'PUT' | 'GET';

/** One measured figure. */
export interface Measurement {
  ops: number;
  errors: number;
  bytes: number;
  seconds: number;
  /** The first error's message, when there were errors. */
  firstError?: string;
  /** Per-operation latencies in ms, sorted ascending. */
  latenciesMs: number[];
  /** CPU spent by each process while the figure was taken (set by the caller). */
  cpu?: CpuSeconds;
}

/** ops/s of a measurement (successful operations only). */
export function opsPerSecond(m: Measurement): number {
  return m.seconds > 0 ? m.ops / m.seconds : 0;
}

/** MB/s (10^6 bytes) of a measurement (bytes of successful operations only). */
export function megabytesPerSecond(m: Measurement): number {
  return m.seconds > 0 ? m.bytes / 1e6 / m.seconds : 0;
}

/** The p-th percentile latency in ms (nearest rank), or NaN when there is none. */
export function percentile(m: Measurement, p: number): number {
  const l = m.latenciesMs;
  if (l.length === 0) return Number.NaN;
  return l[Math.min(l.length - 1, Math.max(0, Math.ceil((p / 100) * l.length) - 1))]!;
}

/** Adds up measurements of the same figure taken in several rounds. */
export function merge(ms: readonly Measurement[]): Measurement {
  const out: Measurement = { ops: 0, errors: 0, bytes: 0, seconds: 0, latenciesMs: [] };
  for (const m of ms) {
    out.ops += m.ops;
    out.errors += m.errors;
    out.bytes += m.bytes;
    out.seconds += m.seconds;
    out.latenciesMs.push(...m.latenciesMs);
    if (m.firstError !== undefined) out.firstError ??= m.firstError;
  }
  out.latenciesMs.sort((a, b) => a - b);
  const cpus = ms.flatMap((m) => (m.cpu ? [m.cpu] : []));
  if (cpus.length > 0) out.cpu = sumCpu(cpus);
  return out;
}

/** Where and how to run one loop. */
export interface LoopSpec {
  client: S3Client;
  target: Target;
  op: Operation;
  size: number;
  /** Key prefix; PUT writes `<prefix><n>` for n below `keys`, GET reads those keys. */
  prefix: string;
  /** Distinct keys written and read; overwriting a bounded set keeps disk use bounded on long runs. */
  keys: number;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Runs `fn(i)` for operation numbers i = 0, 1, … with `concurrency` in flight until `stop()` says so. */
async function drive(
  concurrency: number,
  stop: (started: number) => boolean,
  fn: (i: number) => Promise<number>,
): Promise<Measurement> {
  const m: Measurement = { ops: 0, errors: 0, bytes: 0, seconds: 0, latenciesMs: [] };
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (!stop(next)) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      try {
        const n = await fn(i);
        m.bytes += n;
        m.ops++;
        m.latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        m.errors++;
        m.firstError ??= errorMessage(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  m.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  m.latenciesMs.sort((a, b) => a - b);
  return m;
}

/** One operation of the loop; returns the bytes moved. Small sizes PUT a Buffer, large ones stream. */
function operation(spec: LoopSpec, streamAbove: number): (i: number) => Promise<number> {
  const key = (i: number) => `${spec.prefix}${i % spec.keys}`;
  if (spec.op === 'GET') {
    return async (i) => {
      await getAndVerify(spec.client, spec.target, key(i), spec.size);
      return spec.size;
    };
  }
  if (spec.size > streamAbove) {
    return async (i) => {
      await putStream(spec.client, spec.target, key(i), spec.size);
      return spec.size;
    };
  }
  const body = payloadBuffer(spec.size);
  return async (i) => {
    await putBuffer(spec.client, spec.target, key(i), body);
    return spec.size;
  };
}

/** Objects up to this size are PUT from a Buffer; above it they are streamed from the generator. */
export const STREAM_ABOVE = 8 * 1024 * 1024;

/** Writes every key of the spec once, so a GET loop has something to read. */
export async function populate(spec: LoopSpec, concurrency: number): Promise<void> {
  const m = await drive(concurrency, (n) => n >= spec.keys, operation({ ...spec, op: 'PUT' }, STREAM_ABOVE));
  if (m.errors > 0) throw new Error(`populating ${spec.prefix}: ${m.errors} PUTs failed, first: ${m.firstError}`);
}

/** Runs the loop for `seconds` (no new operation starts after that) with `concurrency` in flight. */
export function timed(spec: LoopSpec, concurrency: number, seconds: number): Promise<Measurement> {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  return drive(concurrency, () => process.hrtime.bigint() >= deadline, operation(spec, STREAM_ABOVE));
}

/** Runs exactly `iterations` operations one after another. */
export function iterations(spec: LoopSpec, count: number): Promise<Measurement> {
  return drive(1, (n) => n >= count, operation(spec, STREAM_ABOVE));
}
