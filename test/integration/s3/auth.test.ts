/**
 * Authentication and authorization end to end: wrong secret, unknown key id, anonymous, tampered body,
 * bad aws-chunked chunk signature, skewed clock, foreign bucket, ListBuckets scoping. Every rejected
 * write is checked to have stored nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BOTH_CREDS, OTHER_CREDS, TEST_CREDS, clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { encodeSignedChunked } from '../../unit/auth/helpers.js';
import { bytesOf, expectRawError, expectS3Error, patternBytes, rawRequest, sdkFailure, sendRaw, signRequest, signingKey } from './helpers.js';

let t: TestOrchestrator;
const extra: S3Client[] = [];
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'secret.txt', Body: 'data bucket secret' }));
});
after(async () => {
  for (const c of extra) c.destroy();
  await t?.stop();
});

function client(creds: { accessKeyId: string; secretAccessKey: string }): S3Client {
  const c = clientFor(t.endpoint, creds);
  extra.push(c);
  return c;
}

async function absent(key: string): Promise<void> {
  await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })), 'NotFound', 404);
}

describe('signatures', () => {
  it('PutObject_wrong_secret_is_SignatureDoesNotMatch', async () => {
    const bad = client({ accessKeyId: TEST_CREDS.accessKeyId, secretAccessKey: 'not-the-secret' });
    await expectS3Error(bad.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/wrong-secret', Body: 'x' })), 'SignatureDoesNotMatch', 403);
    await expectS3Error(bad.send(new GetObjectCommand({ Bucket: 'data', Key: 'secret.txt' })), 'SignatureDoesNotMatch', 403);
    await absent('auth/wrong-secret');
  });

  it('PutObject_unknown_access_key_is_InvalidAccessKeyId', async () => {
    const bad = client({ accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'whatever' });
    await expectS3Error(bad.send(new PutObjectCommand({ Bucket: 'data', Key: 'auth/unknown-key', Body: 'x' })), 'InvalidAccessKeyId', 403);
    await absent('auth/unknown-key');
  });

  it('GetObject_anonymous_is_AccessDenied', async () => {
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data/secret.txt', anonymous: true });
    expectRawError(res, 'AccessDenied', 403);
    assert.doesNotMatch(res.text, /data bucket secret/);
  });

  it('PutObject_tampered_body_is_XAmzContentSHA256Mismatch', async () => {
    const res = await rawRequest(t.endpoint, {
      method: 'PUT',
      path: '/data/auth/tampered',
      signedBody: 'the body that was signed',
      body: 'the body that was SENT!!',
    });
    expectRawError(res, 'XAmzContentSHA256Mismatch', 400);
    await absent('auth/tampered');
  });

  it('PutObject_tampered_header_is_SignatureDoesNotMatch', async () => {
    const headers = await signRequest(t.endpoint, { method: 'PUT', path: '/data/auth/hdr', body: 'x', headers: { 'x-amz-meta-a': '1' } });
    headers['x-amz-meta-a'] = '2';
    const res = await sendRaw(t.endpoint, { method: 'PUT', path: '/data/auth/hdr', headers, body: Buffer.from('x') });
    expectRawError(res, 'SignatureDoesNotMatch', 403);
    await absent('auth/hdr');
  });

  it('PutObject_skewed_clock_is_RequestTimeTooSkewed', async () => {
    for (const offset of [-20 * 60_000, 20 * 60_000]) {
      const res = await rawRequest(t.endpoint, {
        method: 'PUT',
        path: '/data/auth/skewed',
        body: 'late',
        signingDate: new Date(Date.now() + offset),
      });
      expectRawError(res, 'RequestTimeTooSkewed', 403);
    }
    await absent('auth/skewed');
  });

  it('PutObject_small_skew_is_accepted', async () => {
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/auth/skew-ok', body: 'ok', signingDate: new Date(Date.now() - 5 * 60_000) });
    assert.equal(res.status, 200, res.text);
  });
});

describe('aws-chunked signed payload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)', () => {
  const data = patternBytes(200_000, 21);

  /** A signed streaming PUT; `mutate` may corrupt the encoded body before sending. */
  async function streamingPut(key: string, mutate?: (encoded: Buffer) => void) {
    const path = `/data/${key}`;
    const enc = (seed: string, amzDate: string) =>
      encodeSignedChunked({
        data,
        chunkSize: 64 * 1024,
        signingKey: signingKey(TEST_CREDS.secretAccessKey, amzDate.slice(0, 8)),
        seed,
        amzDate,
        scope: `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`,
      });
    // Chunk signatures are fixed-size hex, so the framing length is known before signing.
    const length = enc('0'.repeat(64), '20240101T000000Z').length;
    const headers = await signRequest(t.endpoint, {
      method: 'PUT',
      path,
      payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      headers: {
        'content-encoding': 'aws-chunked',
        'x-amz-decoded-content-length': String(data.length),
        'content-length': String(length),
      },
    });
    const seed = /Signature=([0-9a-f]{64})/.exec(headers['authorization']!)![1]!;
    const body = enc(seed, headers['x-amz-date']!);
    assert.equal(body.length, length);
    mutate?.(body);
    return sendRaw(t.endpoint, { method: 'PUT', path, headers, body });
  }

  it('PutObject_streaming_signed_payload_is_stored_decoded', async () => {
    const res = await streamingPut('chunked/good');
    assert.equal(res.status, 200, res.text);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'chunked/good' }));
    assert.deepEqual(await bytesOf(got.Body), data);
  });

  it('PutObject_bad_chunk_signature_is_SignatureDoesNotMatch', async () => {
    const res = await streamingPut('chunked/bad-signature', (b) => {
      // Flip one hex digit of the second chunk's signature.
      const at = b.indexOf(';chunk-signature=', 70) + ';chunk-signature='.length;
      b[at] = b[at] === 0x30 ? 0x31 : 0x30;
    });
    expectRawError(res, 'SignatureDoesNotMatch', 403);
    await absent('chunked/bad-signature');
  });

  it('PutObject_chunk_data_changed_is_SignatureDoesNotMatch', async () => {
    const res = await streamingPut('chunked/bad-data', (b) => {
      const at = b.length - 2000;
      b[at] = b[at]! ^ 0xff;
    });
    expectRawError(res, 'SignatureDoesNotMatch', 403);
    await absent('chunked/bad-data');
  });
});

describe('tenancy', () => {
  it('GetObject_foreign_bucket_is_AccessDenied', async () => {
    await expectS3Error(t.otherClient.send(new GetObjectCommand({ Bucket: 'data', Key: 'secret.txt' })), 'AccessDenied', 403);
    // HEAD errors have no body, so the SDK only knows the status.
    assert.equal((await sdkFailure(t.otherClient.send(new HeadObjectCommand({ Bucket: 'data', Key: 'secret.txt' })))).status, 403);
    await expectS3Error(t.otherClient.send(new ListObjectsV2Command({ Bucket: 'data' })), 'AccessDenied', 403);
  });

  it('PutObject_foreign_bucket_is_AccessDenied', async () => {
    await expectS3Error(
      t.otherClient.send(new PutObjectCommand({ Bucket: 'data', Key: 'secret.txt', Body: 'overwritten' })),
      'AccessDenied',
      403,
    );
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'secret.txt' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'data bucket secret');
  });

  it('GetObject_unknown_bucket_looks_like_foreign_bucket', async () => {
    // Same answer for a bucket that exists elsewhere and one that does not: existence is not leaked.
    await expectS3Error(t.otherClient.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })), 'AccessDenied', 403);
  });

  it('ListBuckets_shows_only_own_buckets', async () => {
    const mine = await t.client.send(new ListBucketsCommand({}));
    assert.deepEqual(mine.Buckets?.map((b) => b.Name), ['data']);
    const theirs = await t.otherClient.send(new ListBucketsCommand({}));
    assert.deepEqual(theirs.Buckets?.map((b) => b.Name), ['other']);
    const shared = await client(BOTH_CREDS).send(new ListBucketsCommand({}));
    assert.deepEqual(shared.Buckets?.map((b) => b.Name), ['data', 'other']);
    assert.ok(mine.Buckets![0]!.CreationDate instanceof Date);
    assert.ok(mine.Owner?.ID);
  });

  it('ListObjectsV2_other_tenant_does_not_see_data', async () => {
    await t.otherClient.send(new PutObjectCommand({ Bucket: 'other', Key: 'secret.txt', Body: 'other bucket secret' }));
    const got = await client(OTHER_CREDS).send(new GetObjectCommand({ Bucket: 'other', Key: 'secret.txt' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'other bucket secret');
    const mine = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'secret.txt' }));
    assert.equal((await bytesOf(mine.Body)).toString(), 'data bucket secret', 'same key, separate buckets');
  });
});
