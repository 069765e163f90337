/**
 * Multipart uploads against backend quotas and cleanup, on an fs backend (whose files we can list): a
 * part that does not fit is 507 InsufficientStorage and leaves the upload usable and abortable; an
 * aborted upload disappears from the listings and, once the cleanup queue ran, the backend holds no
 * part and the quota counters are back where they started.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { backendCounters, bytesOf, expectS3Error, patternBytes, physicalInventory, sha256 } from './helpers.js';

const MiB = 1024 * 1024;
let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 0, fsBackends: 1, quotas: { 'fs-1': 8 * MiB } });
});
after(() => t?.stop());

const upload = (key: string, id: string, n: number, body: Buffer) =>
  t.client.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId: id, PartNumber: n, Body: body }));

describe('multipart quotas and cleanup', () => {
  it('UploadPart_over_quota_is_InsufficientStorage_and_the_upload_stays_abortable', async () => {
    const before = await backendCounters(t);
    assert.deepEqual(before['fs-1'], { used: 0, reserved: 0, objects: 0 });
    const id = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'q/big' }))).UploadId!;
    await upload('q/big', id, 1, patternBytes(5 * MiB, 1));
    assert.equal((await backendCounters(t))['fs-1']!.reserved, 5 * MiB, 'the stored part holds its reservation');
    await expectS3Error(upload('q/big', id, 2, patternBytes(5 * MiB, 2)), 'InsufficientStorage', 507);
    const parts = await t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'q/big', UploadId: id }));
    assert.deepEqual(parts.Parts?.map((p) => p.PartNumber), [1], 'the failed part left nothing behind');
    assert.equal((await backendCounters(t))['fs-1']!.reserved, 5 * MiB, 'the failed part released its reservation');

    await t.client.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'q/big', UploadId: id }));
    const listed = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    assert.deepEqual(listed.Uploads ?? [], []);
    await expectS3Error(t.client.send(new ListPartsCommand({ Bucket: 'data', Key: 'q/big', UploadId: id })), 'NoSuchUpload', 404);
    assert.equal(await drainCleanup(t), 0);
    assert.deepEqual(await physicalInventory(t), { 'fs-1': [] }, 'no part is left on the backend');
    assert.deepEqual(await backendCounters(t), before, 'quota counters are back');
  });

  it('Multipart_upload_within_quota_completes_and_counts_once', async () => {
    const bodies = [patternBytes(5 * MiB, 3), patternBytes(MiB, 4)];
    const id = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'q/fits' }))).UploadId!;
    const parts = [];
    for (const [i, b] of bodies.entries()) parts.push({ PartNumber: i + 1, ETag: (await upload('q/fits', id, i + 1, b)).ETag! });
    await t.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'q/fits', UploadId: id, MultipartUpload: { Parts: parts } }));
    assert.deepEqual((await backendCounters(t))['fs-1'], { used: 6 * MiB, reserved: 0, objects: 1 });
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'q/fits' }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(Buffer.concat(bodies)));
    assert.equal(await drainCleanup(t), 0);
    const files = (await physicalInventory(t))['fs-1']!.filter((f) => !f.endsWith('.meta.json'));
    assert.equal(files.length, 1, `only the assembled object remains: ${files.join(', ')}`);
  });
});
