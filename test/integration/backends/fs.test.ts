import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBackend } from '../../../src/backends/index.js';
import { FsBackend, mapFsError, TMP_DIR } from '../../../src/backends/fs.js';
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
    assert.deepEqual((await b.list('a/')).entries, [{ key: 'a/b/obj', size: 4 }]);
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
