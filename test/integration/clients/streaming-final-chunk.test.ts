/**
 * Regression (found with restic, whose minio-go sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies): when an
 * S3 backend acknowledged the declared number of bytes before the client's aws-chunked final chunk (and
 * trailer) arrived, core asked for the body digests before verification had finished and the request
 * failed with 500 InternalError ("digests() is only valid after the body stream ended cleanly").
 *
 * These tests hold the final chunk back until a capturing proxy in front of the s3rver backend has seen the
 * backend answer, so the order that used to break is forced, not hoped for.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { crc32 } from 'node:zlib';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { startCaptureProxy, type CaptureProxy, type CapturedRequest } from '../../harness/clients.js';
import { logicalPrefix } from '../../../src/backends/layout.js';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';
import { parseErrorXml, signRequest, withQuery } from '../s3/helpers.js';

let s3rver: S3rverInstance;
let proxy: CaptureProxy;
let t: TestOrchestrator;

function crc32Base64(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE((crc32 as (d: Buffer) => number)(data) >>> 0);
  return b.toString('base64');
}

/**
 * Sends `data` as one aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER body with a CRC32 trailer (`trailer`,
 * default the right one) to `key` in bucket `data`, holding back the final chunk until the backend answered
 * the orchestrator's PUT of these bytes (under the key's physical prefix, with `partNumber` for a part).
 */
async function putWithLateFinalChunk(
  key: string,
  query: Record<string, string>,
  data: Buffer,
  trailer = crc32Base64(data),
): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
  const path = `/data/${key}`;
  const physical = `/${logicalPrefix('data', key)}`;
  const isOurs = (r: CapturedRequest): boolean =>
    r.method === 'PUT' && r.url.includes(physical) && (query['partNumber'] === undefined || r.url.includes(`partNumber=${query['partNumber']}`));
  const headers = await signRequest(t.endpoint, {
    method: 'PUT',
    path,
    query,
    payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    headers: {
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(data.length),
      'x-amz-trailer': 'x-amz-checksum-crc32',
    },
  });
  const first = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
  const last = Buffer.from(`0\r\nx-amz-checksum-crc32:${trailer}\r\n\r\n`);
  headers['content-length'] = String(first.length + last.length);
  const u = new URL(t.endpoint);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'PUT', path: withQuery(path, query), headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.write(first);
    proxy.responded(isOurs).then(
      () => req.end(last),
      (err: unknown) => req.destroy(err as Error),
    );
  });
}

describe('aws-chunked final chunk arriving after the backend stored the bytes', () => {
  before(async () => {
    s3rver = await startS3rver();
    proxy = await startCaptureProxy(s3rver.endpoint);
    const backend = { ...s3BackendConfig(s3rver, 's3-proxied'), endpoint: proxy.url };
    t = await startTestOrchestrator({ s3rvers: 0, fsBackends: 0, extraBackends: [backend] });
  });
  after(async () => {
    await t?.stop();
    await proxy?.close();
    await s3rver?.stop();
  });

  it('PutObject_commits_after_the_late_trailer_is_verified', async () => {
    const data = Buffer.alloc(200_000, 7);
    const res = await putWithLateFinalChunk('late/put.bin', {}, data);
    assert.equal(res.status, 200, res.text);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'late/put.bin' }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), data);
  });

  it('PutObject_late_wrong_trailer_is_BadDigest_and_nothing_is_committed', async () => {
    const data = Buffer.alloc(150_000, 9);
    const res = await putWithLateFinalChunk('late/bad.bin', {}, data, crc32Base64(Buffer.from('other')));
    assert.equal(res.status, 400, res.text);
    assert.equal(parseErrorXml(res.text)['Code'], 'BadDigest');
    await assert.rejects(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'late/bad.bin' })), { name: 'NotFound' });
  });

  it('UploadPart_records_the_part_after_the_late_trailer_is_verified', async () => {
    const key = 'late/multipart.bin';
    const data = Buffer.alloc(5 * 1024 * 1024 + 11, 3);
    const created = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key, ChecksumAlgorithm: 'CRC32' }));
    const uploadId = created.UploadId!;
    const res = await putWithLateFinalChunk(key, { partNumber: '1', uploadId }, data);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-amz-checksum-crc32'], crc32Base64(data));
    await t.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'data',
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: String(res.headers.etag), ChecksumCRC32: crc32Base64(data) }] },
      }),
    );
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), data);
  });
});
