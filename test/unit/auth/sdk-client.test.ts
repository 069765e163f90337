/**
 * The real @aws-sdk/client-s3 (and s3-request-presigner) against a node:http server on port 0 that
 * authenticates each request with verifyRequest and checks its body with createBodyVerifier: whatever
 * the current SDK sends (plain sha256 bodies, STREAMING-UNSIGNED-PAYLOAD-TRAILER with CRC trailers,
 * checksum headers, presigned URLs) must verify, and a wrong secret must not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ChecksumAlgorithm } from '../../../src/core/types.js';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BodyDigests } from '../../../src/core/types.js';
import { S3Error, toS3Error } from '../../../src/s3/errors.js';
import { createBodyVerifier } from '../../../src/s3/auth/body.js';
import { verifyRequest } from '../../../src/s3/auth/sigv4.js';
import type { RequestHead } from '../../../src/s3/auth/types.js';
import { checksumBase64 } from '../../../src/s3/checksums.js';
import { ALICE, REGION, lookupOf } from './helpers.js';

interface Seen {
  method: string;
  url: string;
  payload: string;
  body: Buffer;
  digests?: BodyDigests;
  error?: string;
}

const seen: Seen[] = [];
let server: http.Server;
let endpoint: string;

function headOf(req: http.IncomingMessage): RequestHead {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return {
    method: req.method ?? 'GET',
    rawPath: q < 0 ? url : url.slice(0, q),
    rawQuery: q < 0 ? '' : url.slice(q + 1),
    headers,
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const head = headOf(req);
  const record: Seen = { method: head.method, url: req.url ?? '', payload: head.headers['x-amz-content-sha256'] ?? '', body: Buffer.alloc(0) };
  seen.push(record);
  try {
    const auth = await verifyRequest(head, lookupOf(ALICE), { region: REGION });
    const verifier = createBodyVerifier(auth, head);
    const out: Buffer[] = [];
    await pipeline(req, verifier.stream, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
    record.body = Buffer.concat(out);
    record.digests = verifier.digests();
    res.setHeader('etag', `"${record.digests.md5}"`);
    if (head.method === 'GET' && head.rawQuery.includes('list-type=2')) {
      res.setHeader('content-type', 'application/xml');
      res.end('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>');
    } else if (head.method === 'POST') {
      res.setHeader('content-type', 'application/xml');
      res.end('<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>');
    } else {
      res.end(head.method === 'GET' ? 'ok' : undefined);
    }
  } catch (err) {
    const e: S3Error = toS3Error(err);
    record.error = e.code;
    req.resume();
    res.statusCode = e.status;
    res.setHeader('content-type', 'application/xml');
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${e.code}</Code><Message>${e.message}</Message></Error>`);
  }
}

function client(secret = ALICE.secretAccessKey): S3Client {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ALICE.accessKeyId, secretAccessKey: secret },
    maxAttempts: 1,
  });
}

before(async () => {
  server = http.createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const last = (): Seen => seen[seen.length - 1]!;
const KEYS = ['plain', 'a b/c+d/ü日本/%41', 'x//y', "q?#&=;,!'()*~"];

describe('@aws-sdk/client-s3 requests verify end to end', () => {
  it('PutObject with a Buffer body (sha256 payload, CRC32 header) for tricky keys', async () => {
    const s3 = client();
    for (const Key of KEYS) {
      const data = Buffer.from(`data for ${Key}`);
      await s3.send(new PutObjectCommand({ Bucket: 'b', Key, Body: data }));
      const r = last();
      assert.equal(r.error, undefined, r.url);
      assert.match(r.payload, /^[0-9a-f]{64}$/);
      assert.deepEqual(r.body, data);
      assert.equal(r.digests?.checksum?.value, await checksumBase64('CRC32', data));
    }
    s3.destroy();
  });

  it('PutObject with a stream body (STREAMING-UNSIGNED-PAYLOAD-TRAILER) for every checksum algorithm', async () => {
    const s3 = client();
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    for (const alg of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as ChecksumAlgorithm[]) {
      const Body = Readable.from([data.subarray(0, 70_000), data.subarray(70_000, 200_001), data.subarray(200_001)]);
      await s3.send(new PutObjectCommand({ Bucket: 'b', Key: `s/${alg}`, Body, ContentLength: data.length, ChecksumAlgorithm: alg }));
      const r = last();
      assert.equal(r.error, undefined, alg);
      assert.equal(r.payload, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
      assert.deepEqual(r.body, data);
      assert.deepEqual(r.digests?.checksum, { algorithm: alg, value: await checksumBase64(alg, data), type: 'FULL_OBJECT' });
    }
    s3.destroy();
  });

  it('UploadPart, GetObject, HeadObject, ListObjectsV2 with an awkward prefix, DeleteObjects', async () => {
    const s3 = client();
    await s3.send(new UploadPartCommand({ Bucket: 'b', Key: 'a b', UploadId: 'u+1/=', PartNumber: 3, Body: Buffer.from('part') }));
    assert.equal(last().error, undefined);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'b', Key: KEYS[1]!, Range: 'bytes=0-1', ResponseContentType: 'text/plain; x=y' }));
    assert.equal(await got.Body?.transformToString(), 'ok');
    await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: KEYS[3]! }));
    assert.equal(last().error, undefined);
    await s3.send(new ListObjectsV2Command({ Bucket: 'b', Prefix: 'a b+c/日/%', Delimiter: '/', StartAfter: 'x=y&z', MaxKeys: 7 }));
    assert.equal(last().error, undefined);
    await s3.send(new DeleteObjectsCommand({ Bucket: 'b', Delete: { Objects: [{ Key: 'k1' }, { Key: 'k 2' }] } }));
    assert.equal(last().error, undefined);
    assert.ok(last().digests?.checksum, 'DeleteObjects carries a checksum');
    s3.destroy();
  });

  it('a wrong secret surfaces as SignatureDoesNotMatch in the SDK', async () => {
    const s3 = client('wrong-secret');
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' })), (err: unknown) => {
      assert.ok(err instanceof S3ServiceException);
      assert.equal(err.name, 'SignatureDoesNotMatch');
      return true;
    });
    s3.destroy();
  });
});

describe('@aws-sdk/s3-request-presigner URLs verify end to end', () => {
  async function fetchRaw(url: string, method: string, body?: Buffer): Promise<number> {
    const res = await fetch(url, { method, ...(body === undefined ? {} : { body }) });
    await res.arrayBuffer();
    return res.status;
  }

  it('GET and PUT, tricky keys, then tampered and expired', async () => {
    const s3 = client();
    for (const Key of KEYS) {
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'b', Key }), { expiresIn: 60 });
      assert.equal(await fetchRaw(url, 'GET'), 200, url);
    }
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'b', Key: 'up' }), { expiresIn: 60 });
    assert.equal(await fetchRaw(putUrl, 'PUT', Buffer.from('presigned body')), 200);
    assert.deepEqual(last().body, Buffer.from('presigned body'));

    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'b', Key: 'k' }), { expiresIn: 60 });
    assert.equal(await fetchRaw(getUrl.replace('/b/k?', '/b/j?'), 'GET'), 403);
    assert.equal(last().error, 'SignatureDoesNotMatch');

    const old = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'b', Key: 'k' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 5 * 60 * 1000),
    });
    assert.equal(await fetchRaw(old, 'GET'), 403);
    assert.equal(last().error, 'AccessDenied');
    s3.destroy();
  });
});
