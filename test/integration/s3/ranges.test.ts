/**
 * GetObject with Range through the SDK: first bytes, middle, open-ended, suffix, past the end (416
 * InvalidRange with Content-Range), and range forms S3 ignores (the whole object is served).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectRawError, expectS3Error, patternBytes, rawRequest, sha256 } from './helpers.js';

let t: TestOrchestrator;
const data = patternBytes(100_000, 3);
before(async () => {
  // One s3rver first in pack order (its own suffix ranges are wrong, so the orchestrator must resolve them)
  // and an fs backend; the object lands on the s3rver.
  t = await startTestOrchestrator({ s3rvers: 1 });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ranged', Body: data }));
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'empty', Body: '' }));
});
after(() => t?.stop());

async function range(r: string) {
  const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'ranged', Range: r }));
  return { got, body: await bytesOf(got.Body) };
}

describe('GetObject ranges', () => {
  it('GetObject_range_first_bytes', async () => {
    const { got, body } = await range('bytes=0-9');
    assert.equal(got.$metadata.httpStatusCode, 206);
    assert.equal(got.ContentRange, `bytes 0-9/${data.length}`);
    assert.equal(got.ContentLength, 10);
    assert.deepEqual(body, data.subarray(0, 10));
  });

  it('GetObject_range_middle', async () => {
    const { got, body } = await range('bytes=40000-59999');
    assert.equal(got.ContentRange, `bytes 40000-59999/${data.length}`);
    assert.equal(sha256(body), sha256(data.subarray(40000, 60000)));
  });

  it('GetObject_range_open_ended', async () => {
    const { got, body } = await range('bytes=10-');
    assert.equal(got.ContentRange, `bytes 10-${data.length - 1}/${data.length}`);
    assert.equal(sha256(body), sha256(data.subarray(10)));
  });

  it('GetObject_range_suffix', async () => {
    const { got, body } = await range('bytes=-5');
    assert.equal(got.ContentRange, `bytes ${data.length - 5}-${data.length - 1}/${data.length}`);
    assert.deepEqual(body, data.subarray(data.length - 5));
  });

  it('GetObject_range_suffix_longer_than_object', async () => {
    const { got, body } = await range('bytes=-200000');
    assert.equal(got.ContentRange, `bytes 0-${data.length - 1}/${data.length}`);
    assert.equal(sha256(body), sha256(data));
  });

  it('GetObject_range_end_past_size_is_clamped', async () => {
    const { got, body } = await range(`bytes=99990-200000`);
    assert.equal(got.ContentRange, `bytes 99990-99999/${data.length}`);
    assert.deepEqual(body, data.subarray(99990));
  });

  it('GetObject_range_beyond_end_is_InvalidRange', async () => {
    await expectS3Error(
      t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'ranged', Range: `bytes=${data.length}-` })),
      'InvalidRange',
      416,
    );
    const raw = await rawRequest(t.endpoint, { method: 'GET', path: '/data/ranged', headers: { range: 'bytes=200000-200010' } });
    const e = expectRawError(raw, 'InvalidRange', 416);
    assert.equal(raw.headers['content-range'], `bytes */${data.length}`);
    assert.equal(e['ActualObjectSize'], String(data.length));
  });

  it('GetObject_range_on_empty_object_is_InvalidRange', async () => {
    await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'empty', Range: 'bytes=0-0' })), 'InvalidRange', 416);
  });

  it('GetObject_range_ignored_forms_serve_whole_object', async () => {
    for (const r of ['bytes=5-2', 'items=0-1', 'bytes=0-1,5-6']) {
      const { got, body } = await range(r);
      assert.equal(got.$metadata.httpStatusCode, 200, r);
      assert.equal(got.ContentRange, undefined, r);
      assert.equal(sha256(body), sha256(data), r);
    }
  });
});
