/**
 * Plain (non-chunked) bodies: x-amz-content-sha256, Content-Length, Content-MD5 and x-amz-checksum-*
 * verification, the checksum stored, and the guarantees of the stream (no clean end on failure).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { createBodyVerifier } from '../../../src/s3/auth/body.js';
import { verifyRequest } from '../../../src/s3/auth/sigv4.js';
import { CHECKSUM_ALGORITHMS, checksumBase64, checksumHeaderName } from '../../../src/s3/checksums.js';
import type { AuthenticatedRequest, RequestHead } from '../../../src/s3/auth/types.js';
import { ALICE, NOW, REGION, byteSlices, lookupOf, randomSlices, runBody, signHead } from './helpers.js';

const lookup = lookupOf(ALICE);
const opts = { region: REGION, now: NOW };
const BODY = Buffer.from('The quick brown fox jumps over the lazy dog');

async function put(
  headers: Record<string, string>,
  payloadHash?: string,
  body: Buffer = BODY,
): Promise<{ head: RequestHead; auth: AuthenticatedRequest }> {
  const head = await signHead({
    method: 'PUT',
    path: '/b/k',
    body,
    ...(payloadHash === undefined ? {} : { payloadHash }),
    headers: { 'content-length': String(body.length), ...headers },
  });
  return { head, auth: await verifyRequest(head, lookup, opts) };
}

describe('x-amz-content-sha256 and Content-Length', () => {
  it('a matching body passes in any slicing and yields its MD5', async () => {
    const { head, auth } = await put({});
    for (const slices of [[BODY], byteSlices(BODY), randomSlices(BODY, 3, 10)]) {
      const { body, digests } = await runBody(auth, head, slices);
      assert.deepEqual(body, BODY);
      assert.deepEqual(digests, { md5: createHash('md5').update(BODY).digest('hex') });
    }
  });

  it('a different body of the same length → XAmzContentSHA256Mismatch', async () => {
    const { head, auth } = await put({});
    const other = Buffer.from(BODY);
    other[0] = 0x74;
    await assert.rejects(runBody(auth, head, [other]), { code: 'XAmzContentSHA256Mismatch' });
  });

  it('short body → IncompleteBody; long body → InvalidRequest', async () => {
    const { head, auth } = await put({}, 'UNSIGNED-PAYLOAD');
    await assert.rejects(runBody(auth, head, [BODY.subarray(1)]), { code: 'IncompleteBody' });
    await assert.rejects(runBody(auth, head, [BODY, Buffer.from('x')]), { code: 'InvalidRequest' });
  });

  it('UNSIGNED-PAYLOAD accepts any body of the declared length', async () => {
    const { head, auth } = await put({}, 'UNSIGNED-PAYLOAD');
    const other = Buffer.alloc(BODY.length, 1);
    assert.deepEqual((await runBody(auth, head, [other])).body, other);
  });

  it('decodedLength is Content-Length', async () => {
    const { head, auth } = await put({});
    assert.equal(createBodyVerifier(auth, head).decodedLength, BODY.length);
  });
});

describe('Content-MD5', () => {
  const md5 = createHash('md5').update(BODY).digest('base64');

  it('matching → ok; mismatching → BadDigest; malformed → InvalidDigest at creation', async () => {
    const ok = await put({ 'content-md5': md5 });
    await runBody(ok.auth, ok.head, [BODY]);
    const wrong = await put({ 'content-md5': createHash('md5').update('x').digest('base64') });
    await assert.rejects(runBody(wrong.auth, wrong.head, [BODY]), { code: 'BadDigest' });
    for (const bad of ['abc', Buffer.alloc(15).toString('base64'), 'zzzzzzzzzzzzzzzzzzzzzzzz']) {
      const b = await put({ 'content-md5': bad });
      assert.throws(() => createBodyVerifier(b.auth, b.head), { code: 'InvalidDigest' });
    }
  });
});

describe('x-amz-checksum-* headers', () => {
  for (const alg of CHECKSUM_ALGORITHMS) {
    it(`${alg}: correct value stored, wrong value → BadDigest naming ${alg}`, async () => {
      const value = await checksumBase64(alg, BODY);
      const ok = await put({ [checksumHeaderName(alg)]: value, 'x-amz-sdk-checksum-algorithm': alg });
      const { digests } = await runBody(ok.auth, ok.head, randomSlices(BODY, 11, 9));
      assert.deepEqual(digests.checksum, { algorithm: alg, value, type: 'FULL_OBJECT' });

      const wrongValue = await checksumBase64(alg, Buffer.from('other'));
      const bad = await put({ [checksumHeaderName(alg)]: wrongValue });
      await assert.rejects(runBody(bad.auth, bad.head, [BODY]), (err: { code: string; message: string }) => {
        assert.equal(err.code, 'BadDigest');
        assert.ok(err.message.includes(alg), err.message);
        return true;
      });
    });
  }

  it('x-amz-sdk-checksum-algorithm alone: the checksum is computed and stored', async () => {
    const { head, auth } = await put({ 'x-amz-sdk-checksum-algorithm': 'CRC32C' });
    const { digests } = await runBody(auth, head, [BODY]);
    assert.deepEqual(digests.checksum, { algorithm: 'CRC32C', value: await checksumBase64('CRC32C', BODY), type: 'FULL_OBJECT' });
  });

  it('two checksum headers → InvalidRequest', async () => {
    const { head, auth } = await put({
      'x-amz-checksum-crc32': await checksumBase64('CRC32', BODY),
      'x-amz-checksum-crc32c': await checksumBase64('CRC32C', BODY),
    });
    assert.throws(() => createBodyVerifier(auth, head), { code: 'InvalidRequest' });
  });

  it('x-amz-trailer without a trailer payload mode → InvalidRequest', async () => {
    const { head, auth } = await put({ 'x-amz-trailer': 'x-amz-checksum-crc32' });
    assert.throws(() => createBodyVerifier(auth, head), { code: 'InvalidRequest' });
  });
});

describe('stream guarantees', () => {
  it('a failing body never ends cleanly downstream and digests() stays unavailable', async () => {
    const { head, auth } = await put({});
    const v = createBodyVerifier(auth, head);
    let finished = false;
    const sink = new Writable({ write: (_c, _e, cb) => cb(), final: (cb) => ((finished = true), cb()) });
    v.stream.pipe(sink);
    const errored = new Promise<unknown>((resolve) => v.stream.on('error', resolve));
    v.stream.end(Buffer.alloc(BODY.length));
    const err = (await errored) as { code: string };
    assert.equal(err.code, 'XAmzContentSHA256Mismatch');
    assert.equal(finished, false);
    assert.throws(() => v.digests());
  });

  it('refuses a forged proof object', async () => {
    const { head, auth } = await put({});
    const forged = { ...auth } as AuthenticatedRequest;
    assert.throws(() => createBodyVerifier(forged, head), TypeError);
  });
});
