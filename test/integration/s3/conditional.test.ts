/**
 * Conditional reads (If-Match, If-None-Match → 304, If-Modified-Since, If-Unmodified-Since → 412) on
 * GET and HEAD, and conditional writes (If-None-Match: * on an existing key → 412; If-Match).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectRawError, expectS3Error, rawRequest, sdkFailure } from './helpers.js';

let t: TestOrchestrator;
let etag: string;
let lastModified: Date;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
  const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cond', Body: 'conditional body' }));
  etag = put.ETag!;
  const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cond' }));
  lastModified = h.LastModified!;
});
after(() => t?.stop());

const past = () => new Date(lastModified.getTime() - 3600_000);
const future = () => new Date(lastModified.getTime() + 3600_000);

async function body(key: string): Promise<string> {
  const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
  return (await bytesOf(got.Body)).toString();
}

describe('conditional GET and HEAD', () => {
  it('GetObject_if_match_matches', async () => {
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfMatch: etag }));
    assert.equal((await bytesOf(got.Body)).toString(), 'conditional body');
  });

  it('GetObject_if_match_mismatch_is_PreconditionFailed', async () => {
    await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfMatch: '"0000"' })), 'PreconditionFailed', 412);
    const h = await sdkFailure(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cond', IfMatch: '"0000"' })));
    assert.equal(h.status, 412);
  });

  it('GetObject_if_none_match_is_304_with_validators', async () => {
    const raw = await rawRequest(t.endpoint, { method: 'GET', path: '/data/cond', headers: { 'if-none-match': etag } });
    assert.equal(raw.status, 304);
    assert.equal(raw.headers['etag'], etag);
    assert.equal(raw.headers['last-modified'], lastModified.toUTCString());
    assert.equal(raw.body.length, 0);
    assert.match(String(raw.headers['x-amz-request-id']), /^[0-9A-F]{16}$/);
    const f = await sdkFailure(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfNoneMatch: etag })));
    assert.equal(f.status, 304);
    const h = await sdkFailure(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cond', IfNoneMatch: etag })));
    assert.equal(h.status, 304);
  });

  it('GetObject_if_none_match_other_etag_serves_body', async () => {
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfNoneMatch: '"other"' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'conditional body');
  });

  it('GetObject_if_modified_since', async () => {
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfModifiedSince: past() }));
    assert.equal(got.$metadata.httpStatusCode, 200);
    await bytesOf(got.Body);
    const f = await sdkFailure(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfModifiedSince: future() })));
    assert.equal(f.status, 304);
  });

  it('GetObject_if_unmodified_since', async () => {
    const got = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cond', IfUnmodifiedSince: future() }));
    assert.equal(got.$metadata.httpStatusCode, 200);
    await expectS3Error(
      t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfUnmodifiedSince: past() })),
      'PreconditionFailed',
      412,
    );
  });

  it('GetObject_if_match_wins_over_if_unmodified_since', async () => {
    // RFC 7232 / S3: If-Match true + If-Unmodified-Since false → 200.
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'cond', IfMatch: etag, IfUnmodifiedSince: past() }));
    assert.equal(got.$metadata.httpStatusCode, 200);
    await bytesOf(got.Body);
  });

  it('GetObject_precondition_error_xml', async () => {
    const raw = await rawRequest(t.endpoint, { method: 'GET', path: '/data/cond', headers: { 'if-match': '"nope"' } });
    expectRawError(raw, 'PreconditionFailed', 412);
  });
});

describe('conditional PUT', () => {
  it('PutObject_if_none_match_star_on_new_key_succeeds', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'create-once', Body: 'one', IfNoneMatch: '*' }));
    assert.equal(await body('create-once'), 'one');
  });

  it('PutObject_if_none_match_star_on_existing_is_PreconditionFailed', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'exists', Body: 'original' }));
    await expectS3Error(
      t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'exists', Body: 'replacement', IfNoneMatch: '*' })),
      'PreconditionFailed',
      412,
    );
    assert.equal(await body('exists'), 'original', 'the existing object is unchanged');
  });

  it('PutObject_if_match', async () => {
    const first = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cas', Body: 'v1' }));
    await expectS3Error(
      t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cas', Body: 'v-wrong', IfMatch: '"ffffffffffffffffffffffffffffffff"' })),
      'PreconditionFailed',
      412,
    );
    assert.equal(await body('cas'), 'v1');
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cas', Body: 'v2', IfMatch: first.ETag! }));
    assert.equal(await body('cas'), 'v2');
  });

  it('PutObject_if_match_on_missing_key', async () => {
    const f = await sdkFailure(t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cas-missing', Body: 'x', IfMatch: etag })));
    // S3 answers NoSuchKey (404) for If-Match on a key that does not exist.
    assert.ok(
      (f.code === 'NoSuchKey' && f.status === 404) || (f.code === 'PreconditionFailed' && f.status === 412),
      `${f.code} ${f.status}`,
    );
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cas-missing' })), 'NotFound', 404);
  });
});
