/**
 * Two orchestrator instances on one PostgreSQL schema and the same backends (split deployments): quotas
 * hold across instances, HEAD/LIST agree, and the shared cleanup queue is drained once.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';
import { engines, freshDatabase, type TestDatabase } from '../harness/db.js';
import { assertLedger, assertNoStrayBytes } from '../harness/ledger.js';
import { clientFor, TEST_CREDS } from '../harness/orchestrator.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../harness/s3rver.js';

const hasPostgres = (await engines()).includes('postgres');

describe('two instances sharing PostgreSQL', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let s3: S3rverInstance;
  let db: TestDatabase;
  let dir: string;
  let a: Orchestrator;
  let b: Orchestrator;
  const QUOTA = 50_000;

  before(async () => {
    s3 = await startS3rver();
    db = await freshDatabase('postgres');
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-multi-'));
    const base = resolveConfig(
      {
        server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
        database: { url: db.config.url, schema: db.config.schema },
        backends: [{ name: 'placeholder', type: 'fs', path: dir }],
        buckets: [{ name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }] }],
      },
      'multi-instance-test',
    );
    const config: Config = {
      ...base,
      backends: [
        s3BackendConfig(s3, 's3', { quotaBytes: QUOTA }),
        { type: 'fs', name: 'fs', path: path.join(dir, 'fs'), quotaBytes: QUOTA },
      ],
      workers: { ...base.workers, cleanupDelayMs: 0, cleanupIntervalMs: 100 },
    };
    const log = createLogger({}, 'error');
    [a, b] = await Promise.all([startOrchestrator(config, { log }), startOrchestrator(config, { log })]);
  });
  after(async () => {
    if (a) {
      await assertLedger(a.db, 'two instances ledger');
      await assertNoStrayBytes(a.db, a.backends.all(), 'two instances');
    }
    await a?.stop();
    await b?.stop();
    await s3?.stop();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('concurrent writes through both instances never overshoot the shared quotas', async () => {
    const ca = clientFor(`http://127.0.0.1:${a.s3Port}`);
    const cb = clientFor(`http://127.0.0.1:${b.s3Port}`);
    const size = 3_000;
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? ca : cb).send(new PutObjectCommand({ Bucket: 'data', Key: `k/${i}`, Body: Buffer.alloc(size, i) })),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as { name?: string }).name, 'InsufficientStorage', String(r.reason));
    }
    assert.equal(ok, 2 * Math.floor(QUOTA / size));
    const { rows } = await a.db.query<{ name: string; used_bytes: number; reserved_bytes: number }>(
      `SELECT name, used_bytes, reserved_bytes FROM backends ORDER BY name`,
    );
    for (const r of rows) {
      assert.ok(r.used_bytes <= QUOTA, `${r.name} used ${r.used_bytes}`);
      assert.equal(r.reserved_bytes, 0);
    }
    // Each instance answers HEAD and LIST for objects written through the other, from the database.
    const listed = await ca.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'k/' }));
    const listedB = await cb.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'k/' }));
    assert.equal(listed.KeyCount, ok);
    assert.deepEqual(listed.Contents?.map((c) => [c.Key, c.ETag, c.Size]), listedB.Contents?.map((c) => [c.Key, c.ETag, c.Size]));
    const key = listed.Contents![0]!.Key!;
    const ha = await ca.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
    const hb = await cb.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
    assert.equal(ha.ETag, hb.ETag);
    assert.equal(ha.LastModified?.getTime(), hb.LastModified?.getTime());
    const body = await (await cb.send(new GetObjectCommand({ Bucket: 'data', Key: key }))).Body!.transformToByteArray();
    assert.equal(`"${createHash('md5').update(body).digest('hex')}"`, ha.ETag);

    // Deleting through one instance frees the quota once the shared queue has run.
    await ca.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: listed.Contents!.map((c) => ({ Key: c.Key! })) } }));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const { rows: left } = await a.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM tasks WHERE kind = 'delete-copy'`);
      if (left[0]!.n === 0 || Date.now() > deadline) break;
      a.wakeWorkers();
      b.wakeWorkers();
      await new Promise((r) => setTimeout(r, 50));
    }
    const { rows: after } = await a.db.query<{ used_bytes: number; object_count: number }>(`SELECT used_bytes, object_count FROM backends`);
    for (const r of after) {
      assert.equal(r.used_bytes, 0);
      assert.equal(r.object_count, 0);
    }
    ca.destroy();
    cb.destroy();
  });
});
