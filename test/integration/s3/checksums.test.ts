/**
 * Checksums end to end: PutObject with each ChecksumAlgorithm (the SDK sends it in an aws-chunked
 * trailer), `ChecksumMode: 'ENABLED'` on GET/HEAD returning the stored value, and the failures: wrong
 * x-amz-checksum-* header, wrong CRC32 trailer, wrong Content-MD5. Expected values are computed here,
 * independently of src/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { AwsCrc32c } from '@aws-crypto/crc32c';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type ChecksumAlgorithm } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { encodeUnsignedChunked } from '../../unit/auth/helpers.js';
import { bytesOf, expectRawError, expectS3Error, patternBytes, rawRequest, sha256 } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
});
after(() => t?.stop());

const data = patternBytes(150_000, 31);

async function expected(alg: 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256', body: Buffer): Promise<string> {
  switch (alg) {
    case 'CRC32': {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(body) >>> 0);
      return b.toString('base64');
    }
    case 'CRC32C': {
      const c = new AwsCrc32c();
      c.update(body);
      return Buffer.from(await c.digest()).toString('base64');
    }
    case 'SHA1':
      return createHash('sha1').update(body).digest('base64');
    case 'SHA256':
      return createHash('sha256').update(body).digest('base64');
  }
}

const field = { CRC32: 'ChecksumCRC32', CRC32C: 'ChecksumCRC32C', SHA1: 'ChecksumSHA1', SHA256: 'ChecksumSHA256' } as const;

async function absent(key: string): Promise<void> {
  await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })), 'NotFound', 404);
}

describe('checksum algorithms', () => {
  for (const alg of ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const) {
    it(`PutObject_checksum_${alg}_stored_and_returned`, async () => {
      const key = `sums/${alg}`;
      const want = await expected(alg, data);
      const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: data, ChecksumAlgorithm: alg as ChecksumAlgorithm }));
      assert.equal(put[field[alg]], want, 'PUT response carries the checksum');
      const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key, ChecksumMode: 'ENABLED' }));
      assert.equal(head[field[alg]], want);
      assert.equal(head.ChecksumType, 'FULL_OBJECT');
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key, ChecksumMode: 'ENABLED' }));
      assert.equal(got[field[alg]], want);
      // The SDK validates the returned checksum against the bytes it reads.
      assert.equal(sha256(await bytesOf(got.Body)), sha256(data));
      const plain = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
      assert.equal(plain[field[alg]], undefined, 'no checksum without ChecksumMode');
    });
  }

  it('PutObject_default_checksum_is_CRC32', async () => {
    const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'sums/default', Body: data }));
    assert.equal(put.ChecksumCRC32, await expected('CRC32', data));
  });

  it('GetObject_range_has_no_full_object_checksum', async () => {
    // Its own object, stored with a full-object CRC32 (which a ranged GET must not return).
    const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'sums/ranged', Body: data, ChecksumAlgorithm: 'CRC32' }));
    assert.equal(put.ChecksumCRC32, await expected('CRC32', data));
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'sums/ranged', Range: 'bytes=0-99', ChecksumMode: 'ENABLED' }));
    assert.equal(got.ChecksumCRC32, undefined);
    assert.deepEqual(await bytesOf(got.Body), data.subarray(0, 100));
  });
});

describe('checksum failures', () => {
  it('PutObject_wrong_checksum_header_is_BadDigest', async () => {
    const wrong = await expected('SHA256', Buffer.from('other bytes'));
    await expectS3Error(
      t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'bad/sha256', Body: data, ChecksumSHA256: wrong })),
      'BadDigest',
      400,
    );
    await absent('bad/sha256');
  });

  it('PutObject_wrong_crc32_trailer_is_BadDigest', async () => {
    const send = (key: string, crc: string) => {
      const body = encodeUnsignedChunked(data, 8192, { name: 'x-amz-checksum-crc32', value: crc });
      return rawRequest(t.endpoint, {
        method: 'PUT',
        path: `/data/${key}`,
        payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        headers: {
          'content-encoding': 'aws-chunked',
          'x-amz-decoded-content-length': String(data.length),
          'x-amz-trailer': 'x-amz-checksum-crc32',
          'x-amz-sdk-checksum-algorithm': 'CRC32',
        },
        body,
      });
    };
    // The same framing with the right value is accepted: the failure below is the checksum, not the framing.
    const ok = await send('trailer/good', await expected('CRC32', data));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers['x-amz-checksum-crc32'], await expected('CRC32', data));
    const bad = await send('trailer/bad', await expected('CRC32', Buffer.from('nope')));
    expectRawError(bad, 'BadDigest', 400);
    await absent('trailer/bad');
  });

  it('PutObject_malformed_checksum_value_is_InvalidRequest', async () => {
    const res = await rawRequest(t.endpoint, {
      method: 'PUT',
      path: '/data/bad/malformed',
      headers: { 'x-amz-checksum-crc32': 'not base64 at all' },
      body: 'x',
    });
    expectRawError(res, 'InvalidRequest', 400);
    await absent('bad/malformed');
  });

  it('PutObject_wrong_content_md5_is_BadDigest', async () => {
    const wrong = createHash('md5').update('something else').digest('base64');
    await expectS3Error(
      t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'bad/md5', Body: data, ContentMD5: wrong })),
      'BadDigest',
      400,
    );
    await absent('bad/md5');
    const right = createHash('md5').update(data).digest('base64');
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'good/md5', Body: data, ContentMD5: right }));
  });

  it('PutObject_invalid_content_md5_is_InvalidDigest', async () => {
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/bad/md5-shape', headers: { 'content-md5': 'abc' }, body: 'x' });
    expectRawError(res, 'InvalidDigest', 400);
    await absent('bad/md5-shape');
  });
});
