/**
 * aws-chunked bodies: produced by the AWS SDK's own encoder (getAwsChunkedEncodingStream) and by the
 * documented signed encoding, fed whole, byte by byte and in random slices; framing, length and
 * signature faults each rejected with the right S3 error.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { getAwsChunkedEncodingStream } from '@smithy/core/serde';
import { Crc32Js, readableStreamHasher } from '@smithy/core/checksum';
import { verifyRequest } from '../../../src/s3/auth/sigv4.js';
import type { AuthenticatedRequest, RequestHead } from '../../../src/s3/auth/types.js';
import {
  ALICE,
  NOW,
  REGION,
  byteSlices,
  encodeSignedChunked,
  encodeUnsignedChunked,
  lookupOf,
  randomSlices,
  runBody,
  signHead,
} from './helpers.js';

const lookup = lookupOf(ALICE);
const opts = { region: REGION, now: NOW };

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function streamingHead(
  payloadHash: string,
  decodedLength: number,
  extra: Record<string, string> = {},
): Promise<{ head: RequestHead; auth: AuthenticatedRequest }> {
  const head = await signHead({
    method: 'PUT',
    path: '/b/obj',
    payloadHash,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(decodedLength), ...extra },
  });
  return { head, auth: await verifyRequest(head, lookup, opts) };
}

async function sdkEncode(data: Buffer, pieces: number, withChecksum: boolean): Promise<Buffer> {
  const per = Math.ceil(data.length / pieces) || 1;
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += per) parts.push(data.subarray(i, i + per));
  const source = Readable.from(parts);
  const encoded = getAwsChunkedEncodingStream(
    source,
    withChecksum
      ? {
          base64Encoder: (b: Uint8Array) => Buffer.from(b).toString('base64'),
          bodyLengthChecker: (b: Uint8Array) => b.byteLength,
          checksumAlgorithmFn: Crc32Js,
          checksumLocationName: 'x-amz-checksum-crc32',
          streamHasher: readableStreamHasher,
        }
      : { bodyLengthChecker: (b: Uint8Array) => b.byteLength },
  ) as Readable;
  const out: Buffer[] = [];
  for await (const c of encoded) out.push(Buffer.from(c as Buffer));
  return Buffer.concat(out);
}

describe('STREAMING-UNSIGNED-PAYLOAD-TRAILER from the SDK encoder', () => {
  it('decodes and verifies the CRC32 trailer for several sizes and slicings', async () => {
    for (const size of [0, 1, 1000, 70_000]) {
      const data = pattern(size);
      const raw = await sdkEncode(data, 3, true);
      const { head, auth } = await streamingHead('STREAMING-UNSIGNED-PAYLOAD-TRAILER', size, {
        'x-amz-trailer': 'x-amz-checksum-crc32',
        'x-amz-sdk-checksum-algorithm': 'CRC32',
      });
      for (const slices of [[raw], randomSlices(raw, size + 1, 300), size < 2000 ? byteSlices(raw) : [raw]]) {
        const { body, digests } = await runBody(auth, head, slices);
        assert.deepEqual(body, data);
        assert.equal(digests.checksum?.algorithm, 'CRC32');
        const expected = /x-amz-checksum-crc32:([^\r]+)/.exec(raw.toString('latin1'))![1];
        assert.equal(digests.checksum?.value, expected);
      }
    }
  });

  it('a corrupted data byte fails the trailer checksum with BadDigest', async () => {
    const data = pattern(5000);
    const raw = await sdkEncode(data, 2, true);
    raw[10] ^= 1;
    const { head, auth } = await streamingHead('STREAMING-UNSIGNED-PAYLOAD-TRAILER', 5000, {
      'x-amz-trailer': 'x-amz-checksum-crc32',
    });
    await assert.rejects(runBody(auth, head, randomSlices(raw, 5, 64)), { code: 'BadDigest', message: /CRC32/ });
  });

  it('without a trailer (plain unsigned aws-chunked)', async () => {
    const data = pattern(3000);
    const raw = await sdkEncode(data, 4, false);
    const { head, auth } = await streamingHead('STREAMING-UNSIGNED-PAYLOAD-TRAILER', 3000);
    const { body, digests } = await runBody(auth, head, byteSlices(raw));
    assert.deepEqual(body, data);
    assert.equal(digests.checksum, undefined);
  });
});

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] signed by the SDK', () => {
  const data = pattern(200_000);
  const encode = (auth: AuthenticatedRequest, d: Buffer, trailer?: { name: string; value: string }) =>
    encodeSignedChunked({
      data: d,
      chunkSize: 65536,
      signingKey: auth.signing.signingKey,
      seed: auth.signing.seedSignature,
      amzDate: auth.signing.amzDate,
      scope: auth.signing.scope,
      ...(trailer === undefined ? {} : { trailer }),
    });

  it('verifies every chunk across arbitrary input splits', async () => {
    const { head, auth } = await streamingHead('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', data.length);
    const raw = encode(auth, data);
    for (const slices of [[raw], randomSlices(raw, 1, 4096), randomSlices(raw, 2, 7)]) {
      assert.deepEqual((await runBody(auth, head, slices)).body, data);
    }
  });

  it('verifies a small body byte by byte, with a signed CRC32 trailer', async () => {
    const small = pattern(700);
    const { head, auth } = await streamingHead('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 700, {
      'x-amz-trailer': 'x-amz-checksum-crc32',
    });
    const crc = new Crc32Js();
    crc.update(small);
    const value = Buffer.from(await crc.digest()).toString('base64');
    const raw = encode(auth, small, { name: 'x-amz-checksum-crc32', value });
    const { body, digests } = await runBody(auth, head, byteSlices(raw));
    assert.deepEqual(body, small);
    assert.deepEqual(digests.checksum, { algorithm: 'CRC32', value, type: 'FULL_OBJECT' });
  });

  it('rejects a flipped byte, swapped chunks, a wrong seed and a missing trailer signature', async () => {
    const { head, auth } = await streamingHead('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', data.length);
    const raw = encode(auth, data);
    const flipped = Buffer.from(raw);
    flipped[150_000] ^= 0x80;
    await assert.rejects(runBody(auth, head, randomSlices(flipped, 9, 5000)), { code: 'SignatureDoesNotMatch' });

    const wrongSeed = encodeSignedChunked({
      data,
      chunkSize: 65536,
      signingKey: auth.signing.signingKey,
      seed: '0'.repeat(64),
      amzDate: auth.signing.amzDate,
      scope: auth.signing.scope,
    });
    await assert.rejects(runBody(auth, head, [wrongSeed]), { code: 'SignatureDoesNotMatch' });

    const c1 = raw.indexOf('\r\n', raw.indexOf(';chunk-signature=')) + 2 + 65536 + 2;
    const c2 = raw.indexOf('\r\n', c1) + 2 + 65536 + 2;
    const swapped = Buffer.concat([raw.subarray(c1, c2), raw.subarray(0, c1), raw.subarray(c2)]);
    assert.equal(swapped.length, raw.length);
    await assert.rejects(runBody(auth, head, [swapped]), { code: 'SignatureDoesNotMatch' });

    const t = await streamingHead('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 10, { 'x-amz-trailer': 'x-amz-checksum-crc32' });
    const noSig = Buffer.concat([
      encode(t.auth, pattern(10)).subarray(0, -2),
      Buffer.from('x-amz-checksum-crc32:AAAAAA==\r\n\r\n'),
    ]);
    await assert.rejects(runBody(t.auth, t.head, [noSig]), { code: 'InvalidRequest' });
  });

  it('an unsigned chunk in a signed stream is rejected', async () => {
    const { head, auth } = await streamingHead('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 5);
    await assert.rejects(runBody(auth, head, [Buffer.from('5\r\nhello\r\n0\r\n\r\n')]), { code: 'InvalidRequest' });
  });
});

describe('framing and length faults', () => {
  const data = pattern(100);
  const good = encodeUnsignedChunked(data, 40);

  async function run(raw: Buffer, declared = 100): Promise<void> {
    const { head, auth } = await streamingHead('STREAMING-UNSIGNED-PAYLOAD-TRAILER', declared);
    await runBody(auth, head, randomSlices(raw, raw.length, 11));
  }

  it('the well-formed body passes', async () => {
    await run(good);
  });

  it('truncated anywhere → IncompleteBody', async () => {
    for (const cut of [0, 1, 3, 30, 60, good.length - 3, good.length - 1]) {
      await assert.rejects(run(good.subarray(0, cut)), { code: 'IncompleteBody' }, `cut at ${cut}`);
    }
  });

  it('fewer decoded bytes than declared → IncompleteBody; more → InvalidRequest', async () => {
    await assert.rejects(run(good, 101), { code: 'IncompleteBody' });
    await assert.rejects(run(good, 99), { code: 'InvalidRequest' });
  });

  it('malformed framing → InvalidRequest', async () => {
    const bad = [
      Buffer.from('zz\r\nabc\r\n0\r\n\r\n'),
      Buffer.from('3\nabc\r\n0\r\n\r\n'),
      Buffer.from('3\r\nabcX\r\n0\r\n\r\n'),
      Buffer.concat([good, Buffer.from('garbage')]),
      Buffer.from(`${'f'.repeat(5000)}\r\n`),
    ];
    for (const b of bad) await assert.rejects(run(b, 3), { code: 'InvalidRequest' }, JSON.stringify(b.toString().slice(0, 30)));
  });

  it('an undeclared trailer → InvalidRequest; a declared but absent trailer → InvalidRequest', async () => {
    const withTrailer = encodeUnsignedChunked(data, 50, { name: 'x-amz-checksum-crc32', value: 'AAAAAA==' });
    await assert.rejects(run(withTrailer), { code: 'InvalidRequest' });
    const { head, auth } = await streamingHead('STREAMING-UNSIGNED-PAYLOAD-TRAILER', 100, { 'x-amz-trailer': 'x-amz-checksum-crc32' });
    await assert.rejects(runBody(auth, head, [good]), { code: 'InvalidRequest' });
  });

  it('missing x-amz-decoded-content-length → MissingContentLength', async () => {
    const head = await signHead({ method: 'PUT', path: '/b/obj', payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' });
    const auth = await verifyRequest(head, lookup, opts);
    await assert.rejects(runBody(auth, head, [good]), { code: 'MissingContentLength' });
  });
});
