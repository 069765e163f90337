/**
 * Degraded reads (core/degraded.ts): choosing the newest generation from prefix listings (pure), and the
 * reader over real fs backends holding physical objects written the way the write path writes them:
 * headers from the stored metadata, the ETag recomputed when it was not stored, failover between the
 * copies of the generation, deletes this instance made, backends that do not answer.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Backend, PhysicalMeta } from '../../../src/backends/backend.js';
import { FsBackend } from '../../../src/backends/fs.js';
import { copyKey, logicalPrefix, newVersionId, physicalKey } from '../../../src/backends/layout.js';
import { BackendRegistry } from '../../../src/core/backends.js';
import { DegradedReader, degradedPartSizes, newestGeneration, versionTime } from '../../../src/core/degraded.js';
import { CoreError } from '../../../src/core/errors.js';
import { recordingLogger } from '../../harness/logger.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('newestGeneration', () => {
  const prefix = logicalPrefix('data', 'k');
  const older = newVersionId(1_700_000_000_000);
  const newer = newVersionId(1_700_000_000_500);

  test('the greatest version id wins, with every copy of it on every backend (repair copies included)', () => {
    const repair = `${prefix}${newer}.a1b2c3`;
    const found = newestGeneration(prefix, [
      { backend: 'a', entries: [{ key: prefix + older, size: 5 }, { key: prefix + newer, size: 7 }] },
      { backend: 'b', entries: [{ key: repair, size: 7 }] },
      { backend: 'c', entries: [{ key: prefix + older, size: 5 }] },
    ]);
    assert.deepEqual(found, {
      versionId: newer,
      copies: [
        { backend: 'a', physicalKey: prefix + newer, size: 7 },
        { backend: 'b', physicalKey: repair, size: 7 },
      ],
    });
  });

  test('sidecars, foreign names, deeper keys and other prefixes are not copies', () => {
    const found = newestGeneration(prefix, [
      {
        backend: 'a',
        entries: [
          { key: `${prefix}${newer}.meta.json`, size: 100 },
          { key: `${prefix}not-a-version`, size: 1 },
          { key: `${prefix}sub/${newer}`, size: 1 },
          { key: `${logicalPrefix('data', 'other')}${newer}`, size: 1 },
          { key: prefix + older, size: 5 },
        ],
      },
      { backend: 'b', error: new Error('down') },
    ]);
    assert.deepEqual(found, { versionId: older, copies: [{ backend: 'a', physicalKey: prefix + older, size: 5 }] });
  });

  test('nothing found', () => {
    assert.equal(newestGeneration(prefix, [{ backend: 'a', entries: [] }, { backend: 'b', error: new Error('x') }]), undefined);
  });

  test('version ids carry their creation time', () => {
    assert.equal(versionTime(newVersionId(1_700_000_123_456)), 1_700_000_123_456);
  });
});

describe('DegradedReader over fs backends', () => {
  let root: string;
  let a: FsBackend;
  let b: FsBackend;
  let registry: BackendRegistry;
  let reader: DegradedReader;
  const lines: string[] = [];

  const store = async (backend: Backend, key: string, body: Buffer, meta: PhysicalMeta): Promise<void> => {
    await backend.put(key, Readable.from([body]), body.length, meta);
  };
  const read = async (s: Readable): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 's3o-degraded-'));
    a = new FsBackend({ type: 'fs', name: 'a', quotaBytes: 0, path: path.join(root, 'a') });
    b = new FsBackend({ type: 'fs', name: 'b', quotaBytes: 0, path: path.join(root, 'b') });
    await a.check();
    await b.check();
    registry = new BackendRegistry([a, b]);
    reader = new DegradedReader({ backends: registry, log: recordingLogger(lines), locateTimeoutMs: 1_000 });
  });
  after(async () => {
    await registry.close();
    await rm(root, { recursive: true, force: true });
  });

  test('newest generation with its stored headers; the ETag of a plain PUT recomputed from the bytes', async () => {
    const key = 'photos/ünï code.jpg';
    const v1 = newVersionId(Date.now() - 10_000);
    const v2 = newVersionId(Date.now() - 5_000);
    const old = Buffer.from('the overwritten bytes');
    const cur = randomBytes(10_000);
    await store(a, physicalKey('data', key, v1), old, { bucket: 'data', key, versionId: v1, contentType: 'text/plain' });
    const meta = { bucket: 'data', key, versionId: v2, contentType: 'image/jpeg', cacheControl: 'no-cache', contentDisposition: 'inline', userMeta: { camera: 'x100' } };
    await store(b, physicalKey('data', key, v2), cur, meta as PhysicalMeta);

    const v = await reader.headObject('data', key);
    assert.equal(v.versionId, v2);
    assert.equal(v.size, cur.length);
    assert.equal(v.etag, md5(cur));
    assert.equal(v.contentType, 'image/jpeg');
    assert.equal(v.cacheControl, 'no-cache');
    assert.equal(v.contentDisposition, 'inline');
    assert.deepEqual(v.userMeta, { camera: 'x100' });
    assert.equal(v.partsCount, undefined);
    assert.deepEqual(degradedPartSizes(v), [cur.length]);

    const got = await reader.getObject('data', key, { range: { start: 100, end: 199 } });
    assert.deepEqual(got.range, { start: 100, end: 199 });
    assert.deepEqual(await read(got.body), cur.subarray(100, 200));
    // Conditions are evaluated against the degraded answer.
    await assert.rejects(reader.getObject('data', key, { conditions: { ifNoneMatch: `"${md5(cur)}"` } }), (e: unknown) => e instanceof CoreError && e.code === 'NotModified');
  });

  test('a plain PUT above the recompute limit has no ETag (sent without one), never a guessed one', async () => {
    const key = 'big-plain';
    const v = newVersionId();
    await store(a, physicalKey('data', key, v), randomBytes(100), { bucket: 'data', key, versionId: v });
    const r = new DegradedReader({ backends: registry, log: recordingLogger([]), md5LimitBytes: 50 });
    const got = await r.headObject('data', key);
    assert.equal(got.etag, '');
    assert.equal(degradedPartSizes(got), null, 'without an ETag, not even the part count is known');
  });

  test('a stored multipart ETag and part sizes are answered as stored; no bytes are read for them', async () => {
    const key = 'multi';
    const v = newVersionId();
    const body = randomBytes(3000);
    const etag = `${'ab'.repeat(16)}-2`;
    await store(a, physicalKey('data', key, v), body, { bucket: 'data', key, versionId: v, etag, partSizes: [2000, 1000] } as PhysicalMeta);
    const got = await reader.headObject('data', key);
    assert.equal(got.etag, etag);
    assert.equal(got.partsCount, 2);
    assert.deepEqual(degradedPartSizes(got), [2000, 1000]);
  });

  test('a multipart object without stored part sizes: parts unknown, never a guessed ETag', async () => {
    const key = 'multi-old';
    const v = newVersionId();
    await store(a, physicalKey('data', key, v), randomBytes(100), { bucket: 'data', key, versionId: v, etag: `${'cd'.repeat(16)}-3` });
    const got = await reader.headObject('data', key);
    assert.equal(got.partsCount, 3);
    assert.equal(degradedPartSizes(got), null);
  });

  test('a copy that is gone or fails is replaced by another copy of the same generation', async () => {
    const key = 'two-copies';
    const v = newVersionId();
    const body = randomBytes(50_000);
    const meta = { bucket: 'data', key, versionId: v, etag: md5(body) };
    await store(a, physicalKey('data', key, v), body, meta);
    await store(b, copyKey('data', key, v), body, meta);
    // The copy on `a` loses its bytes after the listing would have found it: HEAD and GET use `b`.
    const broken = new BackendRegistry([
      { ...a, name: 'a', type: 'fs', list: (p: string, o?: { startAfter?: string; limit?: number }) => a.list(p, o), head: async () => { throw new Error('disk error'); }, get: async () => { throw new Error('disk error'); } } as unknown as Backend,
      b,
    ]);
    const r = new DegradedReader({ backends: broken, log: recordingLogger([]) });
    const got = await r.getObject('data', key);
    assert.equal(got.version.etag, md5(body));
    assert.deepEqual(await read(got.body), body);
  });

  test('a key this instance deleted is not brought back; a later write of it is', async () => {
    const key = 'deleted-here';
    const v = newVersionId(Date.now() - 1_000);
    await store(a, physicalKey('data', key, v), Buffer.from('old'), { bucket: 'data', key, versionId: v });
    reader.noteDeleted('data', [key]);
    await assert.rejects(reader.headObject('data', key), (e: unknown) => e instanceof CoreError && e.code === 'NoSuchKey');
    // A read from the database that began before the delete does not bring the key back; one after does.
    const live = { bucket: 'data', key, versionId: v, size: 3, etag: '', userMeta: {}, tagCount: 0, lastModified: new Date() };
    reader.noteLive(live, Date.now() - 60_000);
    await assert.rejects(reader.headObject('data', key), (e: unknown) => e instanceof CoreError && e.code === 'NoSuchKey');
    await new Promise((r) => setTimeout(r, 5));
    reader.noteLive(live, Date.now());
    assert.equal((await reader.headObject('data', key)).versionId, v);
    reader.noteDeleted('data', [key]);
    const later = newVersionId(Date.now() + 1_000);
    await store(b, physicalKey('data', key, later), Buffer.from('new'), { bucket: 'data', key, versionId: later });
    assert.equal((await reader.headObject('data', key)).versionId, later);
  });

  test('bytes of a write this instance did not see acknowledged are not answered, until the database says they are live', async () => {
    const key = 'unacknowledged';
    const v1 = newVersionId(Date.now() - 1_000);
    await store(a, physicalKey('data', key, v1), Buffer.from('acknowledged'), { bucket: 'data', key, versionId: v1 });
    let staged = '';
    const write = (fail: boolean) =>
      reader.guardWrite(
        async (req) => {
          const versionId = newVersionId();
          staged = versionId;
          const meta = { bucket: 'data', key, versionId };
          await req.produce(b, physicalKey('data', key, versionId), meta, new AbortController().signal);
          if (fail) throw new CoreError('ServiceUnavailable', 'the commit could not be confirmed');
          return { bucket: 'data', key, versionId, size: 3, etag: md5(Buffer.from('new')), userMeta: {}, tagCount: 0, lastModified: new Date() };
        },
        {
          bucket: 'data',
          key,
          size: 3,
          meta: {},
          produce: (backend, pkey, meta) => store(backend, pkey, Buffer.from('new'), meta),
          retryable: () => false,
          finalize: () => ({ etag: md5(Buffer.from('new')), userMeta: {}, tags: {} }) as never,
        },
      );
    await assert.rejects(write(true));
    assert.equal((await reader.headObject('data', key)).versionId, v1, 'the unacknowledged generation is skipped');
    // Its commit did happen after all: a read from the database said so.
    reader.noteLive({ bucket: 'data', key, versionId: staged, size: 3, etag: '', userMeta: {}, tagCount: 0, lastModified: new Date() }, Date.now());
    assert.equal((await reader.headObject('data', key)).versionId, staged);
    const acknowledged = await write(false);
    assert.equal((await reader.headObject('data', key)).versionId, acknowledged.versionId);
  });

  test('a multipart completion not acknowledged: its assembled bytes are not answered', async () => {
    const key = 'completing';
    const v1 = newVersionId(Date.now() - 2_000);
    await store(a, physicalKey('data', key, v1), Buffer.from('before'), { bucket: 'data', key, versionId: v1 });
    const upload = newVersionId(Date.now() - 1_000); // taken at CreateMultipartUpload
    const assembled = { bucket: 'data', key, versionId: upload, size: 9, etag: `${'ef'.repeat(16)}-1`, userMeta: {}, tagCount: 0, lastModified: new Date() };
    await assert.rejects(
      reader.guardCompletion(upload, async () => {
        await store(b, physicalKey('data', key, upload), Buffer.from('assembled'), { bucket: 'data', key, versionId: upload, etag: assembled.etag, partSizes: [9] } as PhysicalMeta);
        throw new CoreError('ServiceUnavailable', 'the publishing commit was lost');
      }),
    );
    assert.equal((await reader.headObject('data', key)).versionId, v1);
    await reader.guardCompletion(upload, async () => assembled); // a retried Complete publishes it
    assert.equal((await reader.headObject('data', key)).versionId, upload);
  });

  test('absent everywhere: NoSuchKey; absent on those that answered while one did not: ServiceUnavailable', async () => {
    await assert.rejects(reader.headObject('data', 'nowhere'), (e: unknown) => e instanceof CoreError && e.code === 'NoSuchKey');
    const hanging = new BackendRegistry([a, { ...b, name: 'b', type: 'fs', list: () => new Promise(() => {}) } as unknown as Backend]);
    const r = new DegradedReader({ backends: hanging, log: recordingLogger([]), locateTimeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(r.headObject('data', 'nowhere'), (e: unknown) => e instanceof CoreError && e.code === 'ServiceUnavailable');
    assert.ok(Date.now() - started < 1_000, 'the listing is bounded by the locate timeout');
    // Found on a backend that answered: served, even though another did not answer.
    const key = 'found-on-a';
    const v = newVersionId();
    await store(a, physicalKey('data', key, v), Buffer.from('here'), { bucket: 'data', key, versionId: v });
    assert.equal((await r.headObject('data', key)).size, 4);
  });

  test('an object whose stored identity names another key is not answered for this one', async () => {
    const key = 'victim';
    const v = newVersionId();
    await store(a, physicalKey('data', key, v), Buffer.from('foreign'), { bucket: 'data', key: 'someone-else', versionId: v });
    await assert.rejects(reader.headObject('data', key), (e: unknown) => e instanceof CoreError && e.code === 'ServiceUnavailable');
  });
});
