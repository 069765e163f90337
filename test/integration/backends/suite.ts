import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import type { Backend, PhysicalMeta } from '../../../src/backends/backend.js';
import { newVersionId, physicalKey } from '../../../src/backends/layout.js';
import { multipartCases } from './multipart-suite.js';
import {
  bufferStream,
  generatedStream,
  hashStream,
  longUnicodeKey,
  readAll,
  rejectsKind,
  stallingStream,
} from './helpers.js';

/** What a backend-specific test file hands the shared suite. */
export interface SuiteTarget {
  backend: Backend;
  /** Anything a failed write may have left behind (fs: temp files); must be empty after a failed put. */
  leftovers(): Promise<string[]>;
  /** Whether abortMultipart really discards an upload (stock s3rver has no AbortMultipartUpload). */
  abortDiscards: boolean;
  /** Multipart upload state still stored, where observable (fs: entries of `.mpu/`); must be empty after aborts. */
  uploadsLeft?(): Promise<string[]>;
  /** Extra check after a get stream was destroyed (s3: the socket is gone). */
  afterGetDestroyed?(stream: Readable): void;
  teardown(): Promise<void>;
}

function metaFor(bucket: string, key: string, versionId: string, extra: Partial<PhysicalMeta> = {}): PhysicalMeta {
  return { bucket, key, versionId, ...extra };
}

const FULL_META: Partial<PhysicalMeta> = {
  etag: '9e107d9d372bb6826bd81d3542a419d6',
  contentType: 'text/plain; charset=utf-8',
  contentEncoding: 'gzip',
  contentDisposition: 'attachment; filename="résumé ✓.txt"',
  contentLanguage: 'fr-CA',
  cacheControl: 'max-age=60, public',
  expires: 'Thu, 01 Dec 2039 16:00:00 GMT',
};

/** Runs the behaviour every Backend implementation must show. `make` builds a fresh target. */
export function backendSuite(label: string, make: () => Promise<SuiteTarget>): void {
  describe(label, () => {
    let t: SuiteTarget;
    let b: Backend;
    before(async () => {
      t = await make();
      b = t.backend;
    });
    after(async () => {
      await t?.teardown();
    });

    async function putBuf(key: string, buf: Buffer, meta = metaFor('bk', key, 'v1')): Promise<void> {
      await b.put(key, bufferStream(buf), buf.length, meta);
    }

    it('put_get_head_roundtrip_with_full_meta', async () => {
      const key = physicalKey('bk', 'photos/é.jpg', newVersionId());
      const data = randomBytes(300_000);
      const meta = metaFor('bk', 'photos/é.jpg', key.split('/').pop()!, FULL_META);
      await putBuf(key, data, meta);
      assert.deepEqual(await readAll(await b.get(key)), data);
      const h = await b.head(key);
      assert.equal(h?.size, data.length);
      assert.deepEqual(h?.meta, meta);
    });

    it('unicode_physical_key_and_1024_byte_logical_key', async () => {
      const logical = longUnicodeKey();
      const key = 'uni/ключ/é 日本 🙂/obj';
      const meta = metaFor('bk', logical, 'v9', { contentType: 'application/x-ü' });
      await putBuf(key, Buffer.from('unicode'), meta);
      const h = await b.head(key);
      assert.deepEqual(h?.meta, meta);
      assert.equal(h?.meta?.key.length, logical.length);
      assert.equal((await readAll(await b.get(key))).toString(), 'unicode');
      const listed = await b.list('uni/');
      assert.deepEqual(listed.entries.map(({ key: k, size }) => ({ key: k, size })), [{ key, size: 7 }]);
      assert.ok(Math.abs(listed.entries[0]!.modifiedMs! - Date.now()) < 10 * 60_000, 'listing reports when the object was written');
    });

    it('empty_object', async () => {
      await putBuf('empty/obj', Buffer.alloc(0));
      assert.equal((await b.head('empty/obj'))?.size, 0);
      assert.equal((await readAll(await b.get('empty/obj'))).length, 0);
    });

    it('ranges_first_middle_last_byte', async () => {
      const data = randomBytes(100_000);
      await putBuf('range/obj', data);
      const cases = [
        { start: 0, end: 0 },
        { start: 1000, end: 51_233 },
        { start: data.length - 1, end: data.length - 1 },
        { start: 0, end: data.length - 1 },
      ];
      for (const r of cases) {
        const got = await readAll(await b.get('range/obj', r));
        assert.deepEqual(got, data.subarray(r.start, r.end + 1), `range ${r.start}-${r.end}`);
      }
    });

    it('head_and_get_missing', async () => {
      assert.equal(await b.head('missing/nothing-here'), null);
      await rejectsKind(b.get('missing/nothing-here'), 'NotFound', b.name);
    });

    it('delete_is_idempotent', async () => {
      await putBuf('del/a/b/obj', Buffer.from('x'));
      await b.delete('del/a/b/obj');
      assert.equal(await b.head('del/a/b/obj'), null);
      await b.delete('del/a/b/obj');
      await b.delete('del/never/existed');
      assert.deepEqual((await b.list('del/')).entries, []);
    });

    it('overwrite_replaces_bytes_and_meta', async () => {
      await putBuf('ow/obj', Buffer.from('first'), metaFor('bk', 'k', 'v1', { contentType: 'a/b' }));
      await putBuf('ow/obj', Buffer.from('second!'), metaFor('bk', 'k', 'v2', { contentType: 'c/d' }));
      assert.equal((await readAll(await b.get('ow/obj'))).toString(), 'second!');
      const h = await b.head('ow/obj');
      assert.equal(h?.meta?.versionId, 'v2');
      assert.equal(h?.meta?.contentType, 'c/d');
    });

    it('copy_replaces_meta_and_keeps_source', async () => {
      const data = randomBytes(70_000);
      await putBuf('copy/src', data, metaFor('bk', 'src', 'v1', { contentType: 'image/png' }));
      const newMeta = metaFor('bk2', 'dst ✓', 'v2', { contentType: 'text/csv', cacheControl: 'no-cache' });
      await b.copy('copy/src', 'copy/nested/dst', newMeta);
      assert.deepEqual(await readAll(await b.get('copy/nested/dst')), data);
      assert.deepEqual((await b.head('copy/nested/dst'))?.meta, newMeta);
      assert.equal((await b.head('copy/src'))?.meta?.versionId, 'v1');
      await rejectsKind(b.copy('copy/missing', 'copy/x', newMeta), 'NotFound', b.name);
      assert.equal(await b.head('copy/x'), null);
    });

    it('rebuild_meta_user_metadata_parts_and_oversized_meta_roundtrip', async () => {
      // What a rebuild from the backends needs: user metadata and part sizes (S3: in a sidecar object that
      // listings leave out and deletes remove), and metadata far over S3's 2 KB header limit.
      const long = longUnicodeKey();
      const meta = metaFor('bk', long, 'v7', {
        ...FULL_META,
        etag: 'a1b2c3d4e5f60718293a4b5c6d7e8f90-3',
        userMeta: { color: 'blue', note: 'ünïcode ✓ '.repeat(100) },
        partSizes: [5 * 1024 * 1024, 5 * 1024 * 1024, 17],
      });
      await putBuf('side/obj', Buffer.from('sidecar'), meta);
      assert.deepEqual((await b.head('side/obj'))?.meta, meta);
      assert.deepEqual((await b.list('side/')).entries.map((e) => e.key), ['side/obj'], 'the sidecar is not listed');
      await b.copy('side/obj', 'side/copy', { ...meta, versionId: 'v8' });
      assert.deepEqual((await b.head('side/copy'))?.meta, { ...meta, versionId: 'v8' });
      await b.delete('side/obj');
      await b.delete('side/copy');
      assert.equal(await b.head('side/obj'), null);
      // Nothing of either object (or its sidecar) is left, whatever a listing hides.
      assert.deepEqual((await b.list('side/')).entries, []);
      if (b.type === 's3') {
        for (const k of ['side/obj.meta.json', 'side/copy.meta.json']) assert.equal(await b.head(k), null, `${k} was deleted`);
      }
      assert.deepEqual(await t.leftovers(), []);
    });

    it('user_metadata_roundtrips_without_a_sidecar_when_it_fits', async () => {
      const meta = metaFor('bk', 'k ✓', 'v3', { contentType: 'text/plain', userMeta: { a: '1', 'x-name': 'ünïcödé ✓' } });
      await putBuf('um/obj', Buffer.from('um'), meta);
      assert.deepEqual((await b.head('um/obj'))?.meta, meta);
      if (b.type === 's3') assert.equal(await b.head('um/obj.meta.json'), null, 'small user metadata travels in the headers');
      await b.delete('um/obj');
    });

    it('list_order_prefix_startAfter_limit', async () => {
      // 'l/a-b' sorts before 'l/a/x' in S3 byte order ('-' < '/'); a naive directory walk gets this wrong.
      const keys = ['l/a/x', 'l/a-b', 'l/a/y/z', 'l/b', 'l/c/d'];
      for (const k of keys) await putBuf(k, Buffer.from(k));
      await putBuf('lx/other', Buffer.from('no'));
      const all = await b.list('l/');
      assert.deepEqual(
        all.entries.map((e) => e.key),
        ['l/a-b', 'l/a/x', 'l/a/y/z', 'l/b', 'l/c/d'],
      );
      assert.equal(all.truncated, false);
      assert.deepEqual({ key: all.entries[0]!.key, size: all.entries[0]!.size }, { key: 'l/a-b', size: 5 });
      const page = await b.list('l/', { limit: 2 });
      assert.deepEqual(page.entries.map((e) => e.key), ['l/a-b', 'l/a/x']);
      assert.equal(page.truncated, true);
      const next = await b.list('l/', { startAfter: 'l/a/x', limit: 2 });
      assert.deepEqual(next.entries.map((e) => e.key), ['l/a/y/z', 'l/b']);
      assert.equal(next.truncated, true);
      const last = await b.list('l/', { startAfter: 'l/b' });
      assert.deepEqual(last.entries.map((e) => e.key), ['l/c/d']);
      assert.equal(last.truncated, false);
      assert.deepEqual((await b.list('l/a/')).entries.map((e) => e.key), ['l/a/x', 'l/a/y/z']);
    });

    it('streams_64_MiB_without_buffering', async () => {
      const size = 64 * 1024 * 1024;
      const baseline = process.memoryUsage().arrayBuffers;
      let peak = baseline;
      // Sampled each time the consumer asks for more: a consumer that buffers keeps asking while holding it all.
      const gen = generatedStream(size, () => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      });
      await b.put('big/obj', gen.stream, size, metaFor('bk', 'big', 'v1'));
      const got = await hashStream(await b.get('big/obj'));
      assert.equal(got.bytes, size);
      assert.equal(got.digest, gen.digest());
      // Buffering the whole body would need at least 64 MiB more; a streaming put stays far below that.
      assert.ok(peak - baseline < 48 * 1024 * 1024, `external memory grew by ${(peak - baseline) >> 20} MiB`);
      await b.delete('big/obj');
    });

    it('short_body_rejects_and_leaves_nothing', async () => {
      await rejectsKind(b.put('short/obj', bufferStream(Buffer.alloc(1000)), 2000, metaFor('bk', 's', 'v')), 'Aborted', b.name);
      assert.equal(await b.head('short/obj'), null);
      assert.deepEqual(await t.leftovers(), []);
    });

    it('long_body_rejects_and_leaves_nothing', async () => {
      await rejectsKind(b.put('long/obj', bufferStream(Buffer.alloc(3000)), 2000, metaFor('bk', 's', 'v')), 'Aborted', b.name);
      assert.equal(await b.head('long/obj'), null);
      assert.deepEqual(await t.leftovers(), []);
    });

    it('failing_body_rejects_and_leaves_nothing', async () => {
      const body = stallingStream(512 * 1024, () => setImmediate(() => body.destroy(new Error('client went away'))));
      const err = await rejectsKind(b.put('fail/obj', body, 4 << 20, metaFor('bk', 'f', 'v')), 'Aborted', b.name);
      assert.match(err.message, /client went away/);
      assert.equal(await b.head('fail/obj'), null);
      assert.deepEqual(await t.leftovers(), []);
    });

    it('abort_signal_mid_put_rejects_and_keeps_previous_version', async () => {
      await putBuf('abort/obj', Buffer.from('previous'));
      const ac = new AbortController();
      const body = stallingStream(1024 * 1024, () => ac.abort(new Error('stop now')));
      await rejectsKind(b.put('abort/obj', body, 8 << 20, metaFor('bk', 'a', 'v2'), ac.signal), 'Aborted', b.name);
      assert.equal((await readAll(await b.get('abort/obj'))).toString(), 'previous');
      assert.equal((await b.head('abort/obj'))?.meta?.versionId, 'v1');
      await rejectsKind(b.put('abort/never', bufferStream(Buffer.from('x')), 1, metaFor('bk', 'a', 'v'), ac.signal), 'Aborted', b.name);
      assert.equal(await b.head('abort/never'), null);
      assert.deepEqual(await t.leftovers(), []);
    });

    it('destroying_get_stream_midway_closes_cleanly', async () => {
      const data = randomBytes(8 * 1024 * 1024);
      await putBuf('destroy/obj', data);
      const stream = await b.get('destroy/obj');
      const first = await new Promise<Buffer>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      assert.ok(first.length > 0 && first.length < data.length);
      const closed = new Promise((r) => stream.once('close', r));
      stream.destroy();
      await closed;
      assert.equal(stream.destroyed, true);
      t.afterGetDestroyed?.(stream);
      // The backend is still healthy afterwards.
      assert.deepEqual(await readAll(await b.get('destroy/obj', { start: 5, end: 9 })), data.subarray(5, 10));
    });

    it('aborting_get_signal_errors_the_stream', async () => {
      await putBuf('getabort/obj', randomBytes(4 * 1024 * 1024));
      const ac = new AbortController();
      const stream = await b.get('getabort/obj', undefined, ac.signal);
      await assert.rejects(async () => {
        for await (const _ of stream) ac.abort();
      });
      assert.equal(stream.destroyed, true);
    });

    it('check_passes_on_a_healthy_backend', async () => {
      await b.check();
    });

    multipartCases(() => t);
  });
}
