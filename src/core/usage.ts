/**
 * Usage counters per calendar month (UTC): per backend, the calls this orchestrator makes to the provider
 * and the bytes streamed to and from it; per bucket, the S3 requests clients send for it and their body
 * bytes. Requests are split into S3 pricing classes A and B (docs/data-model.md, "Usage counters").
 *
 * Counting costs a map update: each instance accumulates deltas in memory ({@link UsageMeter}) and adds
 * them to `usage_monthly` every few seconds and at shutdown, in one statement per flush, at most once (a
 * batch retried after a lost reply changes nothing; meta/queries/usage.ts). What a process that is killed
 * had not flushed yet is lost: the counters under-count by at most one flush interval of one instance's
 * traffic per crash, and never count twice. The same rows are what monthly limits per backend read.
 */
import type { Readable } from 'node:stream';
import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as uq from '../meta/queries/usage.js';
import type { Logger } from '../log.js';

/** S3 request class: A = PUT, COPY, POST, LIST and multipart calls; B = GET, HEAD and everything else. */
export type RequestClass = 'A' | 'B';

/** Where the S3 layer reports the requests it served for a bucket. */
export interface BucketUsageSink {
  bucketRequest(bucket: string, cls: RequestClass, bytesIn: number, bytesOut: number): void;
}

/** Where the backend registry reports calls to providers and the bytes they stream. */
export interface BackendUsageSink {
  backendCall(backend: string, cls: RequestClass): void;
  backendBytes(backend: string, direction: 'in' | 'out', n: number): void;
}

/**
 * The class of each backend call (the names of `s3o_backend_call_duration_seconds`'s `call` label).
 * Deletes are free at most providers; they are counted as B so that A + B is every request sent.
 */
export const BACKEND_CALL_CLASS: Readonly<Record<string, RequestClass>> = {
  put: 'A',
  copy: 'A',
  list: 'A',
  create_multipart: 'A',
  upload_part: 'A',
  upload_part_copy: 'A',
  complete_multipart: 'A',
  abort_multipart: 'A',
  get: 'B',
  head: 'B',
  delete: 'B',
  check: 'B',
};

/** `YYYY-MM-01` of the UTC month `ms` falls in. */
export function monthStart(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear().toString().padStart(4, '0')}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

/** Default time between flushes. */
export const USAGE_FLUSH_MS = 5_000;

interface Counts {
  requestsA: number;
  requestsB: number;
  bytesIn: number;
  bytesOut: number;
}

interface Batch {
  seq: number;
  deltas: uq.UsageDelta[];
}

/**
 * This instance's counters since its last flush. {@link start} flushes every `flushMs`; {@link stop} flushes
 * a last time. A flush that fails keeps its batch and retries it (same sequence number) before anything
 * newer, so batches apply in order and at most once.
 */
export class UsageMeter implements BucketUsageSink, BackendUsageSink {
  readonly #db: Db;
  readonly #instance: string;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #flushMs: number;
  #counts = new Map<string, Counts>();
  #pending: Batch | undefined;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #stopped = false;

  constructor(db: Db, opts: { instance: string; now?: () => number; log?: Logger; flushMs?: number }) {
    this.#db = db;
    this.#instance = opts.instance;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#flushMs = opts.flushMs ?? USAGE_FLUSH_MS;
  }

  /** The longest a count of this instance waits before it reaches the database (while it is reachable). */
  get flushMs(): number {
    return this.#flushMs;
  }

  #add(scope: uq.UsageScope, name: string, f: (c: Counts) => void): void {
    const key = `${scope}\u0000${name}\u0000${monthStart(this.#now())}`;
    let c = this.#counts.get(key);
    if (!c) this.#counts.set(key, (c = { requestsA: 0, requestsB: 0, bytesIn: 0, bytesOut: 0 }));
    f(c);
  }

  bucketRequest(bucket: string, cls: RequestClass, bytesIn: number, bytesOut: number): void {
    this.#add('bucket', bucket, (c) => {
      if (cls === 'A') c.requestsA++;
      else c.requestsB++;
      c.bytesIn += bytesIn;
      c.bytesOut += bytesOut;
    });
  }

  backendCall(backend: string, cls: RequestClass): void {
    this.#add('backend', backend, (c) => {
      if (cls === 'A') c.requestsA++;
      else c.requestsB++;
    });
  }

  backendBytes(backend: string, direction: 'in' | 'out', n: number): void {
    if (n <= 0) return;
    this.#add('backend', backend, (c) => {
      if (direction === 'in') c.bytesIn += n;
      else c.bytesOut += n;
    });
  }

  /**
   * Adds everything counted so far to the database (one statement; a batch left by a failed flush goes
   * first). Concurrent calls share one run. Rejects when the database cannot be written; the counts stay
   * and the next flush retries.
   */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    if (this.#pending) {
      await run(this.#db, uq.flushUsage(this.#instance, this.#pending.seq, this.#pending.deltas));
      this.#pending = undefined;
    }
    if (this.#counts.size === 0) return;
    const deltas: uq.UsageDelta[] = [];
    for (const [key, c] of this.#counts) {
      const [scope, name, month] = key.split('\u0000') as [uq.UsageScope, string, string];
      deltas.push({ scope, name, month, ...c });
    }
    this.#counts = new Map();
    this.#pending = { seq: ++this.#seq, deltas };
    await run(this.#db, uq.flushUsage(this.#instance, this.#pending.seq, deltas));
    this.#pending = undefined;
  }

  /** Flushes every `flushMs` until {@link stop}; failures are logged and retried at the next tick. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    void run(this.#db, uq.pruneFlushMarks(30)).catch(() => {});
    const tick = () => {
      this.flush()
        .catch((err: unknown) => this.#log?.warn('usage counters not flushed; retrying', { err }))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#flushMs).unref();
        });
    };
    this.#timer = setTimeout(tick, this.#flushMs).unref();
  }

  /** Stops the loop and flushes a last time (what cannot be written then is logged as lost). Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    try {
      await this.flush();
      // A flush already running when stop was called did not take what was counted after it began.
      if (this.#counts.size > 0 || this.#pending) await this.flush();
    } catch (err) {
      const lost = [...(this.#pending?.deltas ?? []), ...this.#counts.values()].length;
      this.#log?.warn('usage counters lost at shutdown: the database could not be written', { entries: lost, err });
    }
  }
}

/**
 * Counts the bytes consumed from `stream`, without adding a stream or buffering: every chunk a consumer
 * takes is emitted as 'data' exactly once, whether it pipes, listens for 'data' (chunks arriving on a
 * flowing stream skip `read()`) or iterates (`read()` emits it). Returns a function that stops counting.
 */
export function countReads(stream: Readable, add: (n: number) => void): () => void {
  const own = Object.prototype.hasOwnProperty.call(stream, 'emit');
  const emit = stream.emit;
  stream.emit = function (this: Readable, event: string | symbol, ...args: unknown[]) {
    if (event === 'data') {
      const chunk = args[0];
      add(typeof chunk === 'string' ? Buffer.byteLength(chunk) : ((chunk as { length?: number } | null)?.length ?? 0));
    }
    return emit.call(this, event, ...args);
  } as Readable['emit'];
  return () => {
    if (own) stream.emit = emit;
    else delete (stream as { emit?: unknown }).emit;
  };
}
