/**
 * Quotas end to end: writes fill the backends in pack order, a write no backend has room for is 507
 * InsufficientStorage with nothing stored and no reservation left behind, and deleting frees room once
 * the cleanup queue has run.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { assertNoStrayBytes, backendCounters, bytesOf, expectRawError, expectS3Error, patternBytes, rawRequest } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, quotas: { 's3-1': 10_000, 'fs-1': 10_000 } });
});
after(() => t?.stop());

const put = (key: string, size: number) =>
  t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: patternBytes(size, size) }));
/** 6 000 of 10 000 bytes used on each backend (pack order: s3-1, then fs-1). */
const fillBoth = async () => {
  await put('q/a', 6_000);
  await put('q/b', 6_000);
};

describe('quotas', () => {
  // Each test starts from empty backends and fills them itself, whichever tests ran before it.
  beforeEach(async () => {
    const listed = await t.client.send(new ListObjectsV2Command({ Bucket: 'data' }));
    for (const o of listed.Contents ?? []) await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: o.Key! }));
    assert.equal(await drainCleanup(t), 0);
    const c = await backendCounters(t);
    assert.ok(Object.values(c).every((b) => b.used === 0 && b.reserved === 0 && b.objects === 0), JSON.stringify(c));
  });

  it('PutObject_fills_backends_in_pack_order', async () => {
    await fillBoth();
    const c = await backendCounters(t);
    assert.deepEqual(
      { s3: c['s3-1'], fs: c['fs-1'] },
      { s3: { used: 6_000, reserved: 0, objects: 1 }, fs: { used: 6_000, reserved: 0, objects: 1 } },
    );
  });

  it('PutObject_quota_exhausted_is_InsufficientStorage', async () => {
    await fillBoth();
    const before = await backendCounters(t);
    await expectS3Error(put('q/c', 6_000), 'InsufficientStorage', 507);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'q/c' })), 'NotFound', 404);
    assert.deepEqual(await backendCounters(t), before, 'no bytes or reservations left behind');
    await assertNoStrayBytes(t);
  });

  it('PutObject_larger_than_any_backend_is_InsufficientStorage', async () => {
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/q/huge', body: patternBytes(20_000) });
    expectRawError(res, 'InsufficientStorage', 507);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'q/huge' })), 'NotFound', 404);
  });

  it('PutObject_small_object_still_fits_the_remainder', async () => {
    await fillBoth();
    await put('q/small', 3_000);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'q/small' }));
    assert.equal((await bytesOf(got.Body)).length, 3_000);
  });

  it('DeleteObject_frees_quota_after_cleanup', async () => {
    await fillBoth();
    await expectS3Error(put('q/d', 6_000), 'InsufficientStorage', 507);
    await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'q/a' }));
    assert.equal(await drainCleanup(t), 0);
    await put('q/d', 6_000);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'q/d' }));
    assert.equal((await bytesOf(got.Body)).length, 6_000);
    await assertNoStrayBytes(t);
  });

  it('PutObject_overwrite_counts_old_bytes_until_cleanup', async () => {
    // The overwritten version's bytes stay (and count) until the cleanup job deletes them.
    await put('q/small', 3_000);
    const before = await backendCounters(t);
    const total = (c: typeof before) => Object.values(c).reduce((n, b) => n + b.used, 0);
    await put('q/small', 1_000);
    assert.equal(await drainCleanup(t), 0);
    const after = await backendCounters(t);
    assert.equal(total(after), total(before) - 3_000 + 1_000);
    assert.ok(Object.values(after).every((b) => b.reserved === 0));
    await assertNoStrayBytes(t);
  });
});
