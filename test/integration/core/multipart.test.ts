import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { abortAbandonedUploads } from '../../../src/core/sweepers.js';
import { CoreError } from '../../../src/core/errors.js';
import { checksumBase64 } from '../../../src/core/hashing.js';
import { CoreMultipartStore, MIN_PART_SIZE } from '../../../src/core/multipart.js';
import type { UploadPartInput } from '../../../src/core/types.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { engines } from '../../harness/db.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const rejectsWith = (code: string) => (err: unknown) => err instanceof CoreError && err.code === code;
const MiB = 1024 * 1024;

function part(bucket: string, key: string, uploadId: string, partNumber: number, data: Buffer, checksum?: string): UploadPartInput {
  return {
    bucket,
    key,
    uploadId,
    partNumber,
    size: data.length,
    body: Readable.from([data]),
    digests: () => ({
      md5: createHash('md5').update(data).digest('hex'),
      ...(checksum ? { checksum: { algorithm: 'SHA256' as const, value: checksum, type: 'FULL_OBJECT' as const } } : {}),
    }),
  };
}

for (const engine of await engines()) {
  for (const kind of ['s3', 'fs'] as const) {
    describe(`multipart on ${engine} over ${kind}`, () => {
      let s3: S3rverInstance;
      let f: CoreFixture;
      let mp: CoreMultipartStore;
      before(async () => {
        s3 = await startS3rver();
        f = await coreFixture(engine, (dir) => [
          kind === 's3'
            ? s3BackendConfig(s3, 'only', { quotaBytes: 24 * MiB })
            : { type: 'fs' as const, name: 'only', path: path.join(dir, 'only'), quotaBytes: 24 * MiB },
        ]);
        mp = new CoreMultipartStore(
          f.deps,
          f.store,
        );
      });
      after(async () => {
        await f.close();
        await s3.stop();
      });

      test('parts stream to the backend, complete assembles them natively, ETag is the multipart form', async () => {
        const a = Buffer.alloc(MIN_PART_SIZE, 'a');
        const b = Buffer.alloc(MIN_PART_SIZE, 'b');
        const c = Buffer.from('tail');
        const up = await mp.createMultipartUpload({ bucket: 'data', key: 'big', headers: { contentType: 'x/y' }, userMeta: { m: '1' }, tags: { t: 'v' } });
        const p2 = await mp.uploadPart(part('data', 'big', up.uploadId, 2, b));
        const p1 = await mp.uploadPart(part('data', 'big', up.uploadId, 1, a));
        const p3 = await mp.uploadPart(part('data', 'big', up.uploadId, 3, c));
        const mid = await f.backendRow('only');
        assert.equal(mid.reserved_bytes, a.length + b.length + c.length, 'parts reserve quota as they arrive');
        const listed = await mp.listParts('data', 'big', up.uploadId, { maxParts: 2 });
        assert.deepEqual(listed.parts.map((p) => p.partNumber), [1, 2]);
        assert.equal(listed.nextPartNumberMarker, 2);
        const v = await mp.completeMultipartUpload({
          bucket: 'data', key: 'big', uploadId: up.uploadId,
          parts: [p1, p2, p3].map((p) => ({ partNumber: p.partNumber, etag: `"${p.etag}"` })),
        });
        const expected = createHash('md5').update(Buffer.concat([p1, p2, p3].map((p) => Buffer.from(p.etag, 'hex')))).digest('hex') + '-3';
        assert.equal(v.etag, expected);
        assert.equal(v.size, a.length + b.length + c.length);
        assert.equal(v.partsCount, 3);
        assert.deepEqual(await f.store.getTagging('data', 'big'), { t: 'v' });
        const got = await readAll((await f.store.getObject('data', 'big')).body);
        assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(Buffer.concat([a, b, c])).digest('hex'));
        const end = await f.backendRow('only');
        assert.equal(end.reserved_bytes, 0);
        assert.equal(end.used_bytes - mid.used_bytes, v.size);
        await assert.rejects(mp.abortMultipartUpload('data', 'big', up.uploadId), rejectsWith('NoSuchUpload'));
        await f.store.deleteObject('data', 'big');
        await f.drain();
      });

      test('part rules: order, unknown part, wrong ETag, small parts, foreign key or bucket', async () => {
        const up = await mp.createMultipartUpload({ bucket: 'data', key: 'rules', headers: {}, userMeta: {} });
        const p1 = await mp.uploadPart(part('data', 'rules', up.uploadId, 1, Buffer.alloc(1000, 1)));
        const p2 = await mp.uploadPart(part('data', 'rules', up.uploadId, 2, Buffer.alloc(1000, 2)));
        const complete = (parts: { partNumber: number; etag: string }[]) =>
          mp.completeMultipartUpload({ bucket: 'data', key: 'rules', uploadId: up.uploadId, parts });
        await assert.rejects(complete([{ partNumber: 2, etag: p2.etag }, { partNumber: 1, etag: p1.etag }]), rejectsWith('InvalidPartOrder'));
        await assert.rejects(complete([{ partNumber: 3, etag: p1.etag }]), rejectsWith('InvalidPart'));
        await assert.rejects(complete([{ partNumber: 1, etag: 'f'.repeat(32) }]), rejectsWith('InvalidPart'));
        await assert.rejects(complete([{ partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: p2.etag }]), rejectsWith('EntityTooSmall'));
        await assert.rejects(mp.uploadPart(part('data', 'other-key', up.uploadId, 1, Buffer.from('x'))), rejectsWith('NoSuchUpload'));
        await assert.rejects(mp.uploadPart(part('other', 'rules', up.uploadId, 1, Buffer.from('x'))), rejectsWith('NoSuchUpload'));
        await assert.rejects(mp.uploadPart(part('data', 'rules', up.uploadId, 10_001, Buffer.from('x'))), rejectsWith('InvalidArgument'));
        // A single small part is a valid object.
        const v = await complete([{ partNumber: 1, etag: p1.etag }]);
        assert.equal(v.size, 1000);
        await f.store.deleteObject('data', 'rules');
        await f.drain();
        assert.equal((await f.backendRow('only')).reserved_bytes, 0);
      });

      test('a part that does not fit the backend quota fails cleanly; the upload stays usable and abortable', async () => {
        await f.drain();
        const up = await mp.createMultipartUpload({ bucket: 'data', key: 'full', headers: {}, userMeta: {} });
        await mp.uploadPart(part('data', 'full', up.uploadId, 1, Buffer.alloc(20 * MiB, 1)));
        await assert.rejects(mp.uploadPart(part('data', 'full', up.uploadId, 2, Buffer.alloc(5 * MiB, 2))), rejectsWith('InsufficientStorage'));
        const row = await f.backendRow('only');
        assert.ok(row.used_bytes + row.reserved_bytes <= 24 * MiB);
        // Replacing part 1 with a smaller one releases the old reservation.
        await mp.uploadPart(part('data', 'full', up.uploadId, 1, Buffer.alloc(1 * MiB, 3)));
        assert.equal((await f.backendRow('only')).reserved_bytes, 1 * MiB);
        const uploads = await mp.listMultipartUploads('data', { prefix: '', maxUploads: 10 });
        assert.deepEqual(uploads.uploads.map((u) => u.key), ['full']);
        await mp.abortMultipartUpload('data', 'full', up.uploadId);
        await f.drain();
        const after = await f.backendRow('only');
        assert.equal(after.reserved_bytes, 0);
        assert.equal(after.used_bytes, row.used_bytes - 0 - (row.used_bytes - after.used_bytes));
        assert.equal((await mp.listMultipartUploads('data', { prefix: '', maxUploads: 10 })).uploads.length, 0);
      });

      test('composite SHA256 checksum and UploadPartCopy from an existing object', async () => {
        await f.store.putObject(putInput('data', 'source', Buffer.alloc(MIN_PART_SIZE + 10, 's')));
        const up = await mp.createMultipartUpload({ bucket: 'data', key: 'ck', headers: {}, userMeta: {}, checksumAlgorithm: 'SHA256' });
        assert.equal(up.checksumType, 'COMPOSITE');
        const copied = await mp.uploadPartCopy({ bucket: 'data', key: 'ck', uploadId: up.uploadId, partNumber: 1, srcBucket: 'data', srcKey: 'source', range: { start: 0, end: MIN_PART_SIZE - 1 } });
        const tail = Buffer.from('the end');
        const c2 = await checksumBase64('SHA256', tail);
        const p2 = await mp.uploadPart(part('data', 'ck', up.uploadId, 2, tail, c2));
        const c1 = await checksumBase64('SHA256', Buffer.alloc(MIN_PART_SIZE, 's'));
        assert.equal(copied.checksum, c1);
        assert.equal(copied.etag, createHash('md5').update(Buffer.alloc(MIN_PART_SIZE, 's')).digest('hex'));
        const v = await mp.completeMultipartUpload({ bucket: 'data', key: 'ck', uploadId: up.uploadId, parts: [copied, p2].map((p) => ({ partNumber: p.partNumber, etag: p.etag })) });
        const composite = createHash('sha256').update(Buffer.concat([Buffer.from(c1, 'base64'), Buffer.from(c2, 'base64')])).digest('base64') + '-2';
        assert.deepEqual(v.checksum, { algorithm: 'SHA256', type: 'COMPOSITE', value: composite });
        await f.store.deleteObjects('data', ['ck', 'source']);
        await f.drain();
      });

      test('abandoned uploads are aborted by age and their parts removed', async () => {
        const up = await mp.createMultipartUpload({ bucket: 'data', key: 'old', headers: {}, userMeta: {} });
        await mp.uploadPart(part('data', 'old', up.uploadId, 1, Buffer.alloc(1000, 1)));
        await f.db.query(`UPDATE multipart_uploads SET initiated_at = now() - interval '8 days' WHERE upload_id = $1`, [up.uploadId]);
        assert.equal(await abortAbandonedUploads(f.db, 7 * 24 * 3600_000), 1);
        await f.drain();
        await assert.rejects(mp.listParts('data', 'old', up.uploadId, { maxParts: 10 }), rejectsWith('NoSuchUpload'));
        const { rows } = await f.db.query(`SELECT count(*)::int8 AS n FROM tasks WHERE kind = 'delete-copy'`);
        assert.equal((rows[0] as { n: number }).n, 0);
        assert.equal((await f.backendRow('only')).reserved_bytes, 0);
      });
    });
  }
}
