/**
 * Presigned URLs from @aws-sdk/s3-request-presigner (GET, PUT, HEAD) fetched with plain fetch(), and
 * the ways they must fail: expired, expiry over 7 days, tampered signature, wrong method, foreign bucket.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { OTHER_CREDS, clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectS3Error, parseErrorXml, patternBytes, presignByHand, sha256 } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'shared/file.txt', Body: 'presigned content', ContentType: 'text/plain' }));
});
after(() => t?.stop());

async function fetchError(url: string, init: RequestInit, code: string, status: number): Promise<Record<string, string>> {
  const res = await fetch(url, init);
  const text = await res.text();
  assert.equal(res.status, status, text);
  const e = parseErrorXml(text);
  assert.equal(e['Code'], code, text);
  assert.equal(e['RequestId'], res.headers.get('x-amz-request-id'));
  return e;
}

describe('presigned URLs', () => {
  it('PresignedGet_serves_the_object', async () => {
    const url = await getSignedUrl(t.client, new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), { expiresIn: 300 });
    assert.match(url, /X-Amz-Signature=/);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'presigned content');
    assert.equal(res.headers.get('content-type'), 'text/plain');
  });

  it('PresignedGet_response_overrides_are_signed', async () => {
    const url = await getSignedUrl(
      t.client,
      new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt', ResponseContentDisposition: 'attachment; filename="x.txt"' }),
      { expiresIn: 300 },
    );
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="x.txt"');
    await res.arrayBuffer();
  });

  it('PresignedHead', async () => {
    const url = await getSignedUrl(t.client, new HeadObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), { expiresIn: 300 });
    const res = await fetch(url, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String('presigned content'.length));
  });

  it('PresignedPut_stores_the_body', async () => {
    const data = patternBytes(200_000, 5);
    const key = 'uploads/presigned ü+.bin';
    const url = await getSignedUrl(t.client, new PutObjectCommand({ Bucket: 'data', Key: key }), { expiresIn: 300 });
    const res = await fetch(url, { method: 'PUT', body: data });
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(res.headers.get('etag') ?? '', /^"[0-9a-f]{32}"$/);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(data));
  });

  it('PresignedPut_keeps_metadata_and_tags_the_presigner_moved_into_the_query', async () => {
    const key = 'uploads/with-meta';
    const url = await getSignedUrl(
      t.client,
      new PutObjectCommand({ Bucket: 'data', Key: key, Metadata: { owner: 'alice', 'x-y': 'z' }, Tagging: 'team=ops' }),
      { expiresIn: 300 },
    );
    assert.match(url, /x-amz-meta-owner=alice/, 'the presigner put the metadata in the query');
    const res = await fetch(url, { method: 'PUT', body: 'hello' });
    assert.equal(res.status, 200, await res.clone().text());
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
    assert.deepEqual(head.Metadata, { owner: 'alice', 'x-y': 'z' });
    const tags = await t.client.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: key }));
    assert.deepEqual(tags.TagSet, [{ Key: 'team', Value: 'ops' }]);
  });

  it('PresignedGet_expired_is_AccessDenied', async () => {
    const url = await getSignedUrl(t.client, new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 3600_000),
    });
    const e = await fetchError(url, {}, 'AccessDenied', 403);
    assert.match(e['Message'] ?? '', /expired/i);
  });

  it('PresignedPut_expired_stores_nothing', async () => {
    const url = await getSignedUrl(t.client, new PutObjectCommand({ Bucket: 'data', Key: 'uploads/expired' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 3600_000),
    });
    await fetchError(url, { method: 'PUT', body: 'late' }, 'AccessDenied', 403);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'uploads/expired' })), 'NotFound', 404);
  });

  it('Presigned_expiry_over_seven_days_is_rejected', async () => {
    const ok = presignByHand(t.endpoint, { method: 'GET', path: '/data/shared/file.txt', expiresSec: 604800, date: new Date() });
    const res = await fetch(ok);
    assert.equal(res.status, 200, 'the hand-built presigner is right (7 days exactly is allowed)');
    await res.arrayBuffer();
    const tooLong = presignByHand(t.endpoint, { method: 'GET', path: '/data/shared/file.txt', expiresSec: 604801, date: new Date() });
    const res2 = await fetch(tooLong);
    const text = await res2.text();
    assert.equal(res2.status, 400, text);
    assert.match(parseErrorXml(text)['Message'] ?? '', /604800/);
    assert.doesNotMatch(text, /presigned content/);
  });

  it('Presigned_expiry_over_seven_days_error_code', async () => {
    const tooLong = presignByHand(t.endpoint, { method: 'GET', path: '/data/shared/file.txt', expiresSec: 604801, date: new Date() });
    await fetchError(tooLong, {}, 'AuthorizationQueryParametersError', 400);
  });

  it('Presigned_tampered_signature_is_SignatureDoesNotMatch', async () => {
    const url = await getSignedUrl(t.client, new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), { expiresIn: 300 });
    const sig = /X-Amz-Signature=([0-9a-f]+)/.exec(url)![1]!;
    const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    await fetchError(url.replace(sig, flipped), {}, 'SignatureDoesNotMatch', 403);
  });

  it('Presigned_other_key_than_signed_is_SignatureDoesNotMatch', async () => {
    const url = await getSignedUrl(t.client, new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), { expiresIn: 300 });
    await fetchError(url.replace('file.txt', 'other.txt'), {}, 'SignatureDoesNotMatch', 403);
  });

  it('PresignedGet_used_for_PUT_stores_nothing', async () => {
    const url = await getSignedUrl(t.client, new GetObjectCommand({ Bucket: 'data', Key: 'uploads/by-get-url' }), { expiresIn: 300 });
    await fetchError(url, { method: 'PUT', body: 'sneaky' }, 'SignatureDoesNotMatch', 403);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'uploads/by-get-url' })), 'NotFound', 404);
  });

  it('Presigned_foreign_bucket_is_AccessDenied', async () => {
    const other = clientFor(t.endpoint, OTHER_CREDS);
    try {
      const url = await getSignedUrl(other, new GetObjectCommand({ Bucket: 'data', Key: 'shared/file.txt' }), { expiresIn: 300 });
      await fetchError(url, {}, 'AccessDenied', 403);
    } finally {
      other.destroy();
    }
  });
});
