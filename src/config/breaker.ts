/**
 * The circuit-breaker and backend-timeout keys of the configuration file: `breaker.*`, and the per-backend
 * `connect_timeout`, `first_byte_timeout` (s3) and `read_priority`. Kept apart so config/load.ts reads as
 * the list of keys; core/health.ts documents what the thresholds do.
 */
import { describe, type Checker } from './check.js';
import type { BreakerConfig } from './types.js';

/** Defaults of `breaker.*` and the backend timeouts (docs/configuration.md). */
export const BREAKER_KEY_DEFAULTS = {
  breaker: { failures: 3, errorRate: 0.5, windowMs: 60_000, minRequests: 20, cooldownMs: 10_000, probes: 1 } satisfies BreakerConfig,
  connectTimeoutMs: 5_000,
  firstByteTimeoutMs: 15_000,
} as const;

export const BREAKER_KEYS = ['failures', 'error_rate', 'window', 'min_requests', 'cooldown', 'probes'] as const;
/** Keys every backend type takes. */
export const BACKEND_BREAKER_KEYS = ['read_priority'] as const;
/** Keys only s3 backends take (an fs backend does not connect anywhere). */
export const S3_TIMEOUT_KEYS = ['connect_timeout', 'first_byte_timeout'] as const;

/** Longest timeout accepted: a day (a larger value is a typo, and timers overflow past 24.8 days). */
const MAX_TIMEOUT_MS = 24 * 3600_000;

/** A number (a string from `${ENV}` expansion is accepted); undefined when absent or wrong (reported). */
function readNumber(c: Checker, v: unknown, at: string, o: { integer: boolean; min: number; max: number; minExclusive?: boolean }): number | undefined {
  if (v === undefined || v === null) return undefined;
  const value = typeof v === 'string' ? c.expand(v, at) : v;
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  const low = o.minExclusive ? typeof n === 'number' && n > o.min : typeof n === 'number' && n >= o.min;
  if (typeof n !== 'number' || !Number.isFinite(n) || (o.integer && !Number.isInteger(n)) || !low || n > o.max) {
    const kind = o.integer ? 'a whole number' : 'a number';
    const range = o.minExclusive ? `greater than ${o.min} and at most ${o.max}` : `from ${o.min} to ${o.max}`;
    c.problem(at, `must be ${kind} ${range}, got ${describe(v)}`);
    return undefined;
  }
  return n;
}

/** A duration in (0, 1 day]; undefined when absent or wrong (reported). */
function readTimeout(c: Checker, v: unknown, at: string): number | undefined {
  const ms = c.duration(v, at);
  if (ms === undefined) return undefined;
  if (ms === 0) c.problem(at, 'must be greater than 0');
  else if (ms > MAX_TIMEOUT_MS) c.problem(at, `must be at most 1d, got ${describe(v)}`);
  else return ms;
  return undefined;
}

/** Reads the `breaker` section (every key optional). */
export function readBreaker(c: Checker, v: unknown): BreakerConfig {
  const d = BREAKER_KEY_DEFAULTS.breaker;
  const b = c.mapping(v, 'breaker', BREAKER_KEYS) ?? {};
  return {
    failures: readNumber(c, b.failures, 'breaker.failures', { integer: true, min: 1, max: 1000 }) ?? d.failures,
    errorRate: readNumber(c, b.error_rate, 'breaker.error_rate', { integer: false, min: 0, max: 1, minExclusive: true }) ?? d.errorRate,
    windowMs: readTimeout(c, b.window, 'breaker.window') ?? d.windowMs,
    minRequests: readNumber(c, b.min_requests, 'breaker.min_requests', { integer: true, min: 1, max: 1_000_000 }) ?? d.minRequests,
    cooldownMs: readTimeout(c, b.cooldown, 'breaker.cooldown') ?? d.cooldownMs,
    probes: readNumber(c, b.probes, 'breaker.probes', { integer: true, min: 1, max: 100 }) ?? d.probes,
  };
}

/** `backends[i].read_priority`: a whole number; lower is read first (default 0). */
export function readReadPriority(c: Checker, b: Record<string, unknown>, at: string): { readPriority: number } {
  const p = readNumber(c, b.read_priority, `${at}.read_priority`, { integer: true, min: -1_000_000, max: 1_000_000 });
  return { readPriority: p ?? 0 };
}

/** `backends[i].connect_timeout` and `first_byte_timeout` of an s3 backend. */
export function readS3Timeouts(c: Checker, b: Record<string, unknown>, at: string): { connectTimeoutMs: number; firstByteTimeoutMs: number } {
  return {
    connectTimeoutMs: readTimeout(c, b.connect_timeout, `${at}.connect_timeout`) ?? BREAKER_KEY_DEFAULTS.connectTimeoutMs,
    firstByteTimeoutMs: readTimeout(c, b.first_byte_timeout, `${at}.first_byte_timeout`) ?? BREAKER_KEY_DEFAULTS.firstByteTimeoutMs,
  };
}
