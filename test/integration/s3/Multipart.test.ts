/**
 * Multipart uploads end to end through @aws-sdk/client-s3 with default settings (CRC32 part checksums
 * in aws-chunked trailers): the happy path with bytes compared by hash, re-uploaded parts,
 * UploadPartCopy with a range, ListParts and ListMultipartUploads paging, the S3 errors
 * (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload, InvalidArgument, tenant isolation), and
 * composite CRC32 checksums. Expected ETags and checksums are computed here, independently of src/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { BOTH_CREDS, clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectRawError, expectS3Error, patternBytes, rawRequest, sha256 } from './helpers.js';

const MiB = 1024 * 1024;
let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
});
after(() => t?.stop());

const md5 = (b: Buffer) => createHash('md5').update(b).digest();
/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, dash, part count. */
const multipartEtag = (parts: Buffer[]) => `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-${parts.length}"`;
const crc32Bytes = (b: Buffer) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(b) >>> 0);
  return out;
};

async function create(key: string, extra: Partial<ConstructorParameters<typeof CreateMultipartUploadCommand>[0]> = {}): Promise<string> {
  const r = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key, ...extra }));
  assert.ok(r.UploadId);
  return r.UploadId;
}

async function part(key: string, uploadId: string, n: number, body: Buffer): Promise<CompletedPart> {
  const r = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId: uploadId, PartNumber: n, Body: body }));
  assert.equal(r.ETag, `"${md5(body).toString('hex')}"`);
  return { PartNumber: n, ETag: r.ETag! };
}

const complete = (key: string, uploadId: string, parts: CompletedPart[]) =>
  t.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));

describe('multipart uploads', () => {
  it('Multipart_three_parts_round_trip', async () => {
    const bodies = [patternBytes(5 * MiB, 1), patternBytes(5 * MiB, 2), patternBytes(1234, 3)];
    const id = await create('mp/three', { ContentType: 'video/mp4', Metadata: { origin: 'camera' } });
    const parts: CompletedPart[] = [];
    for (const [i, b] of bodies.entries()) parts.push(await part('mp/three', id, i + 1, b));
    const done = await complete('mp/three', id, parts);
    assert.equal(done.ETag, multipartEtag(bodies));
    assert.equal(done.Bucket, 'data');
    assert.equal(done.Key, 'mp/three');
    assert.match(done.Location ?? '', /\/data\/mp\/three$/);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'mp/three' }));
    assert.equal(head.ContentLength, 10 * MiB + 1234);
    assert.equal(head.ContentType, 'video/mp4');
    assert.deepEqual(head.Metadata, { origin: 'camera' });
    assert.equal(head.ETag, multipartEtag(bodies));
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp/three' }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(Buffer.concat(bodies)));
    const uploads = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'mp/three' }));
    assert.deepEqual(uploads.Uploads ?? [], [], 'a completed upload is no longer listed');
  });

  it('Multipart_reuploaded_part_replaces_the_first', async () => {
    const id = await create('mp/redo');
    const first = await part('mp/redo', id, 1, patternBytes(5 * MiB, 10));
    const second = await part('mp/redo', id, 1, patternBytes(5 * MiB, 11));
    const last = await part('mp/redo', id, 2, Buffer.from('tail'));
    const listed = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/redo', UploadId: id }));
    assert.deepEqual(listed.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]), [[1, second.ETag, 5 * MiB], [2, last.ETag, 4]]);
    await expectS3Error(complete('mp/redo', id, [first, last]), 'InvalidPart', 400);
    await complete('mp/redo', id, [second, last]);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp/redo' }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(Buffer.concat([patternBytes(5 * MiB, 11), Buffer.from('tail')])));
  });

  it('UploadPartCopy_with_a_range', async () => {
    const src = patternBytes(6 * MiB, 20);
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'mp/copy-src', Body: src }));
    const id = await create('mp/copied');
    const r = await t.client.send(
      new UploadPartCopyCommand({
        Bucket: 'data', Key: 'mp/copied', UploadId: id, PartNumber: 1,
        CopySource: 'data/mp/copy-src', CopySourceRange: `bytes=${MiB}-${6 * MiB - 1}`,
      }),
    );
    const copied = src.subarray(MiB);
    assert.equal(r.CopyPartResult?.ETag, `"${md5(copied).toString('hex')}"`);
    assert.ok(r.CopyPartResult?.LastModified instanceof Date);
    const tail = await part('mp/copied', id, 2, Buffer.from('end'));
    await complete('mp/copied', id, [{ PartNumber: 1, ETag: r.CopyPartResult!.ETag! }, tail]);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp/copied' }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(Buffer.concat([copied, Buffer.from('end')])));
  });

  it('UploadPartCopy_range_beyond_the_source_is_InvalidArgument', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'mp/small-src', Body: 'tiny' }));
    const id = await create('mp/bad-copy');
    await expectS3Error(
      t.client.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'mp/bad-copy', UploadId: id, PartNumber: 1, CopySource: 'data/mp/small-src', CopySourceRange: 'bytes=0-10' })),
      'InvalidArgument',
      400,
    );
    await expectS3Error(
      t.client.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'mp/bad-copy', UploadId: id, PartNumber: 1, CopySource: 'data/mp/absent' })),
      'NoSuchKey',
      404,
    );
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/bad-copy', UploadId: id }));
  });

  it('ListParts_pages_with_max_parts_and_marker', async () => {
    const id = await create('mp/pages');
    for (const n of [1, 2, 3]) await part('mp/pages', id, n, Buffer.from(`part ${n}`));
    const p1 = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/pages', UploadId: id, MaxParts: 2 }));
    assert.deepEqual(p1.Parts?.map((p) => p.PartNumber), [1, 2]);
    assert.equal(p1.IsTruncated, true);
    assert.equal(p1.NextPartNumberMarker, '2');
    assert.equal(p1.MaxParts, 2);
    assert.equal(p1.StorageClass, 'STANDARD');
    assert.equal(p1.Initiator?.DisplayName, 'AKIATESTORCHESTRATOR1');
    const p2 = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/pages', UploadId: id, MaxParts: 2, PartNumberMarker: p1.NextPartNumberMarker! }));
    assert.deepEqual(p2.Parts?.map((p) => [p.PartNumber, p.Size]), [[3, 6]]);
    assert.equal(p2.IsTruncated, false);
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/pages', UploadId: id }));
    await expectS3Error(t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/pages', UploadId: id })), 'NoSuchUpload', 404);
  });

  it('ListMultipartUploads_prefix_delimiter_and_markers', async () => {
    const keys = ['lmu/a/1', 'lmu/a/2', 'lmu/b', 'lmu/c', 'lmu/c', 'other/x'];
    const ids: string[] = [];
    for (const k of keys) ids.push(await create(k));
    try {
      const grouped = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lmu/', Delimiter: '/' }));
      assert.deepEqual(grouped.CommonPrefixes?.map((p) => p.Prefix), ['lmu/a/']);
      assert.deepEqual(grouped.Uploads?.map((u) => u.Key), ['lmu/b', 'lmu/c', 'lmu/c']);
      assert.equal(grouped.IsTruncated, false);
      const cIds = grouped.Uploads!.filter((u) => u.Key === 'lmu/c').map((u) => u.UploadId);
      assert.deepEqual([...cIds].sort(), [ids[3], ids[4]].sort());

      const page1 = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lmu/', MaxUploads: 3 }));
      assert.deepEqual(page1.Uploads?.map((u) => u.Key), ['lmu/a/1', 'lmu/a/2', 'lmu/b']);
      assert.equal(page1.IsTruncated, true);
      assert.equal(page1.NextKeyMarker, 'lmu/b');
      const page2 = await t.client.send(
        new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lmu/', MaxUploads: 3, KeyMarker: page1.NextKeyMarker!, UploadIdMarker: page1.NextUploadIdMarker! }),
      );
      assert.deepEqual(page2.Uploads?.map((u) => u.Key), ['lmu/c', 'lmu/c']);
      assert.equal(page2.IsTruncated, false);
      // A key-marker alone skips every upload of that key.
      const afterC = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lmu/', KeyMarker: 'lmu/c' }));
      assert.deepEqual(afterC.Uploads ?? [], []);
      assert.ok(grouped.Uploads!.every((u) => u.Initiated instanceof Date && u.StorageClass === 'STANDARD'));
    } finally {
      for (const [i, k] of keys.entries()) await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: k, UploadId: ids[i]! }));
    }
    const left = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lmu/' }));
    assert.deepEqual(left.Uploads ?? [], []);
  });

  it('ListMultipartUploads_url_encoding', async () => {
    const id = await create('enc/a b+c');
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data', query: { uploads: '', prefix: 'enc/', 'encoding-type': 'url' } });
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, /<Key>enc\/a\+b%2Bc<\/Key>/);
    assert.match(res.text, /<EncodingType>url<\/EncodingType>/);
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'enc/a b+c', UploadId: id }));
  });
});

describe('multipart errors', () => {
  it('CompleteMultipartUpload_small_first_part_is_EntityTooSmall', async () => {
    const id = await create('mp/small');
    const parts = [await part('mp/small', id, 1, Buffer.from('a')), await part('mp/small', id, 2, Buffer.from('b'))];
    await expectS3Error(complete('mp/small', id, parts), 'EntityTooSmall', 400);
    // A single small part is a valid (last) part.
    await complete('mp/small', id, parts.slice(0, 1));
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp/small' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'a');
    assert.equal(got.ETag, multipartEtag([Buffer.from('a')]));
  });

  it('CompleteMultipartUpload_InvalidPart_and_InvalidPartOrder', async () => {
    const id = await create('mp/order');
    const p1 = await part('mp/order', id, 1, patternBytes(5 * MiB, 40));
    const p2 = await part('mp/order', id, 2, Buffer.from('two'));
    await expectS3Error(complete('mp/order', id, [p2, p1]), 'InvalidPartOrder', 400);
    await expectS3Error(complete('mp/order', id, [p1, { PartNumber: 3, ETag: p2.ETag! }]), 'InvalidPart', 400);
    await expectS3Error(complete('mp/order', id, [p1, { PartNumber: 2, ETag: '"0123456789abcdef0123456789abcdef"' }]), 'InvalidPart', 400);
    await complete('mp/order', id, [p1, p2]);
  });

  it('CompleteMultipartUpload_malformed_bodies_are_MalformedXML', async () => {
    const id = await create('mp/xml');
    for (const body of ['', '<CompleteMultipartUpload/>', '<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>', '<Nope/>', '<CompleteMultipartUpload><Part>']) {
      const res = await rawRequest(t.endpoint, { method: 'POST', path: '/data/mp/xml', query: { uploadId: id }, body });
      expectRawError(res, 'MalformedXML', 400);
    }
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/xml', UploadId: id }));
  });

  it('NoSuchUpload_for_unknown_or_finished_uploads', async () => {
    const bogus = 'no-such-upload-id';
    await expectS3Error(t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/x', UploadId: bogus, PartNumber: 1, Body: 'x' })), 'NoSuchUpload', 404);
    await expectS3Error(complete('mp/x', bogus, [{ PartNumber: 1, ETag: '"x"' }]), 'NoSuchUpload', 404);
    await expectS3Error(t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/x', UploadId: bogus })), 'NoSuchUpload', 404);
    const id = await create('mp/x');
    // The upload id belongs to mp/x: another key of the same bucket does not find it.
    await expectS3Error(t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/y', UploadId: id, PartNumber: 1, Body: 'x' })), 'NoSuchUpload', 404);
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/x', UploadId: id }));
    await expectS3Error(t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/x', UploadId: id, PartNumber: 1, Body: 'x' })), 'NoSuchUpload', 404);
    await expectS3Error(t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/x', UploadId: id })), 'NoSuchUpload', 404);
  });

  it('Multipart_upload_id_of_another_tenant_is_never_usable', async () => {
    // The copy source below exists, so its AccessDenied is about the credential, not a missing key.
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'mp/tenant-src', Body: 'not for the other tenant' }));
    const id = await create('mp/tenant');
    const other = t.otherClient;
    // The other tenant, with its own bucket and the stolen id: the upload is not found there.
    await expectS3Error(other.send(new UploadPartCommand({ Bucket: 'other', Key: 'mp/tenant', UploadId: id, PartNumber: 1, Body: 'evil' })), 'NoSuchUpload', 404);
    await expectS3Error(other.send(new ListPartsCommand({ Bucket: 'other', Key: 'mp/tenant', UploadId: id })), 'NoSuchUpload', 404);
    await expectS3Error(other.send(new AbortMultipartUploadCommand({ Bucket: 'other', Key: 'mp/tenant', UploadId: id })), 'NoSuchUpload', 404);
    await expectS3Error(
      other.send(new CompleteMultipartUploadCommand({ Bucket: 'other', Key: 'mp/tenant', UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })),
      'NoSuchUpload',
      404,
    );
    // ... and the owner's bucket is not theirs.
    await expectS3Error(other.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/tenant', UploadId: id, PartNumber: 1, Body: 'evil' })), 'AccessDenied', 403);
    await expectS3Error(other.send(new ListMultipartUploadsCommand({ Bucket: 'data' })), 'AccessDenied', 403);
    const mine = await other.send(new ListMultipartUploadsCommand({ Bucket: 'other' }));
    assert.ok(!(mine.Uploads ?? []).some((u) => u.UploadId === id));
    // UploadPartCopy from a bucket the credential may not read is AccessDenied even into its own upload.
    const otherId = (await other.send(new CreateMultipartUploadCommand({ Bucket: 'other', Key: 'steal' }))).UploadId!;
    await expectS3Error(
      other.send(new UploadPartCopyCommand({ Bucket: 'other', Key: 'steal', UploadId: otherId, PartNumber: 1, CopySource: 'data/mp/tenant-src' })),
      'AccessDenied',
      403,
    );
    await other.send(new AbortMultipartUploadCommand({ Bucket: 'other', Key: 'steal', UploadId: otherId }));
    const listed = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/tenant', UploadId: id }));
    assert.deepEqual(listed.Parts ?? [], [], 'nothing was uploaded into the owner\'s upload');
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/tenant', UploadId: id }));
  });

  it('UploadPart_part_number_out_of_range_is_InvalidArgument', async () => {
    const id = await create('mp/range');
    for (const n of ['0', '10001', 'x']) {
      const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/mp/range', query: { partNumber: n, uploadId: id }, body: 'x' });
      expectRawError(res, 'InvalidArgument', 400);
    }
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/range', UploadId: id }));
  });

  it('CompleteMultipartUpload_If_None_Match_star_on_an_existing_key_is_PreconditionFailed', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'mp/exists', Body: 'old' }));
    const id = await create('mp/exists');
    const p = await part('mp/exists', id, 1, Buffer.from('new'));
    await expectS3Error(
      t.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'mp/exists', UploadId: id, IfNoneMatch: '*', MultipartUpload: { Parts: [p] } })),
      'PreconditionFailed',
      412,
    );
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'mp/exists' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'old');
  });

  it('Multipart_works_for_a_credential_granted_on_two_buckets', async () => {
    const src = patternBytes(1000, 60);
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'mp/cross-src', Body: src }));
    const both = clientFor(t.endpoint, BOTH_CREDS);
    try {
      const id = (await both.send(new CreateMultipartUploadCommand({ Bucket: 'other', Key: 'cross' }))).UploadId!;
      const r = await both.send(new UploadPartCopyCommand({ Bucket: 'other', Key: 'cross', UploadId: id, PartNumber: 1, CopySource: 'data/mp/cross-src', CopySourceRange: 'bytes=0-9' }));
      await both.send(new CompleteMultipartUploadCommand({ Bucket: 'other', Key: 'cross', UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: r.CopyPartResult!.ETag! }] } }));
      const got = await both.send(new GetObjectCommand({ Bucket: 'other', Key: 'cross' }));
      assert.deepEqual(await bytesOf(got.Body), src.subarray(0, 10));
    } finally {
      both.destroy();
    }
  });
});

describe('multipart checksums', () => {
  it('Multipart_CRC32_parts_and_composite_checksum', async () => {
    const bodies = [patternBytes(5 * MiB, 50), patternBytes(777, 51)];
    const id = await create('mp/crc', { ChecksumAlgorithm: 'CRC32' });
    const parts: CompletedPart[] = [];
    for (const [i, b] of bodies.entries()) {
      const r = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'mp/crc', UploadId: id, PartNumber: i + 1, Body: b, ChecksumAlgorithm: 'CRC32' }));
      assert.equal(r.ChecksumCRC32, crc32Bytes(b).toString('base64'));
      parts.push({ PartNumber: i + 1, ETag: r.ETag!, ChecksumCRC32: r.ChecksumCRC32! });
    }
    const listed = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/crc', UploadId: id }));
    assert.equal(listed.ChecksumAlgorithm, 'CRC32');
    assert.deepEqual(listed.Parts?.map((p) => p.ChecksumCRC32), parts.map((p) => p.ChecksumCRC32));
    const composite = `${crc32Bytes(Buffer.concat(bodies.map(crc32Bytes))).toString('base64')}-2`;
    const bad = [{ ...parts[0]!, ChecksumCRC32: 'AAAAAA==' }, parts[1]!];
    await expectS3Error(complete('mp/crc', id, bad), 'InvalidPart', 400);
    const done = await complete('mp/crc', id, parts);
    assert.equal(done.ChecksumCRC32, composite);
    assert.equal(done.ChecksumType, 'COMPOSITE');
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'mp/crc', ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumCRC32, composite);
    assert.equal(head.ChecksumType, 'COMPOSITE');
  });

  it('UploadPart_without_a_checksum_still_gets_the_uploads_algorithm', async () => {
    const id = await create('mp/forced', { ChecksumAlgorithm: 'CRC32' });
    const body = Buffer.from('no checksum sent with this part');
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/mp/forced', query: { partNumber: '1', uploadId: id }, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-amz-checksum-crc32'], crc32Bytes(body).toString('base64'));
    const listed = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'mp/forced', UploadId: id }));
    assert.equal(listed.Parts?.[0]?.ChecksumCRC32, crc32Bytes(body).toString('base64'));
    const wrong = await rawRequest(t.endpoint, {
      method: 'PUT', path: '/data/mp/forced', query: { partNumber: '2', uploadId: id }, body,
      headers: { 'x-amz-checksum-crc32': 'AAAAAA==' },
    });
    expectRawError(wrong, 'BadDigest', 400);
    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'mp/forced', UploadId: id }));
  });

  it('CreateMultipartUpload_bad_checksum_settings_are_InvalidRequest', async () => {
    const cases: Record<string, string>[] = [
      { 'x-amz-checksum-algorithm': 'MD4' },
      { 'x-amz-checksum-type': 'COMPOSITE' },
      { 'x-amz-checksum-algorithm': 'SHA256', 'x-amz-checksum-type': 'FULL_OBJECT' },
    ];
    for (const headers of cases) {
      const res = await rawRequest(t.endpoint, { method: 'POST', path: '/data/mp/bad-algo', query: { uploads: '' }, headers });
      expectRawError(res, 'InvalidRequest', 400);
    }
  });
});
