/**
 * GetObject / HeadObject with ?partNumber: part N of a multipart object (206, Content-Range,
 * x-amz-mp-parts-count), part 1 of a single-part object is the whole object, a part the object does not
 * have is 416 InvalidPartNumber — including after a CopyObject of the multipart object.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectS3Error, patternBytes, sha256 } from './helpers.js';

const MiB = 1024 * 1024;
let t: TestOrchestrator;
const parts = [patternBytes(5 * MiB, 1), patternBytes(5 * MiB + 3, 2), patternBytes(1234, 3)];

before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
  const { UploadId } = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'mp' }));
  const done = [];
  for (const [i, body] of parts.entries()) {
    const r = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp', UploadId, PartNumber: i + 1, Body: body }));
    done.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  await t.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'mp', UploadId, MultipartUpload: { Parts: done } }));
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'single', Body: 'just one part' }));
});
after(() => t?.stop());

describe('partNumber', () => {
  it('GetObject_partNumber_serves_each_part_of_a_multipart_object', async () => {
    let offset = 0;
    for (const [i, body] of parts.entries()) {
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp', PartNumber: i + 1 }));
      assert.equal(got.$metadata.httpStatusCode, 206);
      assert.equal(got.PartsCount, 3);
      assert.equal(got.ContentLength, body.length);
      assert.equal(got.ContentRange, `bytes ${offset}-${offset + body.length - 1}/${parts.reduce((n, p) => n + p.length, 0)}`);
      assert.equal(sha256(await bytesOf(got.Body)), sha256(body));
      offset += body.length;
    }
  });

  it('HeadObject_partNumber_reports_the_part_length', async () => {
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'mp', PartNumber: 2 }));
    assert.equal(head.ContentLength, parts[1]!.length);
    assert.equal(head.PartsCount, 3);
  });

  it('GetObject_partNumber_1_of_a_single_part_object_is_the_whole_object', async () => {
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'single', PartNumber: 1 }));
    assert.equal(await got.Body!.transformToString(), 'just one part');
    await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'single', PartNumber: 2 })), 'InvalidPartNumber', 416);
  });

  it('GetObject_partNumber_beyond_the_parts_is_InvalidPartNumber', async () => {
    await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp', PartNumber: 4 })), 'InvalidPartNumber', 416);
  });

  it('CopyObject_keeps_the_part_layout', async () => {
    await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'mp-copy', CopySource: 'data/mp' }));
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp-copy', PartNumber: 3 }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(parts[2]!));
  });
});
