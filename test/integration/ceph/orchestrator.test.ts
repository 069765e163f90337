/**
 * The orchestrator end to end with Ceph radosgw as its only backend, driven by @aws-sdk/client-s3 with
 * default settings (CRC32 checksums in aws-chunked trailers). radosgw verifies the orchestrator's re-signed
 * requests and implements multipart natively, so this shows what s3rver cannot: re-signing is right for
 * every operation used, copies stay on the provider, multipart objects are the provider's own, and aborts
 * and deletes leave nothing on radosgw (checked with a direct SDK client once the cleanup queue ran).
 *
 * One cluster and one orchestrator for the file. Skips with a message when the Ceph binaries are missing.
 */
import { SIDECAR_SUFFIX } from '../../../src/backends/s3-meta.js';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { logicalPrefix } from '../../../src/backends/layout.js';
import { cephBackendConfig, cephClient, cephSkipReason, createCephBuckets, startCeph, type CephInstance } from '../../harness/ceph.js';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const skip = cephSkipReason();
const MiB = 1024 * 1024;
/** The radosgw bucket behind the orchestrator's only backend, `ceph`. */
const RGW_BUCKET = 'orch-data';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ceph: CephInstance | undefined;
let t: TestOrchestrator | undefined;
/** A client straight to radosgw, to see what the orchestrator left there. */
let rgw: S3Client | undefined;

before(async () => {
  if (skip) return;
  ceph = await startCeph();
  await createCephBuckets(ceph, [RGW_BUCKET]);
  rgw = cephClient(ceph);
  t = await startTestOrchestrator({ s3rvers: 0, fsBackends: 0, extraBackends: [cephBackendConfig(ceph, 'ceph', RGW_BUCKET)] });
});
after(async () => {
  rgw?.destroy();
  await t?.stop();
  await ceph?.stop();
});

const orch = (): TestOrchestrator => t!;
const client = (): S3Client => t!.client;

async function bodyOf(key: string, range?: string): Promise<Buffer> {
  const r = await client().send(new GetObjectCommand({ Bucket: 'data', Key: key, Range: range }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** Physical objects radosgw holds for logical key `key` of bucket `data`. */
async function physicalOnRgw(key: string): Promise<{ key: string; size: number }[]> {
  const r = await rgw!.send(new ListObjectsV2Command({ Bucket: RGW_BUCKET, Prefix: logicalPrefix('data', key) }));
  return (r.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size! }));
}

/** Multipart uploads radosgw holds for logical key `key` of bucket `data`. */
async function uploadsOnRgw(key: string): Promise<string[]> {
  const r = await rgw!.send(new ListMultipartUploadsCommand({ Bucket: RGW_BUCKET, Prefix: logicalPrefix('data', key) }));
  return (r.Uploads ?? []).map((u) => u.UploadId!);
}

/** Successful calls the orchestrator made to backend `ceph`, by call name (s3o_backend_call_duration_seconds). */
async function backendCalls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await orch().orch.metrics.backendDuration.get()).values) {
    if (v.metricName?.endsWith('_count') && v.labels.backend === 'ceph' && v.labels.outcome === 'ok') {
      out[String(v.labels.call)] = (out[String(v.labels.call)] ?? 0) + v.value;
    }
  }
  return out;
}

const delta = (before: Record<string, number>, after: Record<string, number>, call: string) => (after[call] ?? 0) - (before[call] ?? 0);

describe('orchestrator over Ceph radosgw', { skip }, () => {
  const data = randomBytes(3 * MiB + 17);

  it('PutObject_GetObject_and_ranges', async () => {
    await client().send(new PutObjectCommand({ Bucket: 'data', Key: 'obj/a b+é', Body: data }));
    assert.equal(sha256(await bodyOf('obj/a b+é')), sha256(data));
    const cases: [string, Buffer][] = [
      ['bytes=0-0', data.subarray(0, 1)],
      ['bytes=1000-2000999', data.subarray(1000, 2_001_000)],
      ['bytes=-10', data.subarray(data.length - 10)],
      ['bytes=3145000-', data.subarray(3_145_000)],
    ];
    for (const [range, want] of cases) assert.ok((await bodyOf('obj/a b+é', range)).equals(want), range);
    assert.deepEqual((await physicalOnRgw('obj/a b+é')).map((o) => o.size), [data.length], 'one copy on radosgw');
  });

  it('CopyObject_is_server_side_on_radosgw', async () => {
    const before = await backendCalls();
    await client().send(new CopyObjectCommand({ Bucket: 'data', Key: 'obj/copy', CopySource: `data/${encodeURIComponent('obj/a b+é')}` }));
    const after = await backendCalls();
    assert.equal(delta(before, after, 'copy'), 1, 'one backend copy');
    assert.equal(delta(before, after, 'get'), 0, 'no bytes read through the orchestrator');
    assert.equal(delta(before, after, 'put'), 0, 'no bytes written through the orchestrator');
    assert.equal(sha256(await bodyOf('obj/copy')), sha256(data));
    assert.deepEqual((await physicalOnRgw('obj/copy')).map((o) => o.size), [data.length]);
  });

  it('DeleteObject_removes_the_bytes_from_radosgw_after_cleanup', async () => {
    await client().send(new PutObjectCommand({ Bucket: 'data', Key: 'obj/doomed', Body: 'bytes to delete' }));
    assert.equal((await physicalOnRgw('obj/doomed')).length, 1);
    await client().send(new DeleteObjectCommand({ Bucket: 'data', Key: 'obj/doomed' }));
    await assert.rejects(client().send(new HeadObjectCommand({ Bucket: 'data', Key: 'obj/doomed' })), (e: Error) => e.name === 'NotFound');
    assert.equal(await drainCleanup(orch()), 0, 'the cleanup queue ran');
    assert.deepEqual(await physicalOnRgw('obj/doomed'), [], 'gone from radosgw');
  });

  it('Multipart_three_parts_is_a_native_radosgw_multipart_object', async () => {
    const key = 'mpu/three';
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(MiB + 3)];
    const { UploadId } = await client().send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
    assert.equal((await uploadsOnRgw(key)).length, 1, 'the upload is radosgw\'s own');
    const done = [];
    for (const [i, body] of parts.entries()) {
      const r = await client().send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: i + 1, Body: body }));
      done.push({ PartNumber: i + 1, ETag: r.ETag! });
    }
    await client().send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId, MultipartUpload: { Parts: done } }));
    const whole = Buffer.concat(parts);
    assert.equal(sha256(await bodyOf(key)), sha256(whole));
    assert.ok((await bodyOf(key, `bytes=${5 * MiB - 2}-${5 * MiB + 1}`)).equals(whole.subarray(5 * MiB - 2, 5 * MiB + 2)));
    const all = await physicalOnRgw(key);
    // Beside the object, its metadata sidecar (part sizes and the multipart ETag, for a rebuild).
    assert.deepEqual(all.filter((o) => o.key.endsWith(SIDECAR_SUFFIX)).length, 1, 'one sidecar');
    const phys = all.filter((o) => !o.key.endsWith(SIDECAR_SUFFIX));
    assert.deepEqual(phys.map((o) => o.size), [whole.length]);
    const head = await rgw!.send(new HeadObjectCommand({ Bucket: RGW_BUCKET, Key: phys[0]!.key }));
    assert.match(head.ETag ?? '', /^"[0-9a-f]{32}-3"$/, 'radosgw assembled the 3 parts itself');
    assert.deepEqual(await uploadsOnRgw(key), [], 'nothing pending on radosgw');
  });

  it('UploadPartCopy_is_native_on_radosgw', async () => {
    const key = 'mpu/part-copy';
    const src = randomBytes(6 * MiB);
    await client().send(new PutObjectCommand({ Bucket: 'data', Key: 'mpu/src', Body: src }));
    const { UploadId } = await client().send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
    const before = await backendCalls();
    const copied = await client().send(
      new UploadPartCopyCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: 1, CopySource: 'data/mpu/src', CopySourceRange: `bytes=${MiB}-${6 * MiB - 1}` }),
    );
    const after = await backendCalls();
    assert.equal(delta(before, after, 'upload_part_copy'), 1);
    assert.equal(delta(before, after, 'get'), 0, 'no bytes read through the orchestrator');
    assert.equal(delta(before, after, 'upload_part'), 0, 'no bytes written through the orchestrator');
    const tail = Buffer.from('the last part');
    const p2 = await client().send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: 2, Body: tail }));
    await client().send(
      new CompleteMultipartUploadCommand({
        Bucket: 'data',
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: copied.CopyPartResult!.ETag! }, { PartNumber: 2, ETag: p2.ETag! }] },
      }),
    );
    assert.equal(sha256(await bodyOf(key)), sha256(Buffer.concat([src.subarray(MiB), tail])));
  });

  it('AbortMultipartUpload_leaves_no_upload_on_radosgw', async () => {
    const key = 'mpu/aborted';
    const { UploadId } = await client().send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
    await client().send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    assert.equal((await uploadsOnRgw(key)).length, 1);
    await client().send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId }));
    await assert.rejects(
      client().send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: 2, Body: 'late' })),
      (e: Error) => e.name === 'NoSuchUpload',
    );
    assert.equal(await drainCleanup(orch()), 0, 'the cleanup queue ran');
    assert.deepEqual(await uploadsOnRgw(key), [], 'radosgw holds no upload for the key');
    assert.deepEqual(await physicalOnRgw(key), []);
  });

  it('a_wrong_radosgw_secret_stops_start_up', async () => {
    const bad = { ...cephBackendConfig(ceph!, 'ceph-bad', RGW_BUCKET), secretAccessKey: 'not-the-secret' };
    // radosgw checks the signature of the start-up HeadBucket; s3rver would have accepted it.
    await assert.rejects(startTestOrchestrator({ s3rvers: 0, fsBackends: 0, extraBackends: [bad] }), /backend ceph-bad: .*(403|AccessDenied|Forbidden)/);
  });

  it('nothing_is_left_pending_on_radosgw', async () => {
    assert.equal(await drainCleanup(orch()), 0);
    const r = await rgw!.send(new ListMultipartUploadsCommand({ Bucket: RGW_BUCKET }));
    assert.deepEqual(r.Uploads ?? [], []);
  });
});
