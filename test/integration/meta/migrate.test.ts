import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
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
    const child = fork(fileURLToPath(new URL('../../harness/hold-pglite.ts', import.meta.url)), [tdb.config.path], {
      execArgv: ['--import', 'tsx'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      await assert.rejects(openPglite(tdb.config.path), new RegExp(`in use by another s3-orchestrator process \\(pid ${child.pid}\\)`));
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await tdb.drop();
    }
  });
});

describe('embedded directory lock within one process', () => {
  test('a second open of the same directory in this process is refused, and works after close', async () => {
    const tdb = await freshDatabase('pglite');
    try {
      const first = await openPglite(tdb.config.path);
      await assert.rejects(openPglite(tdb.config.path), /already open in this process/);
      await first.close();
      const again = await openPglite(tdb.config.path);
      await again.close();
    } finally {
      await tdb.drop();
    }
  });
});
