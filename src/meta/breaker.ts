/**
 * The database breaker: a {@link Db} wrapper that notices when PostgreSQL stops answering and then fails
 * every new statement at once with {@link DbUnavailableError} instead of letting requests queue behind the
 * pool, probes in the background, and lets traffic through again as soon as a probe succeeds.
 *
 *   closed ──a statement fails with a connection error, or one is outstanding for `suspectAfterMs`──► probe
 *   probe  ──`SELECT 1` answered within `probeTimeoutMs`──► closed
 *          ──failed or timed out──► open
 *   open   ──every `probeIntervalMs`: probe──► closed once one succeeds
 *
 * Opening also cuts short the calls still in flight (they would otherwise wait for the pool's connect
 * timeout, or forever on a frozen server whose TCP stack still answers): a statement sent on its own is
 * rejected with DbUnavailableError (it may still run later, exactly as when a connection drops under it);
 * a transaction that has not started is abandoned (it rolls back if it ever gets a connection); one whose
 * callback is running is made to roll back (every later statement fails and its end throws); one whose
 * COMMIT is in flight is rejected with `commitOutcomeUnknown`, which callers already resolve by re-reading.
 *
 * Only connection-level failures count: a statement the server rejects, or one that is merely slow while a
 * probe gets through, changes nothing.
 */
import type { Logger } from '../log.js';
import type pg from 'pg';
import { DbUnavailableError, isDbUnavailable, type Db, type Queryable, type QueryResult } from './db.js';
import { isConnectionError } from './engine-pg.js';

/**
 * Whether `err` is an error the server sent (it has a SQLSTATE) and not a connection-level one. "Too many
 * connections" counts as an answer: the server is up and the pool's own connections still work (the probe's
 * extra connection may be the one over `max_connections`).
 */
function answeredByServer(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return code === '53300' || (!isDbUnavailable(err) && !isConnectionError(err));
}

/** Connects, runs `SELECT 1` and closes; rejects with the driver's error. */
async function probeSession(c: pg.Client): Promise<void> {
  // A connection lost after the probe must not be an uncaught 'error' event.
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
  } finally {
    void c.end().catch(() => {});
  }
}

/** `closed`: statements go to the database; `open`: they fail at once. */
export type BreakerState = 'closed' | 'open';

/** Tuning of {@link withBreaker}; all optional. */
export interface BreakerOptions {
  /** A statement outstanding this long makes the breaker probe the server (ms, default 2000). */
  suspectAfterMs?: number;
  /** A probe that has not answered within this is a failure (ms, default 5000). */
  probeTimeoutMs?: number;
  /** How often an open breaker probes (ms, default 500). */
  probeIntervalMs?: number;
  log?: Logger;
  /** Told every state change. */
  onChange?: (state: BreakerState, previous: BreakerState, cause?: unknown) => void;
}

/** What the wrapper reports about itself (metrics, the admin API, tests). */
export interface BreakerStatus {
  state: BreakerState;
  /** When the breaker entered `state`. */
  since: Date;
  /** Why it last opened. */
  lastError?: string;
  /** Statements and transactions refused while open (this process, since start). */
  rejected: number;
  /** Statements and transactions in flight through the breaker now. */
  inFlight: number;
}

/** The wrapped database and its breaker. */
export interface BreakerDb {
  readonly db: Db;
  status(): BreakerStatus;
  /** Resolves once the breaker is in `state` (tests). */
  until(state: BreakerState, timeoutMs?: number): Promise<void>;
}

/** One call in flight: when it started and how to cut it short. */
interface Call {
  started: number;
  abandon(err: DbUnavailableError): void;
}

// A probe gets 5 s: a server that merely answers slowly (a loaded machine forking a backend for the probe's
// connection) must not be taken for a dead one — opening cuts short every call in flight.
const DEFAULTS = { suspectAfterMs: 2_000, probeTimeoutMs: 5_000, probeIntervalMs: 500 };

export function withBreaker(inner: Db, opts: BreakerOptions = {}): BreakerDb {
  const suspectAfterMs = opts.suspectAfterMs ?? DEFAULTS.suspectAfterMs;
  const probeTimeoutMs = opts.probeTimeoutMs ?? DEFAULTS.probeTimeoutMs;
  const probeIntervalMs = opts.probeIntervalMs ?? DEFAULTS.probeIntervalMs;
  const log = opts.log;
  let state: BreakerState = 'closed';
  let since = new Date();
  let lastError: string | undefined;
  let rejected = 0;
  let probing = false;
  let lastProbe = 0;
  let closed = false;
  const calls = new Set<Call>();
  const waiters: { state: BreakerState; resolve: () => void }[] = [];

  const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));
  const refusal = (): DbUnavailableError =>
    new DbUnavailableError(`the metadata database is unavailable (breaker open since ${since.toISOString()}${lastError ? `: ${lastError}` : ''})`);

  const set = (next: BreakerState, cause?: unknown): void => {
    if (state === next) return;
    const previous = state;
    state = next;
    since = new Date();
    if (next === 'open') {
      lastError = describe(cause);
      log?.error('metadata database unreachable: breaker open, statements fail fast until a probe succeeds', { err: cause });
      const err = refusal();
      for (const c of [...calls]) c.abandon(err);
    } else {
      log?.info('metadata database reachable again: breaker closed');
    }
    opts.onChange?.(next, previous, cause);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.state === next) waiters.splice(i, 1)[0]!.resolve();
    }
  };

  /**
   * `SELECT 1` on a connection of its own when the engine gives one (a pooled connection may be one the
   * network silently lost, which would hang until TCP keepalive gives up), else through the pool, one at
   * a time. A probe that does not answer in time counts as failed; its late answer still counts.
   */
  let current = 0;
  const probe = (): void => {
    if (probing || closed) return;
    probing = true;
    lastProbe = Date.now();
    const id = ++current;
    const session = inner.sessionClient?.();
    let decided = false;
    const attempt = session ? probeSession(session) : inner.query('SELECT 1').then(() => undefined);
    const timer = setTimeout(() => {
      decided = true;
      set('open', new Error(`no answer to a probe within ${probeTimeoutMs} ms`));
      if (session) {
        // A connection of its own is simply dropped; the next probe opens another.
        void session.end().catch(() => {});
        if (current === id) probing = false;
      }
    }, probeTimeoutMs);
    timer.unref();
    attempt
      .then(
        () => {
          clearTimeout(timer);
          set('closed'); // a late answer still proves the server is back
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (decided) return;
          // Only an answer from the server (an error with a SQLSTATE that is not a connection failure) shows
          // it is there; a socket error or the driver's own timeout ('timeout expired') does not.
          if (answeredByServer(err)) set('closed');
          else set('open', err);
        },
      )
      .finally(() => {
        if (current === id) probing = false;
      });
  };

  const tick = setInterval(() => {
    if (closed || probing) return;
    const now = Date.now();
    if (now - lastProbe < probeIntervalMs) return;
    if (state === 'open') return probe();
    // While closed, slow statements (lock waits, a busy server) cost at most one probe per suspect period.
    if (now - lastProbe < suspectAfterMs) return;
    for (const c of calls) {
      if (now - c.started >= suspectAfterMs) return probe();
    }
  }, Math.max(50, Math.floor(Math.min(probeIntervalMs, suspectAfterMs) / 2)));
  tick.unref();

  /** A failure of a call: connection-level ones make the breaker probe at once (at most one probe per interval). */
  const noteFailure = (err: unknown): void => {
    if (isDbUnavailable(err) && state === 'closed' && Date.now() - lastProbe >= probeIntervalMs) probe();
  };

  const refuseIfOpen = (): void => {
    if (state === 'open') {
      rejected++;
      throw refusal();
    }
  };

  /** Runs `op` as a tracked call: settles with it, or earlier with the breaker's error when the breaker opens. */
  const track = <T>(op: () => Promise<T>, onAbandon?: (err: DbUnavailableError) => DbUnavailableError): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const call: Call = {
        started: Date.now(),
        abandon: (err) => {
          calls.delete(call);
          reject(onAbandon ? onAbandon(err) : err);
        },
      };
      calls.add(call);
      op().then(
        (v) => {
          if (!calls.delete(call)) return;
          resolve(v);
        },
        (err: unknown) => {
          noteFailure(err);
          if (!calls.delete(call)) return;
          reject(err);
        },
      );
    });

  const query = <R>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
    refuseIfOpen();
    return track(() => inner.query<R>(text, values));
  };

  const db: Db = {
    ...inner,
    engine: inner.engine,
    query: <R>(text: string, values?: readonly unknown[]) => {
      try {
        return query<R>(text, values);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    exec: async (text) => {
      refuseIfOpen();
      await track(() => inner.exec(text));
    },
    tx: async <T>(fn: (q: Queryable) => Promise<T>): Promise<T> => {
      refuseIfOpen();
      let phase: 'waiting' | 'running' | 'committing' = 'waiting';
      let abandoned: DbUnavailableError | undefined;
      // Statements of the transaction in flight when the breaker opens fail with it.
      let rejectAbandoned: (err: DbUnavailableError) => void = () => {};
      const abandonedPromise = new Promise<never>((_, reject) => {
        rejectAbandoned = reject;
      });
      abandonedPromise.catch(() => {});
      const guard = (): void => {
        if (abandoned) throw abandoned;
      };
      return track(
        () =>
          inner.tx(async (q) => {
            guard();
            phase = 'running';
            const guarded: Queryable = {
              query: <R>(text: string, values?: readonly unknown[]) => {
                if (abandoned) return Promise.reject(abandoned);
                return Promise.race([q.query<R>(text, values), abandonedPromise]);
              },
              exec: async (text) => {
                guard();
                await Promise.race([q.exec(text), abandonedPromise]);
              },
            };
            const out = await fn(guarded);
            guard(); // a callback that swallowed the breaker's error must not commit
            phase = 'committing';
            return out;
          }),
        (err) => {
          abandoned = err;
          rejectAbandoned(err);
          if (phase !== 'committing') return err;
          return new DbUnavailableError(`${err.message}; the transaction's COMMIT was in flight`, { cause: err, commitOutcomeUnknown: true });
        },
      );
    },
    close: async () => {
      closed = true;
      clearInterval(tick);
      await inner.close();
    },
  };

  return {
    db,
    status: () => ({ state, since, rejected, inFlight: calls.size, ...(lastError !== undefined ? { lastError } : {}) }),
    until: (target, timeoutMs = 30_000) =>
      state === target
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const w = { state: target, resolve: () => (clearTimeout(t), resolve()) };
            const t = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              reject(new Error(`the database breaker did not become ${target} within ${timeoutMs} ms`));
            }, timeoutMs);
            waiters.push(w);
          }),
  };
}
