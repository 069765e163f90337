/**
 * The worked examples of the Amazon S3 API Reference ("Signature Calculations for the Authorization
 * Header", "... Query Parameters", "... Chunked Upload", "... Including Trailing Headers"), with their
 * published signatures as fixed vectors. Credentials AKIAIOSFODNN7EXAMPLE, time 20130524T000000Z.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { verifyRequest } from '../../../src/s3/auth/sigv4.js';
import { signingKey, EMPTY_SHA256 } from '../../../src/s3/auth/canonical.js';
import type { RequestHead } from '../../../src/s3/auth/types.js';
import { byteSlices, encodeSignedChunked, lookupOf, outcome, randomSlices, runBody } from './helpers.js';

const EXAMPLE = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  buckets: ['examplebucket'],
};
const lookup = lookupOf(EXAMPLE);
const opts = { region: 'us-east-1', now: Date.UTC(2013, 4, 24, 0, 5, 0) };
const CRED = 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request';
const SCOPE = '20130524/us-east-1/s3/aws4_request';

function authz(signed: string, sig: string): string {
  return `AWS4-HMAC-SHA256 Credential=${CRED},SignedHeaders=${signed},Signature=${sig}`;
}

describe('AWS documentation examples: Authorization header', () => {
  it('GET Object with Range', async () => {
    const head: RequestHead = {
      method: 'GET',
      rawPath: '/test.txt',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        range: 'bytes=0-9',
        'x-amz-content-sha256': EMPTY_SHA256,
        'x-amz-date': '20130524T000000Z',
        authorization: authz(
          'host;range;x-amz-content-sha256;x-amz-date',
          'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
        ),
      },
    };
    const auth = await verifyRequest(head, lookup, opts);
    assert.equal(auth.credential.accessKeyId, 'AKIAIOSFODNN7EXAMPLE');
    assert.deepEqual(auth.payload, { kind: 'sha256', hex: EMPTY_SHA256 });
    assert.equal(auth.presigned, false);
    assert.equal(await outcome(verifyRequest({ ...head, headers: { ...head.headers, range: 'bytes=0-10' } }, lookup, opts)), 'SignatureDoesNotMatch');
  });

  it('PUT Object with a $ in the key, the Date header signed, and the body hash checked', async () => {
    const body = Buffer.from('Welcome to Amazon S3.');
    const hash = '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072';
    const head: RequestHead = {
      method: 'PUT',
      rawPath: '/test$file.text',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        date: 'Fri, 24 May 2013 00:00:00 GMT',
        'x-amz-date': '20130524T000000Z',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        'x-amz-content-sha256': hash,
        'content-length': String(body.length),
        authorization: authz(
          'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
          '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
        ),
      },
    };
    const auth = await verifyRequest(head, lookup, opts);
    // '$' raw on the wire and %24 are the same canonical URI.
    await verifyRequest({ ...head, rawPath: '/test%24file.text' }, lookup, opts);
    const { body: out, digests } = await runBody(auth, head, [body]);
    assert.deepEqual(out, body);
    assert.equal(digests.md5, createHash('md5').update(body).digest('hex'));
    await assert.rejects(runBody(auth, head, [Buffer.from('Welcome to Amazon S3!')]), { code: 'XAmzContentSHA256Mismatch' });
  });

  it('GET Bucket lifecycle (valueless query parameter)', async () => {
    const head: RequestHead = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'lifecycle',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-date': '20130524T000000Z',
        'x-amz-content-sha256': EMPTY_SHA256,
        authorization: authz(
          'host;x-amz-content-sha256;x-amz-date',
          'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
        ),
      },
    };
    await verifyRequest(head, lookup, opts);
    await verifyRequest({ ...head, rawQuery: 'lifecycle=' }, lookup, opts);
    assert.equal(await outcome(verifyRequest({ ...head, rawQuery: 'policy' }, lookup, opts)), 'SignatureDoesNotMatch');
  });

  it('GET Bucket (List Objects), query sorted regardless of wire order', async () => {
    const head: RequestHead = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'prefix=J&max-keys=2',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-date': '20130524T000000Z',
        'x-amz-content-sha256': EMPTY_SHA256,
        authorization: authz(
          'host;x-amz-content-sha256;x-amz-date',
          '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
        ),
      },
    };
    await verifyRequest(head, lookup, opts);
    assert.equal(await outcome(verifyRequest({ ...head, rawQuery: 'max-keys=3&prefix=J' }, lookup, opts)), 'SignatureDoesNotMatch');
  });
});

describe('AWS documentation examples: presigned URL', () => {
  const query =
    'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
    '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
    '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
  const head: RequestHead = { method: 'GET', rawPath: '/test.txt', rawQuery: query, headers: { host: 'examplebucket.s3.amazonaws.com' } };

  it('verifies within its 86400 s lifetime, as UNSIGNED-PAYLOAD', async () => {
    const auth = await verifyRequest(head, lookup, { region: 'us-east-1', now: Date.UTC(2013, 4, 24, 23, 59, 0) });
    assert.equal(auth.presigned, true);
    assert.deepEqual(auth.payload, { kind: 'unsigned' });
  });

  it('is AccessDenied "Request has expired" after it', async () => {
    await assert.rejects(verifyRequest(head, lookup, { region: 'us-east-1', now: Date.UTC(2013, 4, 25, 0, 0, 1) }), {
      code: 'AccessDenied',
      message: 'Request has expired',
    });
  });

  it('rejects another key', async () => {
    const other = { ...head, rawPath: '/test2.txt' };
    assert.equal(await outcome(verifyRequest(other, lookup, opts)), 'SignatureDoesNotMatch');
  });
});

function chunkedHead(trailer: boolean, seed: string): RequestHead {
  const headers: Record<string, string> = {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': trailer ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER' : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
  };
  if (trailer) {
    headers['x-amz-trailer'] = 'x-amz-checksum-crc32c';
    headers['authorization'] = authz(
      'content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer',
      seed,
    );
  } else {
    headers['content-length'] = '66824';
    headers['authorization'] = authz(
      'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
      seed,
    );
  }
  return { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers };
}

describe('AWS documentation example: chunked upload of 66560 bytes', () => {
  const data = Buffer.alloc(66560, 'a');
  const seed = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
  const sigs = [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
  ];
  // The body exactly as the documentation lays it out.
  const raw = Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    data.subarray(0, 65536),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    data.subarray(65536),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n\r\n`),
  ]);
  const head = chunkedHead(false, seed);

  it('has the published seed signature and total Content-Length 66824', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    assert.equal(auth.signing.seedSignature, seed);
    assert.deepEqual(auth.payload, { kind: 'streaming-signed', trailer: false });
    assert.equal(raw.length, 66824);
  });

  it('decodes and verifies whole, byte by byte, and in random slices', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    for (const slices of [[raw], byteSlices(raw), randomSlices(raw, 7, 5000), randomSlices(raw, 99, 13)]) {
      const { body, digests } = await runBody(auth, head, slices);
      assert.deepEqual(body, data);
      assert.equal(digests.md5, createHash('md5').update(data).digest('hex'));
    }
  });

  it('matches the independent test encoder byte for byte', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    const mine = encodeSignedChunked({
      data,
      chunkSize: 65536,
      signingKey: signingKey(EXAMPLE.secretAccessKey, '20130524', 'us-east-1'),
      seed,
      amzDate: '20130524T000000Z',
      scope: SCOPE,
    });
    assert.deepEqual(mine, raw);
    assert.ok(auth);
  });

  it('rejects a flipped data byte in either chunk with SignatureDoesNotMatch', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    for (const pos of [200, 66000]) {
      const bad = Buffer.from(raw);
      bad[pos] = 0x62;
      await assert.rejects(runBody(auth, head, randomSlices(bad, pos, 3000)), { code: 'SignatureDoesNotMatch' });
    }
  });
});

describe('AWS documentation example: chunked upload with a signed CRC32C trailer', () => {
  const data = Buffer.alloc(66560, 'a');
  const seed = '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e';
  const sigs = [
    'b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2',
    '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7',
    '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992',
  ];
  const trailerSig = 'd81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435';
  const build = (checksum: string, tsig: string): Buffer =>
    Buffer.concat([
      Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
      data.subarray(0, 65536),
      Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
      data.subarray(65536),
      Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n`),
      Buffer.from(`x-amz-checksum-crc32c:${checksum}\r\nx-amz-trailer-signature:${tsig}\r\n\r\n`),
    ]);
  const head = chunkedHead(true, seed);

  it('verifies chunks, trailer signature and the CRC32C value, and stores it', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    const raw = build('sOO8/Q==', trailerSig);
    for (const slices of [[raw], byteSlices(raw), randomSlices(raw, 3, 700)]) {
      const { body, digests } = await runBody(auth, head, slices);
      assert.deepEqual(body, data);
      assert.deepEqual(digests.checksum, { algorithm: 'CRC32C', value: 'sOO8/Q==', type: 'FULL_OBJECT' });
    }
  });

  it('rejects a tampered trailer value (signature) and a wrong trailer signature', async () => {
    const auth = await verifyRequest(head, lookup, opts);
    await assert.rejects(runBody(auth, head, [build('AAAAAA==', trailerSig)]), { code: 'SignatureDoesNotMatch' });
    await assert.rejects(runBody(auth, head, [build('sOO8/Q==', trailerSig.replace(/^d/, 'e'))]), {
      code: 'SignatureDoesNotMatch',
    });
  });
});
