import type { Readable } from 'node:stream';
import type { Backend, ByteRange, CopySource, PhysicalMeta } from '../backends/backend.js';
import type { Metrics } from '../metrics.js';
import type { HealthTracker } from './health.js';
import { BACKEND_CALL_CLASS, countReads, type BackendUsageSink } from './usage.js';

/**
 * The configured backends, by name and in config order, each wrapped so every call is timed in
 * `s3o_backend_call_duration_seconds` and counted, with the bytes it streams, in the monthly usage
 * (core/usage.ts). Core reaches backends only through this registry, so every provider call is counted.
 */
export class BackendRegistry {
  readonly #byName = new Map<string, Backend>();
  readonly #order: string[] = [];
  /** `read_priority` per backend (see {@link readOrder}). */
  readonly #readPriority = new Map<string, number>();

  /** Live health of the backends, fed by every call made through this registry (when given). */
  readonly health: HealthTracker | undefined;
  readonly #metrics: Metrics | undefined;
  /** Where every call and the bytes it streams are counted (monthly usage, core/usage.ts), when given. */
  readonly #usage: BackendUsageSink | undefined;

  constructor(backends: readonly Backend[], metrics?: Metrics, health?: HealthTracker, usage?: BackendUsageSink) {
    this.health = health;
    this.#metrics = metrics;
    this.#usage = usage;
    for (const b of backends) {
      this.#byName.set(b.name, metrics || health || usage ? instrument(b, metrics, health, usage) : b);
      this.#order.push(b.name);
    }
  }

  /**
   * Adds a backend at runtime, or replaces the one of the same name (its settings changed); it goes last
   * in the order until {@link setOrder}. Returns the replaced backend: calls in flight may still use it, so
   * the caller closes it once they are done.
   */
  put(b: Backend): Backend | undefined {
    const old = this.#byName.get(b.name);
    this.#byName.set(b.name, this.#metrics || this.health || this.#usage ? instrument(b, this.#metrics, this.health, this.#usage) : b);
    if (!old) this.#order.push(b.name);
    return old;
  }

  /** Removes a backend at runtime; returns it for the caller to close once calls in flight are done. */
  remove(name: string): Backend | undefined {
    const old = this.#byName.get(name);
    if (!old) return undefined;
    this.#byName.delete(name);
    this.#order.splice(this.#order.indexOf(name), 1);
    return old;
  }

  /** Sets the placement order: `names` first (those held), then any others in their current order. */
  setOrder(names: readonly string[]): void {
    const held = names.filter((n, i) => this.#byName.has(n) && names.indexOf(n) === i);
    const rest = this.#order.filter((n) => !held.includes(n));
    this.#order.splice(0, this.#order.length, ...held, ...rest);
  }

  /** Backend names in configuration order (pack placement fills them in this order). */
  get names(): readonly string[] {
    return this.#order;
  }

  /** The backend, or undefined when it is no longer configured (its copies are then unreachable). */
  get(name: string): Backend | undefined {
    return this.#byName.get(name);
  }

  /**
   * `names` reordered so that backends whose breaker is not open come first (their order kept), then the
   * open ones: placement still tries those last, so a breaker that is wrong can only cost a retry, never a
   * refused write.
   */
  availableFirst(names: readonly string[]): string[] {
    const h = this.health;
    if (!h) return [...names];
    return [...names.filter((n) => h.isAvailable(n)), ...names.filter((n) => !h.isAvailable(n))];
  }

  /**
   * Whether the backend may take a new copy now: its breaker is not open (a half-open one takes trial
   * writes). True without live health.
   */
  writable(name: string): boolean {
    return this.health ? this.health.breakerState(name) !== 'open' : true;
  }

  /**
   * Backends holding copies of one version, in the order a read should try them: breaker closed first,
   * then half-open, then open (still tried: the provider may be back before its breaker knows); within each,
   * lower `read_priority` first, then the lowest recent latency (a backend not measured yet counts as 0, so
   * it gets measured); ties keep the given order.
   */
  readOrder(backends: readonly string[]): string[] {
    const h = this.health;
    const rank = { closed: 0, half_open: 1, open: 2 } as const;
    const key = (name: string) => ({
      breaker: h ? rank[h.breakerState(name)] : 0,
      priority: this.#readPriority.get(name) ?? 0,
      latency: h?.latency(name) ?? 0,
    });
    const keyed = backends.map((name, i) => ({ name, i, ...key(name) }));
    keyed.sort((a, b) => a.breaker - b.breaker || a.priority - b.priority || a.latency - b.latency || a.i - b.i);
    return keyed.map((k) => k.name);
  }

  /** The `read_priority` reads use for a backend (0 when not set). */
  readPriority(name: string): number {
    return this.#readPriority.get(name) ?? 0;
  }

  /** Sets each backend's `read_priority` (from its row); backends not listed count as 0. */
  setReadPriorities(priorities: Iterable<readonly [string, number]>): void {
    this.#readPriority.clear();
    for (const [name, p] of priorities) this.#readPriority.set(name, p);
  }

  all(): Backend[] {
    return this.#order.map((n) => this.#byName.get(n)!);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all().map((b) => b.close()));
  }
}

/**
 * Calls whose duration is the provider's answer time (no body to send; a GET resolves at its first byte):
 * they feed the latency average that orders reads. Uploads and server-side copies grow with the size.
 * (Probes report their own duration.)
 */
const LATENCY_CALLS = new Set(['get', 'head', 'delete', 'list', 'create_multipart', 'abort_multipart']);

function instrument(b: Backend, m: Metrics | undefined, health: HealthTracker | undefined, usage: BackendUsageSink | undefined): Backend {
  // Usage: one request of the call's class per call, counted when it is sent (a failed call reached the
  // provider too, or may have); bytes as they flow through the body streams (core/usage.ts).
  const bytes = (direction: 'in' | 'out', n: number) => {
    usage?.backendBytes(b.name, direction, n);
    m?.backendBytes.inc({ backend: b.name, direction }, n);
  };
  const sending = <T>(body: Readable, fn: () => Promise<T>): Promise<T> => {
    const stop = countReads(body, (n) => bytes('in', n));
    return fn().finally(stop);
  };
  const receiving = (stream: Readable): Readable => {
    countReads(stream, (n) => bytes('out', n));
    return stream;
  };
  // `check` is a probe: its callers (the probe loop, the start-up check) report it as one, so it is only
  // timed here, not counted twice.
  const timed = async <T>(call: string, fn: () => Promise<T>, report = true): Promise<T> => {
    const cls = BACKEND_CALL_CLASS[call] ?? 'B';
    usage?.backendCall(b.name, cls);
    m?.backendRequests.inc({ backend: b.name, class: cls });
    const end = m?.backendDuration.startTimer({ backend: b.name, call });
    const started = performance.now();
    try {
      const out = await fn();
      end?.({ outcome: 'ok' });
      if (report) health?.recordCall(b.name, undefined, LATENCY_CALLS.has(call) ? performance.now() - started : undefined);
      return out;
    } catch (err) {
      end?.({ outcome: 'error' });
      if (report) health?.recordCall(b.name, err);
      throw err;
    }
  };
  return {
    name: b.name,
    type: b.type,
    put: (key: string, body: Readable, size: number, meta: PhysicalMeta, signal?: AbortSignal) =>
      timed('put', () => sending(body, () => b.put(key, body, size, meta, signal))),
    get: (key: string, range?: ByteRange, signal?: AbortSignal) => timed('get', async () => receiving(await b.get(key, range, signal))),
    head: (key: string) => timed('head', () => b.head(key)),
    delete: (key: string) => timed('delete', () => b.delete(key)),
    copy: (src: string, dst: string, meta: PhysicalMeta) => timed('copy', () => b.copy(src, dst, meta)),
    ...(b.copySource ? { copySource: (key: string) => b.copySource!(key) } : {}),
    ...(b.copyFrom
      ? { copyFrom: (src: CopySource, dst: string, meta: PhysicalMeta, size: number) => timed('copy', () => b.copyFrom!(src, dst, meta, size)) }
      : {}),
    list: (prefix: string, opts?: { startAfter?: string; limit?: number }) => timed('list', () => b.list(prefix, opts)),
    check: () => timed('check', () => b.check(), false),
    close: () => b.close(),
    createMultipart: (key: string, meta: PhysicalMeta) => timed('create_multipart', () => b.createMultipart(key, meta)),
    uploadPart: (key: string, uploadId: string, n: number, body: Readable, size: number, signal?: AbortSignal) =>
      timed('upload_part', () => sending(body, () => b.uploadPart(key, uploadId, n, body, size, signal))),
    uploadPartCopy: (key: string, uploadId: string, n: number, src: string, range: ByteRange) =>
      timed('upload_part_copy', () => b.uploadPartCopy(key, uploadId, n, src, range)),
    completeMultipart: (key: string, uploadId: string, parts: readonly { partNumber: number; etag: string }[], meta?: PhysicalMeta) =>
      timed('complete_multipart', () => b.completeMultipart(key, uploadId, parts, meta)),
    abortMultipart: (key: string, uploadId: string) => timed('abort_multipart', () => b.abortMultipart(key, uploadId)),
  };
}
