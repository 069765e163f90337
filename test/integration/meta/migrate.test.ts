import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openPglite } from '../../../src/meta/engine-pglite.js';
import { LATEST_SCHEMA_VERSION, migrate } from '../../../src/meta/migrate.js';
import { openDatabase } from '../../../src/meta/open.js';
import { engines, freshDatabase } from '../../harness/db.js';

const TABLES = ['backends', 'bucket_grants', 'buckets', 'cleanup_jobs', 'credentials', 'multipart_parts', 'multipart_uploads', 'object_copies', 'object_versions', 'schema_version', 'settings'];

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

  test('a second process cannot open the same embedded data directory', async () => {
    const tdb = await freshDatabase('pglite');
    try {
      const first = await openPglite(tdb.config.path);
      try {
        // The lock holds a pid; pretend another live process (our parent) holds it.
        const { writeFileSync, readdirSync } = await import('node:fs');
        const path = await import('node:path');
        const dir = path.dirname(tdb.config.path);
        const lock = readdirSync(dir).find((f) => f.endsWith('.lock'))!;
        writeFileSync(path.join(dir, lock), String(process.ppid));
        await assert.rejects(openPglite(tdb.config.path), /in use by another s3-orchestrator process/);
        writeFileSync(path.join(dir, lock), String(process.pid));
      } finally {
        await first.close();
      }
      // Once closed, the directory opens again.
      const again = await openPglite(tdb.config.path);
      await again.close();
    } finally {
      await tdb.drop();
    }
  });
});
