import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { DatabaseConfig } from '../../src/config/types.js';

/** URL of the PostgreSQL server used by tests: TEST_DATABASE_URL, else the local trust-auth server. */
export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let available: Promise<boolean> | undefined;

/**
 * Whether PostgreSQL is reachable. When S3O_REQUIRE_POSTGRES=1 (set by .ci/run) an unreachable server is
 * an error, so CI can never silently skip the PostgreSQL half of the suite.
 */
export function postgresAvailable(): Promise<boolean> {
  available ??= (async () => {
    const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch (err) {
      if (process.env.S3O_REQUIRE_POSTGRES === '1') throw new Error(`PostgreSQL required but unreachable at ${TEST_PG_URL}`, { cause: err });
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return available;
}

/** Message for t.skip when PostgreSQL is absent. */
export const NO_POSTGRES = `PostgreSQL not reachable at ${TEST_PG_URL} (set TEST_DATABASE_URL); PostgreSQL half skipped`;

/** A fresh, empty database configuration for one test, and how to throw it away. */
export interface TestDatabase {
  engine: 'pglite' | 'postgres';
  config: DatabaseConfig;
  drop(): Promise<void>;
}

/** A new PGlite directory or a new PostgreSQL schema. */
export async function freshDatabase(engine: 'pglite' | 'postgres'): Promise<TestDatabase> {
  if (engine === 'pglite') {
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-meta-'));
    return {
      engine,
      config: { path: path.join(dir, 'meta'), schema: 'public' },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  return {
    engine,
    config: { url: TEST_PG_URL, path: '', schema },
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The engines to run a metadata test on; PostgreSQL only when reachable. */
export async function engines(): Promise<Array<'pglite' | 'postgres'>> {
  return (await postgresAvailable()) ? ['pglite', 'postgres'] : ['pglite'];
}
