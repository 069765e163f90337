import type pg from 'pg';

/** Result of one SQL statement. */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Anything that runs parameterised SQL: the database itself or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** A parameterised statement, as returned by the functions in meta/queries. */
export interface Sql {
  text: string;
  values: readonly unknown[];
}

/**
 * The metadata database: always PostgreSQL through a connection pool, either a server the orchestrator
 * runs itself (`embedded`, engine-embedded.ts) or one given by `database.url` (`postgres`). Same SQL on
 * both. int8 columns come back as JS numbers (sizes stay far below 2^53).
 */
export interface Db extends Queryable {
  readonly engine: 'embedded' | 'postgres';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * A new, unconnected client with the pool's settings (search_path, timeouts), outside the pool: for a
   * session that must stay open, such as the LISTEN of the change bus (meta/notify.ts). Absent on
   * wrappers that cannot give one (the bus then relies on its periodic refresh).
   */
  sessionClient?(): pg.Client;
}

/**
 * The database cannot be reached (connection refused, reset or timed out, the server shutting down or
 * starting up): a transient condition, answered as 503 ServiceUnavailable (S3) and `unavailable` (admin),
 * never 500. The engine throws it for every connection-level failure; `cause` holds the driver's error.
 * The pool reconnects by itself, so requests succeed again once the server is back.
 */
export class DbUnavailableError extends Error {
  /**
   * True when the connection failed while COMMIT was in flight: the server may or may not have
   * committed, so the caller must find out (re-read) before it acts on either outcome.
   */
  readonly commitOutcomeUnknown: boolean;

  constructor(message: string, opts: { cause?: unknown; commitOutcomeUnknown?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DbUnavailableError';
    this.commitOutcomeUnknown = opts.commitOutcomeUnknown ?? false;
  }
}

/** Whether `err` (or an error in its `cause` chain) is a {@link DbUnavailableError}. */
export function isDbUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof DbUnavailableError) return true;
  }
  return false;
}

/**
 * SQLSTATEs of a statement the server gave up on because it was too busy (statement or lock timeout) or
 * that lost a deadlock or serialization conflict: nothing was changed, and the same request may succeed
 * when retried, so callers answer "retry" (503), never "internal error".
 */
const BUSY_CODES = new Set(['57014', '55P03', '40P01', '40001']);

/** Whether `err` (or an error in its `cause` chain) says the database was too busy to finish the statement. */
export function isDbBusy(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && BUSY_CODES.has(code)) return true;
  }
  return false;
}
