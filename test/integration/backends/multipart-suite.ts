import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { Backend, PhysicalMeta } from '../../../src/backends/backend.js';
import { bufferStream, generatedStream, hashStream, readAll, rejectsKind, stallingStream } from './helpers.js';
import type { SuiteTarget } from './suite.js';

const MiB = 1024 * 1024;

const md5 = (buf: Buffer) => createHash('md5').update(buf).digest('hex');
const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

function meta(key: string, extra: Partial<PhysicalMeta> = {}): PhysicalMeta {
  return { bucket: 'bk', key, versionId: 'mpu1', ...extra };
}

/**
 * Native multipart behaviour every Backend must show; registered inside {@link backendSuite}'s describe so
 * it runs on every target. `target()` returns the suite's live target (built in its before hook).
 */
export function multipartCases(target: () => SuiteTarget): void {
  const b = (): Backend => target().backend;

  async function part(key: string, id: string, n: number, buf: Buffer, signal?: AbortSignal): Promise<string> {
    return b().uploadPart(key, id, n, bufferStream(buf), buf.length, signal);
  }

  it('multipart_three_parts_assemble_byte_for_byte', async () => {
    const key = 'mpu/three';
    const data = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1)];
    const whole = Buffer.concat(data);
    const m = meta('logical/three ✓', { contentType: 'video/mp4', cacheControl: 'no-store' });
    const id = await b().createMultipart(key, m);
    assert.equal(await b().head(key), null, 'nothing is visible before completion');
    // Uploaded out of order: position comes from the part number, not arrival.
    const e3 = await part(key, id, 3, data[2]!);
    const e1 = await part(key, id, 1, data[0]!);
    const e2 = await part(key, id, 2, data[1]!);
    assert.deepEqual([e1, e2, e3], data.map(md5), 'part ETags are the hex MD5 of each part');
    await b().completeMultipart(key, id, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: `"${e2}"` },
      { partNumber: 3, etag: e3 },
    ]);
    const got = await hashStream(await b().get(key));
    assert.equal(got.bytes, whole.length);
    assert.equal(got.digest, sha256(whole));
    const h = await b().head(key);
    assert.equal(h?.size, whole.length);
    assert.deepEqual(h?.meta, m);
    const ranges = [
      { start: 5 * MiB - 3, end: 5 * MiB + 2 },
      { start: 10 * MiB - 1, end: 10 * MiB },
      { start: 0, end: 5 * MiB },
      { start: 10 * MiB, end: 10 * MiB },
    ];
    for (const r of ranges) {
      assert.deepEqual(await readAll(await b().get(key, r)), whole.subarray(r.start, r.end + 1), `range ${r.start}-${r.end}`);
    }
    await b().delete(key);
  });

  it('multipart_complete_stores_the_final_meta', async () => {
    const key = 'mpu/final-meta';
    const data = [randomBytes(5 * MiB), Buffer.from('tail')];
    const id = await b().createMultipart(key, meta('logical/final', { contentType: 'a/b', userMeta: { k: 'v' } }));
    const e1 = await part(key, id, 1, data[0]!);
    const e2 = await part(key, id, 2, data[1]!);
    const final = meta('logical/final', { contentType: 'a/b', userMeta: { k: 'v' }, etag: 'ffeeddccbbaa99887766554433221100-2', partSizes: [5 * MiB, 4] });
    await b().completeMultipart(key, id, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }], final);
    assert.deepEqual((await b().head(key))?.meta, final);
    assert.deepEqual((await b().list('mpu/final')).entries.map((e) => e.key), [key]);
    await b().delete(key);
    assert.equal(await b().head(key), null);
  });

  it('multipart_reupload_replaces_the_part', async () => {
    const key = 'mpu/reupload';
    const id = await b().createMultipart(key, meta(key));
    await part(key, id, 1, Buffer.from('first version of part one'));
    const e1 = await part(key, id, 1, Buffer.from('second'));
    await b().completeMultipart(key, id, [{ partNumber: 1, etag: e1 }]);
    assert.equal((await readAll(await b().get(key))).toString(), 'second');
    await b().delete(key);
  });

  it('multipart_upload_part_copy_of_ranges', async () => {
    const src = randomBytes(6 * MiB + 10);
    await b().put('mpu/copy-src', bufferStream(src), src.length, meta('src'));
    const key = 'mpu/copy-dst';
    const id = await b().createMultipart(key, meta(key));
    const r1 = { start: 7, end: 7 + 5 * MiB - 1 };
    // Every part but the last must be at least 5 MiB on real providers (radosgw: EntityTooSmall); r2 ends at the source's last byte.
    const r2 = { start: MiB + 10, end: 6 * MiB + 9 };
    const e1 = await b().uploadPartCopy(key, id, 1, 'mpu/copy-src', r1);
    const e2 = await b().uploadPartCopy(key, id, 2, 'mpu/copy-src', r2);
    const tail = Buffer.from('+tail');
    const e3 = await part(key, id, 3, tail);
    const expected = Buffer.concat([src.subarray(r1.start, r1.end + 1), src.subarray(r2.start, r2.end + 1), tail]);
    assert.equal(e1, md5(src.subarray(r1.start, r1.end + 1)));
    await rejectsKind(b().uploadPartCopy(key, id, 4, 'mpu/copy-missing', { start: 0, end: 0 }), 'NotFound', b().name);
    await b().completeMultipart(key, id, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2 },
      { partNumber: 3, etag: e3 },
    ]);
    assert.equal(sha256(await readAll(await b().get(key))), sha256(expected));
    assert.deepEqual(await readAll(await b().get('mpu/copy-src')), src, 'the source is untouched');
    await b().delete(key);
    await b().delete('mpu/copy-src');
  });

  it('multipart_abort_discards_and_is_idempotent', async () => {
    const key = 'mpu/abort';
    const id = await b().createMultipart(key, meta(key));
    const e1 = await part(key, id, 1, Buffer.from('doomed'));
    await b().abortMultipart(key, id);
    await b().abortMultipart(key, id);
    assert.equal(await b().head(key), null);
    if (target().abortDiscards) {
      await rejectsKind(b().completeMultipart(key, id, [{ partNumber: 1, etag: e1 }]), 'NotFound', b().name);
      await rejectsKind(part(key, id, 2, Buffer.from('late')), 'NotFound', b().name);
      assert.equal(await b().head(key), null);
    }
    assert.deepEqual((await target().uploadsLeft?.()) ?? [], []);
  });

  it('multipart_failing_or_aborted_part_body_leaves_no_part', async () => {
    const key = 'mpu/failing';
    const id = await b().createMultipart(key, meta(key));
    const good = Buffer.from('the good part one');
    const e1 = await part(key, id, 1, good);
    const failing = stallingStream(512 * 1024, () => setImmediate(() => failing.destroy(new Error('client went away'))));
    const err = await rejectsKind(b().uploadPart(key, id, 1, failing, 4 * MiB), 'Aborted', b().name);
    assert.match(err.message, /client went away/);
    const ac = new AbortController();
    const stalled = stallingStream(MiB, () => ac.abort(new Error('stop now')));
    await rejectsKind(b().uploadPart(key, id, 2, stalled, 8 * MiB, ac.signal), 'Aborted', b().name);
    await rejectsKind(b().uploadPart(key, id, 2, bufferStream(Buffer.alloc(5)), 9), 'Aborted', b().name);
    assert.deepEqual(await target().leftovers(), []);
    // Part 2 never completed, so an upload naming it cannot complete; part 1 still holds the good bytes.
    await rejectsKind(
      b().completeMultipart(key, id, [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: md5(Buffer.alloc(8 * MiB, 0x61)) },
      ]),
      'Other',
      b().name,
    );
    assert.equal(await b().head(key), null);
    await b().completeMultipart(key, id, [{ partNumber: 1, etag: e1 }]);
    assert.deepEqual(await readAll(await b().get(key)), good);
    await b().delete(key);
  });

  it('multipart_complete_with_a_wrong_etag_fails', async () => {
    const key = 'mpu/wrong-etag';
    const id = await b().createMultipart(key, meta(key));
    const data = Buffer.from('some part bytes');
    const e1 = await part(key, id, 1, data);
    const err = await rejectsKind(
      b().completeMultipart(key, id, [{ partNumber: 1, etag: md5(Buffer.from('other bytes')) }]),
      'Other',
      b().name,
    );
    assert.match(err.message, /part|etag/i);
    assert.equal(await b().head(key), null);
    assert.deepEqual(await target().leftovers(), []);
    await b().completeMultipart(key, id, [{ partNumber: 1, etag: e1 }]);
    assert.deepEqual(await readAll(await b().get(key)), data);
    await b().delete(key);
  });

  it('multipart_streams_a_100_MiB_part_without_buffering', async () => {
    const key = 'mpu/big';
    const size = 100 * MiB;
    const id = await b().createMultipart(key, meta(key));
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const gen = generatedStream(size, () => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    });
    const etag = await b().uploadPart(key, id, 1, gen.stream, size);
    // Buffering the part would need 100 MiB more; a streaming upload stays far below (GC noise included).
    assert.ok(peak - baseline < 64 * MiB, `external memory grew by ${(peak - baseline) >> 20} MiB`);
    await b().completeMultipart(key, id, [{ partNumber: 1, etag }]);
    const got = await hashStream(await b().get(key));
    assert.equal(got.bytes, size);
    assert.equal(got.digest, gen.digest());
    await b().delete(key);
  });

  it('multipart_state_is_hidden_from_list', async () => {
    const key = 'mpl/obj';
    const id = await b().createMultipart(key, meta(key));
    await part(key, id, 1, Buffer.from('listed only once complete'));
    assert.deepEqual((await b().list('mpl/')).entries, []);
    const all = await b().list('');
    assert.deepEqual(all.entries.filter((e) => e.key.startsWith('.') || e.key.includes(id)), []);
    await b().abortMultipart(key, id);
  });
}
