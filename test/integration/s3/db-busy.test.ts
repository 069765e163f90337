/**
 * A metadata database too busy to answer in time (a lock or statement timeout) is a retryable 503
 * ServiceUnavailable, never 500 InternalError, and the write it interrupted leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import pg from 'pg';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 0, fsBackends: 1, database: { lock_timeout: '300ms' } });
});
after(() => t?.stop());

test('PutObject_waiting_past_lock_timeout_is_ServiceUnavailable_and_writes_nothing', async () => {
  const holder = new pg.Client({ connectionString: t.db.config.url });
  await holder.connect();
  try {
    // Another session holds the key's commit lock (as a stuck commit on another instance would).
    await holder.query(`SELECT pg_advisory_lock(hashtextextended('obj:data/busy', 0))`);
    const err = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'busy', Body: 'never stored' })).then(
      () => assert.fail('the PUT must not succeed while the key is locked'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof S3ServiceException, String(err));
    assert.equal(err.$metadata.httpStatusCode, 503);
    assert.equal(err.name, 'ServiceUnavailable');
    assert.match(err.message, /too busy/);
    const { rows } = await holder.query(`SELECT count(*)::int AS n FROM ${t.db.config.schema}.object_versions WHERE key = 'busy'`);
    assert.equal(rows[0].n, 0, 'the interrupted write left no row');
  } finally {
    await holder.query(`SELECT pg_advisory_unlock_all()`).catch(() => {});
    await holder.end();
  }
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'busy', Body: 'stored' }));
  const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'busy' }));
  assert.equal(await got.Body!.transformToString(), 'stored');
});
