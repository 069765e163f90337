/**
 * Live backend health: one circuit breaker per backend, fed by the outcomes of real backend calls (the
 * registry's instrumented wrapper reports every call and its duration) and by a light periodic probe
 * (`backend.check()`). Pure apart from the injectable clock, so every transition is unit-tested without
 * waiting.
 *
 *              N counted failures in a row, or an error rate ≥ error_rate over the
 *              window (once it holds min_requests calls), or a failed probe
 *   closed ─────────────────────────────────────────────────────────────────────► open
 *     ▲                                                                       │  ▲
 *     │ K successes (calls or probes)       cool-down elapsed, or a success   │  │ any counted failure
 *     └───────────────────────────── half-open ◄──────────────────────────────┘  │ (the trial failed)
 *                                        └───────────────────────────────────────┘
 *
 * An open backend takes no new writes and is read last; a half-open one takes trial calls (the probe loop
 * sends one as soon as the cool-down ends, so clients rarely pay for a trial). Timeouts count as failures:
 * the S3 backend reports connect and first-byte timeouts as `Unavailable`.
 *
 * The health state the admin API and /readyz show is derived from the breaker: closed with no failure
 * since the last success = healthy; closed with failures, or half-open = degraded; open = unavailable.
 *
 * Only failures that say something about the backend count (the provider unreachable or silent, 5xx,
 * throttling, credentials refused, a missing fs root): a missing key, a client that went away or a full
 * backend do not.
 */
import { BackendError } from '../backends/backend.js';
import type { BreakerConfig } from '../config/types.js';

export type HealthState = 'healthy' | 'degraded' | 'unavailable';
export type BreakerState = 'closed' | 'half_open' | 'open';

/** Defaults of `breaker.*` (docs/configuration.md). */
export const BREAKER_DEFAULTS: BreakerConfig = Object.freeze({
  failures: 3,
  errorRate: 0.5,
  windowMs: 60_000,
  minRequests: 20,
  cooldownMs: 10_000,
  probes: 1,
});

/** One backend's health as the admin API and /readyz report it. */
export interface BackendHealth {
  name: string;
  state: HealthState;
  /** When the backend entered `state`. */
  since: Date;
  /** The circuit breaker's state. */
  breaker: BreakerState;
  /** When the breaker entered `breaker`. */
  breakerSince: Date;
  /** When the breaker last opened; set while it is open or half-open. */
  openedAt?: Date;
  /** Why the breaker last opened (`3 failures in a row`, `error rate 60% over 20 calls`, `probe failed`). */
  openReason?: string;
  /** The most recent failure that counted, if any. */
  lastError?: { message: string; at: Date };
  /** The most recent successful call or probe. */
  lastOkAt?: Date;
  /** The most recent probe (check) and whether it succeeded. */
  lastProbe?: { at: Date; ok: boolean };
  /** Counted failures since the last success. */
  consecutiveFailures: number;
  /** Calls and failures counted in the current error-rate window. */
  window: { calls: number; failures: number };
  /** Moving average (EWMA) of the durations of recent successful calls without a body, ms; unset until one. */
  latencyMs?: number;
}

/** Tuning of {@link HealthTracker}; all optional. */
export interface HealthOptions {
  /** Milliseconds since the epoch (default Date.now); tests pass a controllable clock. */
  now?: () => number;
  /** The breaker's thresholds (default {@link BREAKER_DEFAULTS}). */
  breaker?: Partial<BreakerConfig>;
  /** Same as `breaker.failures` (kept for callers of the earlier health tracker). */
  failuresToUnavailable?: number;
  /** A healthy backend without any call outcome for this long is probed (default 30 s). */
  idleProbeMs?: number;
  /** A backend that is not healthy is probed this often (default 5 s). */
  retryProbeMs?: number;
}

/** A transition of one backend's breaker, as {@link HealthTracker.onTransition} reports it. */
export interface BreakerTransition {
  backend: string;
  from: BreakerState;
  to: BreakerState;
  /** What caused it, for the log. */
  reason: string;
}

/** Weight of the newest sample in the latency EWMA. */
const LATENCY_ALPHA = 0.2;
/** Buckets of the error-rate window: it slides in steps of window / WINDOW_BUCKETS. */
const WINDOW_BUCKETS = 10;

/**
 * Call and failure counts over the last `windowMs`, in WINDOW_BUCKETS time buckets (O(1) memory per backend).
 */
class SlidingWindow {
  readonly #bucketMs: number;
  readonly #epochs = new Array<number>(WINDOW_BUCKETS).fill(-1);
  readonly #calls = new Array<number>(WINDOW_BUCKETS).fill(0);
  readonly #failures = new Array<number>(WINDOW_BUCKETS).fill(0);

  constructor(windowMs: number) {
    this.#bucketMs = Math.max(1, windowMs / WINDOW_BUCKETS);
  }

  add(now: number, failed: boolean): void {
    const epoch = Math.floor(now / this.#bucketMs);
    const i = epoch % WINDOW_BUCKETS;
    if (this.#epochs[i] !== epoch) {
      this.#epochs[i] = epoch;
      this.#calls[i] = 0;
      this.#failures[i] = 0;
    }
    this.#calls[i]!++;
    if (failed) this.#failures[i]!++;
  }

  totals(now: number): { calls: number; failures: number } {
    const epoch = Math.floor(now / this.#bucketMs);
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < WINDOW_BUCKETS; i++) {
      if (this.#epochs[i]! > epoch - WINDOW_BUCKETS) {
        calls += this.#calls[i]!;
        failures += this.#failures[i]!;
      }
    }
    return { calls, failures };
  }

  clear(): void {
    this.#epochs.fill(-1);
  }
}

interface Entry {
  name: string;
  breaker: BreakerState;
  breakerSince: number;
  /** Derived health state, kept to report changes. */
  state: HealthState;
  since: number;
  openedAt?: number;
  openReason?: string;
  /** An open breaker turns half-open at this time (extended by failures while open). */
  coolUntil: number;
  /** Successes since the breaker turned half-open. */
  trials: number;
  consecutiveFailures: number;
  window: SlidingWindow;
  lastError?: { message: string; at: Date };
  lastOkAt?: number;
  lastProbe?: { at: number; ok: boolean };
  latencyMs?: number;
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

function healthOf(e: Pick<Entry, 'breaker' | 'consecutiveFailures'>): HealthState {
  if (e.breaker === 'open') return 'unavailable';
  if (e.breaker === 'half_open' || e.consecutiveFailures > 0) return 'degraded';
  return 'healthy';
}

/** The breaker and health of every configured backend. */
export class HealthTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #cfg: BreakerConfig;
  readonly #idleProbeMs: number;
  readonly #retryProbeMs: number;
  readonly #listeners: ((h: BackendHealth, previous: HealthState) => void)[] = [];
  readonly #transitionListeners: ((t: BreakerTransition, h: BackendHealth) => void)[] = [];

  constructor(names: readonly string[], opts: HealthOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#cfg = {
      ...BREAKER_DEFAULTS,
      ...(opts.failuresToUnavailable !== undefined ? { failures: opts.failuresToUnavailable } : {}),
      ...opts.breaker,
    };
    this.#idleProbeMs = opts.idleProbeMs ?? 30_000;
    this.#retryProbeMs = opts.retryProbeMs ?? 5_000;
    for (const name of names) this.track(name);
  }

  /**
   * Starts tracking a backend added at runtime (healthy, breaker closed; probed once idle). A name already
   * tracked keeps its state.
   */
  track(name: string): void {
    if (this.#entries.has(name)) return;
    const now = this.#now();
    this.#entries.set(name, {
      name,
      breaker: 'closed',
      breakerSince: now,
      state: 'healthy',
      since: now,
      coolUntil: 0,
      trials: 0,
      consecutiveFailures: 0,
      window: new SlidingWindow(this.#cfg.windowMs),
      lastActivity: now,
      probing: false,
    });
  }

  /** Stops tracking a backend removed at runtime. */
  untrack(name: string): void {
    this.#entries.delete(name);
  }

  /** The thresholds in use. */
  get config(): BreakerConfig {
    return this.#cfg;
  }

  /** Called on every change of a backend's health state (e.g. to log it). */
  onChange(listener: (h: BackendHealth, previous: HealthState) => void): void {
    this.#listeners.push(listener);
  }

  /** Called on every transition of a backend's breaker (metrics, the log). */
  onTransition(listener: (t: BreakerTransition, h: BackendHealth) => void): void {
    this.#transitionListeners.push(listener);
  }

  /**
   * The outcome of one backend call: success, or the error it failed with. An answer from the backend that
   * only says something about the request (no such key, backend full) counts as a success; a failure that
   * says nothing about the backend (the client went away, a bad argument) is ignored. `durationMs` of a
   * successful call feeds the latency average (callers pass it only for calls without a body).
   */
  recordCall(name: string, err?: unknown, durationMs?: number): void {
    if (err === undefined) return this.recordSuccess(name, durationMs);
    if (countsAgainstHealth(err)) return this.recordFailure(name, err);
    if (err instanceof BackendError && (err.kind === 'NotFound' || err.kind === 'Full')) this.recordSuccess(name, durationMs);
  }

  /** A backend call succeeded. */
  recordSuccess(name: string, durationMs?: number): void {
    const e = this.#entries.get(name);
    if (!e) return;
    const now = this.#now();
    e.window.add(now, false);
    this.#latency(e, durationMs);
    this.#succeeded(e, now, 'a call succeeded');
  }

  #latency(e: Entry, durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) return;
    e.latencyMs = e.latencyMs === undefined ? durationMs : e.latencyMs + LATENCY_ALPHA * (durationMs - e.latencyMs);
  }

  /** A backend call failed; only failures that {@link countsAgainstHealth} count. */
  recordFailure(name: string, err: unknown): void {
    const e = this.#entries.get(name);
    if (!e || !countsAgainstHealth(err)) return;
    const now = this.#now();
    e.window.add(now, true);
    this.#failed(e, now, err, false);
  }

  /**
   * A probe (`check()`) finished. A failed probe is decisive whatever the error: the backend cannot do the
   * simplest thing asked of it (reach its bucket, find its identity-marked directory), so the breaker opens.
   * Probes are not calls: they do not enter the error-rate window. The duration of a successful probe
   * feeds the latency average (a backend without traffic is still measured).
   */
  recordProbe(name: string, err?: unknown, durationMs?: number): void {
    const e = this.#entries.get(name);
    if (!e) return;
    const now = this.#now();
    e.lastProbe = { at: now, ok: err === undefined };
    if (err === undefined) this.#latency(e, durationMs);
    if (err === undefined) this.#succeeded(e, now, 'a probe succeeded');
    else this.#failed(e, now, err, true);
  }

  #succeeded(e: Entry, now: number, why: string): void {
    const before = this.#begin(e, now);
    e.lastActivity = now;
    e.lastOkAt = now;
    e.consecutiveFailures = 0;
    // A success while open is an answer from a backend believed dead: it counts as the first trial.
    if (e.breaker === 'open') this.#move(e, 'half_open', now, why);
    if (e.breaker === 'half_open') {
      e.trials++;
      if (e.trials >= this.#cfg.probes) {
        // A fresh start: failures from before the outage must not reopen it through the error rate.
        e.window.clear();
        this.#move(e, 'closed', now, `${e.trials} successful trial${e.trials === 1 ? '' : 's'}`);
      }
    }
    this.#end(e, before, now);
  }

  #failed(e: Entry, now: number, err: unknown, probe: boolean): void {
    const before = this.#begin(e, now);
    e.lastActivity = now;
    e.lastError = { message: message(err), at: new Date(now) };
    e.consecutiveFailures++;
    if (e.breaker === 'open') {
      // Still dead: wait a whole cool-down again before letting trials through.
      e.coolUntil = now + this.#cfg.cooldownMs;
    } else if (e.breaker === 'half_open') {
      this.#open(e, now, probe ? 'the trial probe failed' : 'the trial call failed');
    } else if (probe) {
      this.#open(e, now, 'a probe failed');
    } else if (e.consecutiveFailures >= this.#cfg.failures) {
      this.#open(e, now, `${e.consecutiveFailures} failures in a row`);
    } else {
      const w = e.window.totals(now);
      if (w.calls >= this.#cfg.minRequests && w.failures / w.calls >= this.#cfg.errorRate) {
        this.#open(e, now, `error rate ${Math.round((100 * w.failures) / w.calls)}% over ${w.calls} calls`);
      }
    }
    this.#end(e, before, now);
  }

  #open(e: Entry, now: number, reason: string): void {
    e.openedAt = now;
    e.openReason = reason;
    e.coolUntil = now + this.#cfg.cooldownMs;
    this.#move(e, 'open', now, reason);
  }

  #move(e: Entry, to: BreakerState, now: number, reason: string): void {
    if (e.breaker === to) return;
    const from = e.breaker;
    e.breaker = to;
    e.breakerSince = now;
    e.trials = 0;
    if (to === 'closed') {
      delete e.openedAt;
      delete e.openReason;
    }
    const t: BreakerTransition = { backend: e.name, from, to, reason };
    const snapshot = this.#snapshot(e, now);
    for (const l of this.#transitionListeners) l(t, snapshot);
  }

  /** Applies a due cool-down (open → half-open) and returns the health state before the operation. */
  #begin(e: Entry, now: number): HealthState {
    this.#cool(e, now);
    return e.state;
  }

  /** Reports a change of the derived health state (once per operation, whatever the breaker went through). */
  #end(e: Entry, before: HealthState, now: number): void {
    const state = healthOf(e);
    if (state === before) return;
    e.state = state;
    e.since = now;
    const snapshot = this.#snapshot(e, now);
    for (const l of this.#listeners) l(snapshot, before);
  }

  /**
   * An open breaker turns half-open once its cool-down passed, unless a probe is running: the probe is then
   * the trial, and no client call pays for it (a black-holed provider may hold the probe for its timeout).
   */
  #cool(e: Entry, now: number): void {
    if (e.breaker !== 'open' || now < e.coolUntil || e.probing) return;
    const before = e.state;
    this.#move(e, 'half_open', now, 'cool-down elapsed');
    this.#end(e, before, now);
  }

  #snapshot(e: Entry, now: number): BackendHealth {
    return {
      name: e.name,
      state: healthOf(e),
      since: new Date(e.state === healthOf(e) ? e.since : now),
      breaker: e.breaker,
      breakerSince: new Date(e.breakerSince),
      consecutiveFailures: e.consecutiveFailures,
      window: e.window.totals(now),
      ...(e.openedAt !== undefined ? { openedAt: new Date(e.openedAt) } : {}),
      ...(e.openReason !== undefined ? { openReason: e.openReason } : {}),
      ...(e.lastError ? { lastError: e.lastError } : {}),
      ...(e.lastOkAt !== undefined ? { lastOkAt: new Date(e.lastOkAt) } : {}),
      ...(e.lastProbe ? { lastProbe: { at: new Date(e.lastProbe.at), ok: e.lastProbe.ok } } : {}),
      ...(e.latencyMs !== undefined ? { latencyMs: e.latencyMs } : {}),
    };
  }

  /** A copy of one backend's health, or undefined for an unknown name. */
  get(name: string): BackendHealth | undefined {
    const e = this.#entries.get(name);
    if (!e) return undefined;
    const now = this.#now();
    this.#cool(e, now);
    return this.#snapshot(e, now);
  }

  /** Every backend, in the order given to the constructor. */
  all(): BackendHealth[] {
    return [...this.#entries.keys()].map((n) => this.get(n)!);
  }

  /** The breaker's state (an unknown name counts as closed: nothing is known against it). */
  breakerState(name: string): BreakerState {
    const e = this.#entries.get(name);
    if (!e) return 'closed';
    this.#cool(e, this.#now());
    return e.breaker;
  }

  /** False only while the breaker is open (placement should try it last, if at all). */
  isAvailable(name: string): boolean {
    return this.breakerState(name) !== 'open';
  }

  /** The latency average of a backend, ms; undefined until a call was measured. */
  latency(name: string): number | undefined {
    return this.#entries.get(name)?.latencyMs;
  }

  /**
   * Backends due for a probe now: not healthy and not probed for `retryProbeMs` (an open breaker also as
   * soon as its cool-down ends: the probe is its trial), or healthy with no call outcome for `idleProbeMs`.
   * Marks them as being probed until {@link recordProbe} (or {@link probeDone}).
   */
  takeDue(): string[] {
    const now = this.#now();
    const due: string[] = [];
    for (const e of this.#entries.values()) {
      if (e.probing) continue;
      // The cool-down passed: the probe is the trial, and the breaker stays open while it runs.
      const trial = e.breaker === 'open' && now >= e.coolUntil;
      const healthy = e.state === 'healthy';
      const wait = healthy ? this.#idleProbeMs : this.#retryProbeMs;
      const last = healthy ? e.lastActivity : (e.lastProbe?.at ?? e.since);
      if (trial || now - last >= wait) {
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

export { startHealthProbes, type Probeable } from './probes.js';
