import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBackend } from '../../../src/backends/index.js';
import { FsBackend, mapFsError, MPU_DIR, TMP_DIR } from '../../../src/backends/fs.js';
import { bufferStream, readAll, rejectsKind, stallingStream } from './helpers.js';
import { backendSuite, type SuiteTarget } from './suite.js';

async function tmpEntries(root: string): Promise<string[]> {
  return readdir(path.join(root, TMP_DIR)).catch(() => []);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function fsTarget(): Promise<SuiteTarget> {
  const root = await mkdtemp(path.join(os.tmpdir(), 's3o-fs-'));
  const backend = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
  return {
    backend,
    leftovers: () => tmpEntries(root),
    abortDiscards: true,
    uploadsLeft: () => readdir(path.join(root, MPU_DIR)).catch(() => []),
    teardown: async () => {
      await backend.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

backendSuite('FsBackend', fsTarget);

describe('FsBackend specifics', () => {
  let root: string;
  let b: FsBackend;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 's3o-fs-'));
    b = new FsBackend({ type: 'fs', name: 'disk2', quotaBytes: 0, path: path.join(root, 'data') });
    await b.check();
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('rejects_keys_that_escape_or_collide', async () => {
    const bad = ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', '', '.tmp/x', 'x.meta.json', 'a/..', 'nul\0'];
    for (const key of bad) {
      await rejectsKind(b.put(key, bufferStream(Buffer.from('x')), 1, { bucket: 'b', key: 'k', versionId: 'v' }), 'Other', 'disk2');
      await assert.rejects(b.head(key), /invalid physical key/);
    }
    assert.equal(await exists(path.join(root, 'x')), false);
  });

  it('layout_on_disk_and_sidecars_hidden_from_list', async () => {
    await b.put('a/b/obj', bufferStream(Buffer.from('data')), 4, { bucket: 'b', key: 'k', versionId: 'v' });
    assert.equal((await stat(path.join(root, 'data', 'a/b/obj'))).size, 4);
    assert.ok(await exists(path.join(root, 'data', 'a/b/obj.meta.json')));
    assert.deepEqual((await b.list('a/')).entries.map(({ key, size }) => ({ key, size })), [{ key: 'a/b/obj', size: 4 }]);
  });

  it('delete_prunes_empty_parents_but_never_the_root', async () => {
    await b.put('p/q/r/obj', bufferStream(Buffer.from('x')), 1, { bucket: 'b', key: 'k', versionId: 'v' });
    await b.put('p/keep', bufferStream(Buffer.from('y')), 1, { bucket: 'b', key: 'k', versionId: 'v' });
    await b.delete('p/q/r/obj');
    assert.equal(await exists(path.join(root, 'data', 'p/q')), false);
    assert.ok(await exists(path.join(root, 'data', 'p/keep')));
    await b.delete('p/keep');
    assert.equal(await exists(path.join(root, 'data', 'p')), false);
    assert.ok(await exists(path.join(root, 'data')));
  });

  it('a_put_in_progress_is_invisible_under_its_live_name', async () => {
    const ac = new AbortController();
    let resolveStalled!: () => void;
    const stalled = new Promise<void>((r) => (resolveStalled = r));
    const body = stallingStream(256 * 1024, resolveStalled);
    const put = b.put('inflight/obj', body, 1 << 20, { bucket: 'b', key: 'k', versionId: 'v' }, ac.signal);
    await stalled;
    assert.equal(await exists(path.join(root, 'data', 'inflight')), false);
    assert.equal(await b.head('inflight/obj'), null);
    assert.equal((await tmpEntries(path.join(root, 'data'))).length, 1);
    ac.abort();
    await rejectsKind(put, 'Aborted', 'disk2');
    assert.deepEqual(await tmpEntries(path.join(root, 'data')), []);
  });

  it('check_creates_a_missing_directory', async () => {
    const dir = path.join(root, 'new', 'nested');
    await new FsBackend({ type: 'fs', name: 'n', quotaBytes: 0, path: dir }).check();
    assert.ok((await stat(dir)).isDirectory());
  });

  it('check_on_an_uncreatable_directory_names_the_backend', async () => {
    // Root ignores permission bits, so make the directory impossible instead: its parent is a regular file.
    const file = path.join(root, 'a-file');
    await writeFile(file, 'x');
    const dir = path.join(file, 'sub');
    const bad = createBackend({ type: 'fs', name: 'broken-disk', quotaBytes: 0, path: dir });
    const err = await rejectsKind(bad.check(), 'Unavailable', 'broken-disk');
    assert.match(err.message, /fs backend "broken-disk"/);
    assert.ok(err.message.includes(dir), err.message);
  });

  it('get_of_a_directory_or_missing_file_is_NotFound', async () => {
    await b.put('dir/obj', bufferStream(Buffer.from('x')), 1, { bucket: 'b', key: 'k', versionId: 'v' });
    assert.equal(await b.head('dir'), null);
    await rejectsKind(b.get('dir/missing'), 'NotFound', 'disk2');
    assert.equal((await readAll(await b.get('dir/obj'))).toString(), 'x');
  });

  it('mapFsError_classifies_errno_codes', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    const cases: [string, string][] = [
      ['ENOENT', 'NotFound'],
      ['EACCES', 'AccessDenied'],
      ['EROFS', 'AccessDenied'],
      ['ENOSPC', 'Full'],
      ['EDQUOT', 'Full'],
      ['EIO', 'Unavailable'],
      ['EMFILE', 'Unavailable'],
      ['EINVAL', 'Other'],
    ];
    for (const [code, kind] of cases) assert.equal(mapFsError('d', e(code), 'op').kind, kind, code);
    assert.equal(mapFsError('d', e('ENOENT'), 'op', 'Unavailable').kind, 'Unavailable');
    assert.equal(mapFsError('d', Object.assign(new Error('x'), { name: 'AbortError' }), 'op').kind, 'Aborted');
  });
});

describe('FsBackend multipart specifics', () => {
  let root: string;
  let b: FsBackend;
  const meta = { bucket: 'b', key: 'k', versionId: 'v', contentType: 'text/plain' };
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 's3o-fs-mpu-'));
    b = new FsBackend({ type: 'fs', name: 'mpu-disk', quotaBytes: 0, path: root });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('layout_on_disk_and_cleanup_after_complete', async () => {
    const id = await b.createMultipart('lay/obj', meta);
    assert.match(id, /^[A-Za-z0-9_-]{16,64}$/);
    const dir = path.join(root, MPU_DIR, id);
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')), { key: 'lay/obj', meta });
    const e1 = await b.uploadPart('lay/obj', id, 1, bufferStream(Buffer.from('abc')), 3);
    const e2 = await b.uploadPart('lay/obj', id, 2, bufferStream(Buffer.from('de')), 2);
    assert.deepEqual((await readdir(dir)).sort(), ['1', '2', 'meta.json']);
    await b.completeMultipart('lay/obj', id, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2.toUpperCase() },
    ]);
    assert.equal(await exists(dir), false);
    assert.equal((await readFile(path.join(root, 'lay/obj'))).toString(), 'abcde');
    assert.deepEqual(JSON.parse(await readFile(path.join(root, 'lay/obj.meta.json'), 'utf8')), meta);
    assert.deepEqual(await tmpEntries(root), []);
    await rejectsKind(b.completeMultipart('lay/obj', id, [{ partNumber: 1, etag: e1 }]), 'NotFound', 'mpu-disk');
  });

  it('rejects_upload_ids_keys_and_part_numbers_it_cannot_have_issued', async () => {
    const id = await b.createMultipart('ids/obj', meta);
    const badIds = ['../../etc', '..', 'a/b', '', 'x'.repeat(65), 'short', `${id}/../x`];
    for (const bad of badIds) {
      await rejectsKind(b.uploadPart('ids/obj', bad, 1, bufferStream(Buffer.from('x')), 1), 'Other', 'mpu-disk');
      await rejectsKind(b.abortMultipart('ids/obj', bad), 'Other', 'mpu-disk');
      await rejectsKind(b.completeMultipart('ids/obj', bad, [{ partNumber: 1, etag: 'x' }]), 'Other', 'mpu-disk');
    }
    for (const n of [0, 10_001, 1.5, -1]) {
      await rejectsKind(b.uploadPart('ids/obj', id, n, bufferStream(Buffer.from('x')), 1), 'Other', 'mpu-disk');
    }
    await rejectsKind(b.createMultipart('../escape', meta), 'Other', 'mpu-disk');
    await rejectsKind(b.createMultipart('.mpu/x', meta), 'Other', 'mpu-disk');
    // Another key's upload id is unknown for this key; aborting it through the wrong key leaves it alone.
    await rejectsKind(b.uploadPart('ids/other', id, 1, bufferStream(Buffer.from('x')), 1), 'NotFound', 'mpu-disk');
    await b.abortMultipart('ids/other', id);
    assert.ok(await exists(path.join(root, MPU_DIR, id)));
    await b.abortMultipart('ids/obj', id);
    assert.equal(await exists(path.join(root, MPU_DIR, id)), false);
  });

  it('complete_rejects_missing_unordered_and_empty_part_lists', async () => {
    const id = await b.createMultipart('chk/obj', meta);
    const e1 = await b.uploadPart('chk/obj', id, 1, bufferStream(Buffer.from('one')), 3);
    const e2 = await b.uploadPart('chk/obj', id, 2, bufferStream(Buffer.from('two')), 3);
    const missing = await rejectsKind(
      b.completeMultipart('chk/obj', id, [{ partNumber: 1, etag: e1 }, { partNumber: 3, etag: e2 }]),
      'Other',
      'mpu-disk',
    );
    assert.match(missing.message, /part 3 was never uploaded/);
    const unordered = [{ partNumber: 2, etag: e2 }, { partNumber: 1, etag: e1 }];
    await rejectsKind(b.completeMultipart('chk/obj', id, unordered), 'Other', 'mpu-disk');
    await rejectsKind(b.completeMultipart('chk/obj', id, []), 'Other', 'mpu-disk');
    const wrong = await rejectsKind(
      b.completeMultipart('chk/obj', id, [{ partNumber: 1, etag: e2 }]),
      'Other',
      'mpu-disk',
    );
    assert.match(wrong.message, /part 1 has ETag/);
    assert.equal(await b.head('chk/obj'), null);
    assert.deepEqual(await tmpEntries(root), []);
    await b.completeMultipart('chk/obj', id, [{ partNumber: 2, etag: e2 }]);
    assert.equal((await readAll(await b.get('chk/obj'))).toString(), 'two');
  });

  it('part_copy_range_outside_the_source_is_refused', async () => {
    await b.put('pcs/src', bufferStream(Buffer.from('0123456789')), 10, meta);
    const id = await b.createMultipart('pcs/dst', meta);
    await rejectsKind(b.uploadPartCopy('pcs/dst', id, 1, 'pcs/src', { start: 5, end: 10 }), 'Other', 'mpu-disk');
    assert.deepEqual(await readdir(path.join(root, MPU_DIR, id)), ['meta.json']);
    await b.abortMultipart('pcs/dst', id);
  });

  it('a_part_aborted_after_the_upload_was_aborted_leaves_nothing', async () => {
    const id = await b.createMultipart('race/obj', meta);
    let resolveStalled!: () => void;
    const stalled = new Promise<void>((r) => (resolveStalled = r));
    const body = stallingStream(256 * 1024, resolveStalled);
    const ac = new AbortController();
    const upload = b.uploadPart('race/obj', id, 1, body, 1 << 20, ac.signal);
    await stalled;
    await b.abortMultipart('race/obj', id);
    ac.abort();
    await rejectsKind(upload, 'Aborted', 'mpu-disk');
    assert.equal(await exists(path.join(root, MPU_DIR, id)), false);
    assert.deepEqual(await tmpEntries(root), []);
  });
});
