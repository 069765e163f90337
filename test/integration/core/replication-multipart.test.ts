import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CoreError } from '../../../src/core/errors.js';
import { CoreMultipartStore, MIN_PART_SIZE } from '../../../src/core/multipart.js';
import { CoreObjectStore } from '../../../src/core/objects.js';
import { DbTenantDirectory } from '../../../src/core/tenants.js';
import type { UploadPartInput } from '../../../src/core/types.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { faultyBackend, type FaultyBackend } from '../../harness/faults-backend.js';

const rejectsWith = (code: string) => (err: unknown) => err instanceof CoreError && err.code === code;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

function part(key: string, uploadId: string, partNumber: number, data: Buffer): UploadPartInput {
  return {
    bucket: 'data',
    key,
    uploadId,
    partNumber,
    size: data.length,
    body: Readable.from([data]),
    digests: () => ({ md5: md5(data) }),
  };
}

describe('replicated multipart uploads (every part to every target)', () => {
  let f: CoreFixture;
  const faulty = new Map<string, FaultyBackend>();
  let mp: CoreMultipartStore;
  let mpQ1: CoreMultipartStore;
  let objects: CoreObjectStore;

  before(async () => {
    f = await coreFixture(
      'postgres',
      (dir) => [
        { type: 'fs', name: 'a1', path: path.join(dir, 'a1'), quotaBytes: 0, zone: 'zone-a' },
        { type: 'fs', name: 'a2', path: path.join(dir, 'a2'), quotaBytes: 0, zone: 'zone-a' },
        { type: 'fs', name: 'b1', path: path.join(dir, 'b1'), quotaBytes: 0, zone: 'zone-b' },
      ],
      'pack',
      {
        wrap: (b) => {
          const fb = faultyBackend(b);
          faulty.set(b.name, fb);
          return fb;
        },
      },
    );
    const deps = { ...f.deps, replicas: 2 };
    objects = new CoreObjectStore(deps, new DbTenantDirectory(f.db));
    mp = new CoreMultipartStore(deps, objects);
    const depsQ1 = { ...deps, writeQuorum: 1 };
    mpQ1 = new CoreMultipartStore(depsQ1, new CoreObjectStore(depsQ1, new DbTenantDirectory(f.db)));
  });
  after(async () => {
    for (const fb of faulty.values()) fb.reset();
    await f.drain();
    await f.close();
  });

  async function liveCopies(key: string): Promise<string[]> {
    const { rows } = await f.db.query<{ backend: string }>(
      `SELECT c.backend FROM object_copies c JOIN object_versions v USING (version_id)
       WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live' AND c.state = 'live' ORDER BY c.backend`,
      [key],
    );
    return rows.map((r) => r.backend);
  }
  async function repairQueued(key: string): Promise<boolean> {
    const { rows } = await f.db.query(
      `SELECT 1 FROM tasks t JOIN object_versions v ON v.version_id = t.payload->>'versionId'
       WHERE t.kind = 'repair-version' AND v.bucket = 'data' AND v.key = $1`,
      [key],
    );
    return rows.length > 0;
  }
  async function copyBytes(key: string, backend: string): Promise<Buffer> {
    const { rows } = await f.db.query<{ physical_key: string }>(
      `SELECT c.physical_key FROM object_copies c JOIN object_versions v USING (version_id)
       WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live' AND c.backend = $2`,
      [key, backend],
    );
    return readAll(await f.registry.get(backend)!.get(rows[0]!.physical_key));
  }

  test('parts stream to two targets in distinct zones; Complete publishes both copies, byte-exact, S3 ETag', async () => {
    const a = randomBytes(MIN_PART_SIZE);
    const b = randomBytes(1000);
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mp2', headers: {}, userMeta: {} });
    const p1 = await mp.uploadPart(part('mp2', up.uploadId, 1, a));
    const p2 = await mp.uploadPart(part('mp2', up.uploadId, 2, b));
    const { rows } = await f.db.query<{ backend: string; reserved_bytes: number }>(`SELECT backend, reserved_bytes FROM multipart_replicas`);
    assert.deepEqual(rows, [{ backend: 'b1', reserved_bytes: a.length + b.length }], 'the second target is in the other zone and reserves every part');
    const v = await mp.completeMultipartUpload({
      bucket: 'data', key: 'mp2', uploadId: up.uploadId,
      parts: [{ partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: p2.etag }],
    });
    const want = createHash('md5').update(Buffer.concat([Buffer.from(md5(a), 'hex'), Buffer.from(md5(b), 'hex')])).digest('hex') + '-2';
    assert.equal(v.etag, want);
    assert.deepEqual(await liveCopies('mp2'), ['a1', 'b1']);
    for (const be of ['a1', 'b1']) assert.equal(md5(await copyBytes('mp2', be)), md5(Buffer.concat([a, b])), `copy on ${be}`);
    assert.equal(await repairQueued('mp2'), false);
    assert.equal((await f.db.query(`SELECT 1 FROM multipart_replicas UNION ALL SELECT 1 FROM multipart_part_replicas`)).rows.length, 0);
  });

  test('a target that fails a part: quorum 2 fails the part (retry works), quorum 1 drops the target and repair is queued', async () => {
    const a = randomBytes(MIN_PART_SIZE);
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mpf', headers: {}, userMeta: {} });
    faulty.get('b1')!.failNext('uploadPart');
    await assert.rejects(mp.uploadPart(part('mpf', up.uploadId, 1, a)), rejectsWith('ServiceUnavailable'));
    const p1 = await mp.uploadPart(part('mpf', up.uploadId, 1, a));
    await mp.completeMultipartUpload({ bucket: 'data', key: 'mpf', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }] });
    assert.deepEqual(await liveCopies('mpf'), ['a1', 'b1']);

    const up1 = await mpQ1.createMultipartUpload({ bucket: 'data', key: 'mpq1', headers: {}, userMeta: {} });
    faulty.get('b1')!.failNext('uploadPart');
    const q1 = await mpQ1.uploadPart(part('mpq1', up1.uploadId, 1, a));
    assert.equal((await f.db.query(`SELECT 1 FROM multipart_replicas WHERE upload_id = $1`, [up1.uploadId])).rows.length, 0, 'the failed target left the upload');
    const q2 = await mpQ1.uploadPart(part('mpq1', up1.uploadId, 2, Buffer.from('tail')));
    await mpQ1.completeMultipartUpload({
      bucket: 'data', key: 'mpq1', uploadId: up1.uploadId,
      parts: [{ partNumber: 1, etag: q1.etag }, { partNumber: 2, etag: q2.etag }],
    });
    assert.deepEqual(await liveCopies('mpq1'), ['a1']);
    assert.equal(await repairQueued('mpq1'), true);
  });

  test('a target that fails to assemble: quorum 2 fails the Complete and a retry succeeds; quorum 1 publishes one copy', async () => {
    const a = randomBytes(MIN_PART_SIZE);
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mpc', headers: {}, userMeta: {} });
    const p1 = await mp.uploadPart(part('mpc', up.uploadId, 1, a));
    faulty.get('b1')!.failNext('completeMultipart');
    const done = { bucket: 'data', key: 'mpc', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }] };
    await assert.rejects(mp.completeMultipartUpload(done), rejectsWith('ServiceUnavailable'));
    await mp.completeMultipartUpload(done);
    assert.deepEqual(await liveCopies('mpc'), ['a1', 'b1']);

    const up1 = await mpQ1.createMultipartUpload({ bucket: 'data', key: 'mpc1', headers: {}, userMeta: {} });
    const r1 = await mpQ1.uploadPart(part('mpc1', up1.uploadId, 1, a));
    faulty.get('b1')!.failNext('completeMultipart');
    await mpQ1.completeMultipartUpload({ bucket: 'data', key: 'mpc1', uploadId: up1.uploadId, parts: [{ partNumber: 1, etag: r1.etag }] });
    assert.deepEqual(await liveCopies('mpc1'), ['a1']);
    assert.equal(await repairQueued('mpc1'), true);
  });

  test('UploadPartCopy streams the source range to every target', async () => {
    const src = randomBytes(MIN_PART_SIZE + 10);
    await objects.putObject(putInput('data', 'copy-src', src));
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mpcopy', headers: {}, userMeta: {} });
    const p1 = await mp.uploadPartCopy({ bucket: 'data', key: 'mpcopy', uploadId: up.uploadId, partNumber: 1, srcBucket: 'data', srcKey: 'copy-src', range: { start: 0, end: MIN_PART_SIZE - 1 } });
    const p2 = await mp.uploadPartCopy({ bucket: 'data', key: 'mpcopy', uploadId: up.uploadId, partNumber: 2, srcBucket: 'data', srcKey: 'copy-src', range: { start: MIN_PART_SIZE, end: MIN_PART_SIZE + 9 } });
    await mp.completeMultipartUpload({ bucket: 'data', key: 'mpcopy', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: p2.etag }] });
    for (const be of await liveCopies('mpcopy')) assert.equal(md5(await copyBytes('mpcopy', be)), md5(src), `copy on ${be}`);
    assert.equal((await liveCopies('mpcopy')).length, 2);
  });

  test('Abort gives up every target: their native uploads and reservations go through the task queue', async () => {
    await f.drain();
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mpabort', headers: {}, userMeta: {} });
    await mp.uploadPart(part('mpabort', up.uploadId, 1, randomBytes(1000)));
    await mp.abortMultipartUpload('data', 'mpabort', up.uploadId);
    const { rows } = await f.db.query<{ b: string }>(
      `SELECT payload->>'backend' AS b FROM tasks WHERE kind = 'delete-copy' AND payload->>'uploadId' IS NOT NULL ORDER BY 1`,
    );
    assert.deepEqual(rows.map((r) => r.b), ['a1', 'b1']);
    await f.drain();
    for (const name of ['a1', 'b1']) assert.equal((await f.backendRow(name)).reserved_bytes, 0);
  });
});
