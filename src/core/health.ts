/**
 * Live backend health: a small state machine per backend fed by the outcomes of real backend calls (the
 * registry's instrumented wrapper reports every call) and by a light periodic probe (`backend.check()`) for
 * backends that had no traffic lately or are not healthy. Pure apart from the injectable clock, so the
 * transitions are unit-tested without waiting.
 *
 *   healthy ──call failed──► degraded ──N calls failed in a row──► unavailable
 *      ▲                        │                                       │
 *      └──────── any call or probe succeeded ◄──────────────────────────┘
 *   any state ──probe failed──► unavailable
 *
 * Only failures that say something about the backend count (the provider unreachable, 5xx, throttling,
 * credentials refused, a missing fs root): a missing key, a client that went away or a full backend do not.
 */
import { BackendError } from '../backends/backend.js';
import type { Logger } from '../log.js';

export type HealthState = 'healthy' | 'degraded' | 'unavailable';

/** One backend's health as the admin API and /readyz report it. */
export interface BackendHealth {
  name: string;
  state: HealthState;
  /** When the backend entered `state`. */
  since: Date;
  /** The most recent failure that counted, if any. */
  lastError?: { message: string; at: Date };
  /** The most recent successful call or probe. */
  lastOkAt?: Date;
  /** The most recent probe (check) and whether it succeeded. */
  lastProbe?: { at: Date; ok: boolean };
  /** Failed calls since the last success. */
  consecutiveFailures: number;
}

/** Tuning of {@link HealthTracker}; all optional. */
export interface HealthOptions {
  /** Milliseconds since the epoch (default Date.now); tests pass a controllable clock. */
  now?: () => number;
  /** Failed calls in a row that make a backend unavailable (default 3). */
  failuresToUnavailable?: number;
  /** A healthy backend without any call outcome for this long is probed (default 30 s). */
  idleProbeMs?: number;
  /** A degraded or unavailable backend is probed this often (default 5 s). */
  retryProbeMs?: number;
}

interface Entry extends BackendHealth {
  /** Last call outcome or probe, ms: the idle clock of the probe. */
  lastActivity: number;
  probing: boolean;
}

/** Whether an error from a backend call counts against the backend's health. */
export function countsAgainstHealth(err: unknown): boolean {
  if (!(err instanceof BackendError)) return false;
  return err.kind === 'Unavailable' || err.kind === 'AccessDenied';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The health of every configured backend. */
export class HealthTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #failuresToUnavailable: number;
  readonly #idleProbeMs: number;
  readonly #retryProbeMs: number;
  readonly #listeners: ((h: BackendHealth, previous: HealthState) => void)[] = [];

  constructor(names: readonly string[], opts: HealthOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#failuresToUnavailable = opts.failuresToUnavailable ?? 3;
    this.#idleProbeMs = opts.idleProbeMs ?? 30_000;
    this.#retryProbeMs = opts.retryProbeMs ?? 5_000;
    const now = this.#now();
    for (const name of names) {
      this.#entries.set(name, { name, state: 'healthy', since: new Date(now), consecutiveFailures: 0, lastActivity: now, probing: false });
    }
  }

  /** Called on every state change (e.g. to log it). */
  onChange(listener: (h: BackendHealth, previous: HealthState) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * The outcome of one backend call: success, or the error it failed with. An answer from the backend that
   * only says something about the request (no such key, backend full) counts as a success; a failure that
   * says nothing about the backend (the client went away, a bad argument) is ignored.
   */
  recordCall(name: string, err?: unknown): void {
    if (err === undefined) return this.recordSuccess(name);
    if (countsAgainstHealth(err)) return this.recordFailure(name, err);
    if (err instanceof BackendError && (err.kind === 'NotFound' || err.kind === 'Full')) this.recordSuccess(name);
  }

  /** A backend call succeeded. */
  recordSuccess(name: string): void {
    const e = this.#entries.get(name);
    if (!e) return;
    const now = this.#now();
    e.lastActivity = now;
    e.lastOkAt = new Date(now);
    e.consecutiveFailures = 0;
    this.#set(e, 'healthy', now);
  }

  /** A backend call failed; only failures that {@link countsAgainstHealth} change the state. */
  recordFailure(name: string, err: unknown): void {
    const e = this.#entries.get(name);
    if (!e || !countsAgainstHealth(err)) return;
    const now = this.#now();
    e.lastActivity = now;
    e.lastError = { message: message(err), at: new Date(now) };
    e.consecutiveFailures++;
    this.#set(e, e.consecutiveFailures >= this.#failuresToUnavailable ? 'unavailable' : 'degraded', now);
  }

  /**
   * A probe (`check()`) finished. A failed probe is decisive whatever the error: the backend cannot do the
   * simplest thing asked of it (reach its bucket, find its identity-marked directory).
   */
  recordProbe(name: string, err?: unknown): void {
    const e = this.#entries.get(name);
    if (!e) return;
    const now = this.#now();
    e.lastActivity = now;
    e.lastProbe = { at: new Date(now), ok: err === undefined };
    if (err === undefined) {
      e.lastOkAt = new Date(now);
      e.consecutiveFailures = 0;
      this.#set(e, 'healthy', now);
    } else {
      e.lastError = { message: message(err), at: new Date(now) };
      e.consecutiveFailures++;
      this.#set(e, 'unavailable', now);
    }
  }

  #set(e: Entry, state: HealthState, now: number): void {
    if (e.state === state) return;
    const previous = e.state;
    e.state = state;
    e.since = new Date(now);
    const snapshot = this.get(e.name)!;
    for (const l of this.#listeners) l(snapshot, previous);
  }

  /** A copy of one backend's health, or undefined for an unknown name. */
  get(name: string): BackendHealth | undefined {
    const e = this.#entries.get(name);
    if (!e) return undefined;
    return {
      name: e.name,
      state: e.state,
      since: e.since,
      consecutiveFailures: e.consecutiveFailures,
      ...(e.lastError ? { lastError: e.lastError } : {}),
      ...(e.lastOkAt ? { lastOkAt: e.lastOkAt } : {}),
      ...(e.lastProbe ? { lastProbe: e.lastProbe } : {}),
    };
  }

  /** Every backend, in the order given to the constructor. */
  all(): BackendHealth[] {
    return [...this.#entries.keys()].map((n) => this.get(n)!);
  }

  /** False only when the backend is unavailable (placement should try it last, if at all). */
  isAvailable(name: string): boolean {
    return this.#entries.get(name)?.state !== 'unavailable';
  }

  /**
   * Backends due for a probe now: not healthy and not probed for `retryProbeMs`, or healthy with no call
   * outcome for `idleProbeMs`. Marks them as being probed until {@link recordProbe} (or {@link probeDone}).
   */
  takeDue(): string[] {
    const now = this.#now();
    const due: string[] = [];
    for (const e of this.#entries.values()) {
      if (e.probing) continue;
      const wait = e.state === 'healthy' ? this.#idleProbeMs : this.#retryProbeMs;
      const last = e.state === 'healthy' ? e.lastActivity : (e.lastProbe?.at.getTime() ?? e.since.getTime());
      if (now - last >= wait) {
        e.probing = true;
        due.push(e.name);
      }
    }
    return due;
  }

  /** Ends a probe started by {@link takeDue}. */
  probeDone(name: string): void {
    const e = this.#entries.get(name);
    if (e) e.probing = false;
  }
}

/** What the probe loop needs: a backend's check by name. */
export interface Probeable {
  get(name: string): { check(): Promise<void> } | undefined;
}

/**
 * Probes due backends every `tickMs` until stopped. Probe calls go straight to the backend (not through
 * the instrumented wrapper) and report through {@link HealthTracker.recordProbe}; a probe is bounded by
 * `timeoutMs` (a hung provider counts as a failed probe).
 */
export function startHealthProbes(
  tracker: HealthTracker,
  backends: Probeable,
  log: Logger,
  opts: { tickMs?: number; timeoutMs?: number } = {},
): { stop(): Promise<void> } {
  const tickMs = opts.tickMs ?? 1_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const running = new Set<Promise<void>>();
  let stopped = false;
  const probe = async (name: string): Promise<void> => {
    const b = backends.get(name);
    if (!b) return tracker.probeDone(name);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        b.check(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`probe timed out after ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]);
      if (!stopped) tracker.recordProbe(name);
    } catch (err) {
      if (!stopped) tracker.recordProbe(name, err);
      log.debug('backend probe failed', { backend: name, err });
    } finally {
      clearTimeout(timer);
      tracker.probeDone(name);
    }
  };
  const timer = setInterval(() => {
    for (const name of tracker.takeDue()) {
      const p = probe(name).finally(() => running.delete(p));
      running.add(p);
    }
  }, tickMs);
  timer.unref();
  return {
    // Probes still running are not waited for (a dead provider may take the whole timeout): their
    // outcome is dropped, and closing the backends ends them.
    async stop() {
      stopped = true;
      clearInterval(timer);
      running.clear();
    },
  };
}
