import type { DatabaseConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { openEmbedded } from './engine-embedded.js';
import { openPostgres, type PgOptions } from './engine-pg.js';
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion } from './migrate.js';

/** What openDatabase needs: a full DatabaseConfig, or just where the database is (tests). */
export type OpenConfig = Pick<DatabaseConfig, 'url' | 'path' | 'schema'> & Partial<DatabaseConfig>;

export interface OpenOptions {
  log?: Logger;
  /** Zero-config mode: messages name `--data DIR` instead of `database.path`. */
  zeroConfig?: boolean;
  /**
   * Leave the schema as it is and refuse unless it is exactly this build's (tools such as fsck that run
   * beside serving instances must not migrate their database under them). Default: migrate.
   */
  requireCurrentSchema?: boolean;
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
    if (opts.requireCurrentSchema) {
      const found = await schemaVersion(db);
      if (found !== LATEST_SCHEMA_VERSION) {
        throw new Error(
          `the metadata database has schema version ${found}, this s3-orchestrator expects ${LATEST_SCHEMA_VERSION}: ` +
            `run the release that serves this database (its serve applies migrations)`,
        );
      }
      return { db, schemaVersion: found };
    }
    const version = await migrate(withoutTimeouts(db));
    return { db, schemaVersion: version };
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
