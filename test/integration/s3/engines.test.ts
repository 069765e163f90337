/**
 * The core data path through the SDK on both database servers (the embedded PostgreSQL and, when reachable,
 * the machine's PostgreSQL; a fresh schema each): put, get, head, list, overwrite (old bytes cleaned up),
 * delete (bytes cleaned up).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { engines } from '../../harness/db.js';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { assertNoStrayBytes, backendCounters, bytesOf, expectS3Error, patternBytes, sha256 } from './helpers.js';

for (const engine of await engines()) {
  describe(`data path on ${engine}`, () => {
    let t: TestOrchestrator;
    before(async () => {
      t = await startTestOrchestrator({ engine, strategy: 'spread' });
    });
    after(() => t?.stop());

    it(`PutObject_GetObject_${engine}`, async () => {
      const data = patternBytes(1024 * 1024 + 3, 51);
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'e/obj', Body: data, Metadata: { engine } }));
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'e/obj' }));
      assert.equal(sha256(await bytesOf(got.Body)), sha256(data));
      assert.deepEqual(got.Metadata, { engine });
      const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'e/obj' }));
      assert.equal(head.ContentLength, data.length);
    });

    it(`ListObjectsV2_${engine}`, async () => {
      for (let i = 0; i < 12; i++) await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: `e/list/${i % 3}/${i}`, Body: `${i}` }));
      const all: string[] = [];
      let token: string | undefined;
      do {
        const r = await t.client.send(
          new ListObjectsV2Command({ Bucket: 'data', Prefix: 'e/list/', MaxKeys: 5, ...(token ? { ContinuationToken: token } : {}) }),
        );
        all.push(...(r.Contents ?? []).map((o) => o.Key!));
        token = r.NextContinuationToken;
      } while (token);
      assert.equal(all.length, 12);
      assert.deepEqual(all, [...all].sort());
      const d = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'e/list/', Delimiter: '/' }));
      assert.deepEqual(d.CommonPrefixes?.map((p) => p.Prefix), ['e/list/0/', 'e/list/1/', 'e/list/2/']);
    });

    it(`PutObject_overwrite_cleans_up_old_bytes_${engine}`, async () => {
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'e/over', Body: patternBytes(50_000, 1) }));
      const before = await backendCounters(t);
      const second = patternBytes(20_000, 2);
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'e/over', Body: second }));
      assert.equal(await drainCleanup(t), 0);
      const after = await backendCounters(t);
      const sum = (c: typeof after, f: 'used' | 'objects') => Object.values(c).reduce((n, b) => n + b[f], 0);
      assert.equal(sum(after, 'used'), sum(before, 'used') - 50_000 + 20_000);
      assert.equal(sum(after, 'objects'), sum(before, 'objects'));
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'e/over' }));
      assert.equal(sha256(await bytesOf(got.Body)), sha256(second));
      await assertNoStrayBytes(t);
    });

    it(`DeleteObject_cleans_up_bytes_${engine}`, async () => {
      // Its own keys under e/d/; counters are compared with what the bucket held before the test.
      assert.equal(await drainCleanup(t), 0);
      const start = await backendCounters(t);
      const sum = (c: typeof start, f: 'used' | 'objects') => Object.values(c).reduce((n, b) => n + b[f], 0);
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'e/d/keep', Body: patternBytes(30_000, 4) }));
      for (let i = 0; i < 12; i++) await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: `e/d/many/${i % 3}/${i}`, Body: `${i}` }));
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'e/d/del', Body: 'to delete' }));
      await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'e/d/del' }));
      await t.client.send(
        new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: Array.from({ length: 12 }, (_, i) => ({ Key: `e/d/many/${i % 3}/${i}` })) } }),
      );
      await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'e/d/del' })), 'NoSuchKey', 404);
      const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'e/d/' }));
      assert.deepEqual(r.Contents?.map((o) => o.Key), ['e/d/keep']);
      assert.equal(await drainCleanup(t), 0);
      const c = await backendCounters(t);
      assert.equal(sum(c, 'objects'), sum(start, 'objects') + 1);
      assert.equal(sum(c, 'used'), sum(start, 'used') + 30_000);
      await assertNoStrayBytes(t);
    });
  });
}
