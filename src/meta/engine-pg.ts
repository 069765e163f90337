import pg from 'pg';
import type { Logger } from '../log.js';
import { DbUnavailableError, type Db, type Queryable, type QueryResult } from './db.js';

const INT8 = 20;

function parserFor(oid: number, format?: string): (v: string) => unknown {
  if (oid === INT8) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format as 'text');
}

/** Pool and session settings; config/load.ts applies the defaults (docs/configuration.md, `database`). */
export interface PgOptions {
  /** search_path of every connection (default `public`). */
  schema?: string;
  /** Most connections open at once (default 20). */
  poolSize?: number;
  /** Server-side statement_timeout, ms; 0 = none (default 30 s). */
  statementTimeoutMs?: number;
  /** Server-side lock_timeout, ms; 0 = none (default 10 s). */
  lockTimeoutMs?: number;
  /** Longest wait for a connection (connecting, or a free one from the pool), ms (default 10 s). */
  connectTimeoutMs?: number;
  log?: Logger;
  /** Reported as Db.engine (default `postgres`). */
  engine?: Db['engine'];
  /** Runs after the pool has ended (the embedded engine stops its server here). */
  onClose?: () => Promise<void>;
}

/** Node socket errors that mean "no usable connection to the server". */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);
/** SQLSTATEs of a server going away or not accepting connections (class 08 is matched by prefix). */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
/** node-postgres and pg-pool raise these without a code. */
const DRIVER_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end|connect ECONNREFUSED/i;

/**
 * Whether `err` is a connection-level failure (server down, restarting, unreachable, connection lost or
 * timed out) rather than an error of the statement itself.
 */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof DbUnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code) || SERVER_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true; // AggregateError (happy eyeballs)
  return typeof e.message === 'string' && DRIVER_MESSAGES.test(e.message);
}

/**
 * A PostgreSQL pool. `schema` becomes the search_path of every connection so one database can hold
 * several independent orchestrator schemas (tests use one each). Connection-level failures surface as
 * {@link DbUnavailableError}; a connection whose ROLLBACK failed is destroyed, never reused.
 */
export async function openPostgres(url: string, opts: PgOptions = {}): Promise<Db> {
  const schema = opts.schema ?? 'public';
  const log = opts.log;
  const settings = [
    `search_path=${schema}`,
    `statement_timeout=${opts.statementTimeoutMs ?? 30_000}`,
    `lock_timeout=${opts.lockTimeoutMs ?? 10_000}`,
  ];
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 20,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    keepAlive: true,
    application_name: 's3-orchestrator',
    options: settings.map((s) => `-c ${s}`).join(' '),
    types: { getTypeParser: parserFor as typeof pg.types.getTypeParser },
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it would kill
  // the process. The pool drops that client by itself; the next checkout connects anew.
  pool.on('error', (err) => log?.warn('idle database connection failed', { err }));

  let down = false;
  /** Rethrows `err`, as DbUnavailableError when it is a connection failure; logs the transitions. */
  const fail = (err: unknown, commit = false): never => {
    if (!isConnectionError(err)) throw err;
    if (!down) {
      down = true;
      log?.warn('metadata database unavailable', { err });
    }
    if (err instanceof DbUnavailableError && !commit) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new DbUnavailableError(`the metadata database is unavailable: ${why}`, { cause: err, commitOutcomeUnknown: commit });
  };
  const ok = <T>(v: T): T => {
    if (down) {
      down = false;
      log?.info('metadata database reachable again');
    }
    return v;
  };
  const run = async <R>(c: pg.Pool | pg.PoolClient, text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
    try {
      const res = await c.query(text, values as unknown[] | undefined);
      return ok({ rows: res.rows as R[], rowCount: res.rowCount ?? 0 });
    } catch (err) {
      return fail(err);
    }
  };
  const connect = () => pool.connect().catch(fail);

  try {
    const client = await connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`).catch((err: { code?: string }) => {
        // IF NOT EXISTS is not atomic: two instances starting together can both try; the loser sees 23505.
        if (err.code !== '23505' && err.code !== '42P06') throw err;
      });
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }

  let closed = false;
  return {
    engine: opts.engine ?? 'postgres',
    sessionClient: () =>
      new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
        keepAlive: true,
        application_name: 's3-orchestrator',
        options: settings.map((s) => `-c ${s}`).join(' '),
        types: { getTypeParser: parserFor as typeof pg.types.getTypeParser },
      }),
    query: (text, values) => run(pool, text, values),
    exec: async (text) => {
      await run(pool, text);
    },
    async tx(fn) {
      const c = await connect();
      const q: Queryable = {
        query: (text, values) => run(c, text, values),
        exec: async (text) => {
          await run(c, text);
        },
      };
      // Set when the connection must not go back to the pool (its state is unknown).
      let broken: Error | undefined;
      // A checked-out client has no 'error' listener of the pool's: a connection lost between two
      // statements would otherwise be an uncaught 'error' event. The next statement then fails anyway.
      const onError = (err: Error) => {
        broken = err;
      };
      c.on('error', onError);
      try {
        await run(c, 'BEGIN');
        const out = await fn(q);
        try {
          await c.query('COMMIT');
        } catch (err) {
          if (isConnectionError(err)) broken = err as Error;
          return fail(err, true);
        }
        return ok(out);
      } catch (err) {
        if (!broken) {
          try {
            await c.query('ROLLBACK');
          } catch (rollbackErr) {
            broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
          }
        }
        throw err;
      } finally {
        c.off('error', onError);
        c.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pool.end();
      } finally {
        await opts.onClose?.();
      }
    },
  };
}

/** Quotes an SQL identifier (schema names come from config, validated there too). */
export function quoteIdent(id: string): string {
  return '"' + id.replace(/"/g, '""') + '"';
}
