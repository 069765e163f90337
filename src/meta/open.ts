import type { DatabaseConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { openEmbedded } from './engine-embedded.js';
import { openPostgres, type PgOptions } from './engine-pg.js';
import { migrate } from './migrate.js';

/** What openDatabase needs: a full DatabaseConfig, or just where the database is (tests). */
export type OpenConfig = Pick<DatabaseConfig, 'url' | 'path' | 'schema'> & Partial<DatabaseConfig>;

export interface OpenOptions {
  log?: Logger;
  /** Zero-config mode: messages name `--data DIR` instead of `database.path`. */
  zeroConfig?: boolean;
}

/**
 * Opens the configured database — PostgreSQL at `url`, else the embedded PostgreSQL in `path` — and
 * brings its schema up to date.
 */
export async function openDatabase(cfg: OpenConfig, opts: OpenOptions = {}): Promise<{ db: Db; schemaVersion: number }> {
  const pgOpts: PgOptions = {
    schema: cfg.schema,
    ...(cfg.poolSize !== undefined ? { poolSize: cfg.poolSize } : {}),
    ...(cfg.statementTimeoutMs !== undefined ? { statementTimeoutMs: cfg.statementTimeoutMs } : {}),
    ...(cfg.lockTimeoutMs !== undefined ? { lockTimeoutMs: cfg.lockTimeoutMs } : {}),
    ...(cfg.connectTimeoutMs !== undefined ? { connectTimeoutMs: cfg.connectTimeoutMs } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  };
  const db = cfg.url
    ? await openPostgres(cfg.url, pgOpts)
    : await openEmbedded(cfg.path, { ...pgOpts, hint: opts.zeroConfig ? '--data DIR' : 'database.path' });
  try {
    const schemaVersion = await migrate(withoutTimeouts(db));
    return { db, schemaVersion };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/**
 * Migrations may rewrite big tables and wait for another instance's migration (advisory lock): their
 * transaction runs without the statement and lock timeouts.
 */
function withoutTimeouts(db: Db): Db {
  return {
    engine: db.engine,
    query: (text, values) => db.query(text, values),
    exec: (text) => db.exec(text),
    close: () => db.close(),
    tx: (fn) =>
      db.tx(async (q) => {
        await q.query('SET LOCAL statement_timeout = 0');
        await q.query('SET LOCAL lock_timeout = 0');
        return fn(q);
      }),
  };
}
