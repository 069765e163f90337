import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { LATEST_SCHEMA_VERSION, migrate } from '../../../src/meta/migrate.js';
import { openDatabase } from '../../../src/meta/open.js';
import { engines, freshDatabase } from '../../harness/db.js';

const TABLES = [
  'backends', 'bucket_grants', 'bucket_stat_deltas', 'bucket_stats', 'buckets', 'credentials', 'jobs', 'multipart_part_replicas',
  'multipart_parts', 'multipart_replicas', 'multipart_uploads', 'object_copies', 'object_versions', 'schema_version', 'settings', 'tasks',
  'usage_flushes', 'usage_monthly',
];

for (const engine of await engines()) {
  describe(`migrations on ${engine}`, () => {
    test('migrate from empty creates every table and records each version once', async () => {
      const tdb = await freshDatabase(engine);
      try {
        const { db, schemaVersion } = await openDatabase(tdb.config);
        try {
          assert.equal(schemaVersion, LATEST_SCHEMA_VERSION);
          const { rows } = await db.query<{ table_name: string }>(
            `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`,
          );
          assert.deepEqual(rows.map((r) => r.table_name), TABLES);
          const versions = await db.query<{ version: number }>(`SELECT version FROM schema_version ORDER BY version`);
          assert.deepEqual(versions.rows.map((r) => r.version), Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1));
          // Running again changes nothing.
          assert.equal(await migrate(db), LATEST_SCHEMA_VERSION);
          assert.equal((await db.query(`SELECT 1 FROM schema_version`)).rows.length, LATEST_SCHEMA_VERSION);
        } finally {
          await db.close();
        }
      } finally {
        await tdb.drop();
      }
    });

    test('a database with a newer schema is refused with a clear error', async () => {
      const tdb = await freshDatabase(engine);
      try {
        const { db } = await openDatabase(tdb.config);
        await db.query(`INSERT INTO schema_version (version, name) VALUES ($1, 'from-the-future')`, [LATEST_SCHEMA_VERSION + 1]);
        await db.close();
        await assert.rejects(openDatabase(tdb.config), new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}, newer than this s3-orchestrator`));
      } finally {
        await tdb.drop();
      }
    });
  });
}

describe('migrations under concurrency', () => {
  test('two instances starting together on PostgreSQL migrate once', async (t) => {
    if (!(await engines()).includes('postgres')) return t.skip('PostgreSQL not reachable');
    const tdb = await freshDatabase('postgres');
    try {
      const [a, b] = await Promise.all([openDatabase(tdb.config), openDatabase(tdb.config)]);
      assert.equal(a.schemaVersion, LATEST_SCHEMA_VERSION);
      assert.equal(b.schemaVersion, LATEST_SCHEMA_VERSION);
      const { rows } = await a.db.query(`SELECT version FROM schema_version`);
      assert.equal(rows.length, LATEST_SCHEMA_VERSION);
      await a.db.close();
      await b.db.close();
    } finally {
      await tdb.drop();
    }
  });
});

describe('migrations and the session timeouts', () => {
  test('a migration waits for another instance past lock_timeout instead of failing', async () => {
    const tdb = await freshDatabase();
    const url = tdb.config.url!;
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // What a migrating instance holds: the per-schema advisory lock.
      await other.query(`SELECT pg_advisory_lock(hashtextextended('s3o:migrate:' || $1, 0))`, [tdb.config.schema]);
      const opening = openDatabase({ ...tdb.config, lockTimeoutMs: 50, statementTimeoutMs: 100 });
      let settled = false;
      void opening.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(settled, false, 'still waiting for the lock after several lock and statement timeouts');
      await other.query(`SELECT pg_advisory_unlock_all()`);
      const { db, schemaVersion } = await opening;
      assert.equal(schemaVersion, LATEST_SCHEMA_VERSION);
      assert.equal((await db.query<{ lock_timeout: string }>('SHOW lock_timeout')).rows[0]!.lock_timeout, '50ms', 'normal statements keep the timeout');
      await db.close();
    } finally {
      await other.end();
      await tdb.drop();
    }
  });
});
