import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CoreError } from '../../../src/core/errors.js';
import { abortStaleWrites } from '../../../src/core/sweepers.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { engines } from '../../harness/db.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  return out;
}

const rejectsWith = (code: string) => (err: unknown) => err instanceof CoreError && err.code === code;

for (const engine of await engines()) {
  describe(`core objects on ${engine}`, () => {
    let s3: S3rverInstance;
    let f: CoreFixture;
    before(async () => {
      s3 = await startS3rver();
      f = await coreFixture(engine, (dir) => [
        { type: 'fs', name: 'fs-a', path: path.join(dir, 'a'), quotaBytes: 1000 },
        s3BackendConfig(s3, 's3-b', { quotaBytes: 1000 }),
      ]);
    });
    after(async () => {
      await f.close();
      await s3.stop();
    });

    test('PutObject then GetObject/HeadObject round-trip from metadata and backend', async () => {
      const v = await f.store.putObject(putInput('data', 'hello/world.txt', 'hello world', { userMeta: { owner: 'me' } }));
      assert.equal(v.etag, '5eb63bbbe01eeed093cb22bb8f5acdc3');
      const head = await f.store.headObject('data', 'hello/world.txt');
      assert.equal(head.size, 11);
      assert.deepEqual(head.userMeta, { owner: 'me' });
      assert.equal(head.contentType, 'text/plain');
      const got = await f.store.getObject('data', 'hello/world.txt', { range: { start: 6, end: 10 } });
      assert.deepEqual(got.range, { start: 6, end: 10 });
      assert.equal((await readAll(got.body)).toString(), 'world');
      const suffix = await f.store.getObject('data', 'hello/world.txt', { range: { suffix: 3 } });
      assert.equal((await readAll(suffix.body)).toString(), 'rld');
      await assert.rejects(f.store.getObject('data', 'hello/world.txt', { range: { start: 11 } }), rejectsWith('InvalidRange'));
      await assert.rejects(f.store.headObject('data', 'missing'), rejectsWith('NoSuchKey'));
      await assert.rejects(f.store.headObject('nobucket', 'x'), rejectsWith('NoSuchBucket'));
    });

    test('overwrite retires the old copy through the queue and releases its quota only after deletion', async () => {
      await f.drain();
      const before = await f.backendRow('fs-a');
      await f.store.putObject(putInput('data', 'ow', 'aaaa'));
      const first = await f.store.locate('data', 'ow');
      await f.store.putObject(putInput('data', 'ow', 'bbbbbbbb'));
      const second = await f.store.locate('data', 'ow');
      assert.notEqual(first.copies[0]!.physicalKey, second.copies[0]!.physicalKey, 'generation-unique physical keys');
      const mid = await f.backendRow('fs-a');
      assert.equal(mid.used_bytes - before.used_bytes, 12, 'old bytes stay counted until deleted');
      assert.ok(existsSync(path.join(f.dir, 'a', first.copies[0]!.physicalKey)));
      await f.drain();
      assert.ok(!existsSync(path.join(f.dir, 'a', first.copies[0]!.physicalKey)), 'old copy deleted');
      assert.ok(existsSync(path.join(f.dir, 'a', second.copies[0]!.physicalKey)), 'live copy kept');
      const end = await f.backendRow('fs-a');
      assert.equal(end.used_bytes - before.used_bytes, 8);
      assert.equal(end.object_count - before.object_count, 1);
      assert.equal((await readAll((await f.store.getObject('data', 'ow')).body)).toString(), 'bbbbbbbb');
    });

    test('pack fills the first backend then the next; a full pool answers InsufficientStorage and writes nothing', async () => {
      await f.drain();
      const a = await f.backendRow('fs-a');
      const room = 1000 - a.used_bytes - a.reserved_bytes;
      await f.store.putObject(putInput('data', 'fill-a', Buffer.alloc(room, 1)));
      assert.equal((await f.store.locate('data', 'fill-a')).copies[0]!.backend, 'fs-a');
      await f.store.putObject(putInput('data', 'to-b', Buffer.alloc(10, 2)));
      assert.equal((await f.store.locate('data', 'to-b')).copies[0]!.backend, 's3-b');
      const filesBefore = await filesUnder(path.join(f.dir, 'a'));
      await assert.rejects(f.store.putObject(putInput('data', 'too-big', Buffer.alloc(995, 3))), rejectsWith('InsufficientStorage'));
      assert.deepEqual(await filesUnder(path.join(f.dir, 'a')), filesBefore);
      const { rows } = await f.db.query(`SELECT 1 FROM object_versions WHERE state = 'pending'`);
      assert.equal(rows.length, 0);
      await f.store.deleteObjects('data', ['fill-a', 'to-b', 'ow', 'hello/world.txt']);
      await f.drain();
    });

    test('concurrent writes never overshoot a quota', async () => {
      await f.drain();
      const a = await f.backendRow('fs-a');
      const b = await f.backendRow('s3-b');
      const free = 2000 - a.used_bytes - b.used_bytes;
      const size = 90;
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) => f.store.putObject(putInput('data', `c/${i}`, Buffer.alloc(size, i)))),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      for (const r of results) if (r.status === 'rejected') assert.ok(rejectsWith('InsufficientStorage')(r.reason), String(r.reason));
      const a2 = await f.backendRow('fs-a');
      const b2 = await f.backendRow('s3-b');
      assert.ok(a2.used_bytes <= 1000 && b2.used_bytes <= 1000, `${a2.used_bytes} / ${b2.used_bytes}`);
      assert.equal(a2.reserved_bytes + b2.reserved_bytes, 0);
      assert.ok(ok >= Math.floor(free / size) - 1 && ok <= Math.floor(free / size), `ok=${ok} free=${free}`);
      const keys = Array.from({ length: 30 }, (_, i) => `c/${i}`);
      await f.store.deleteObjects('data', keys);
      await f.drain();
      const a3 = await f.backendRow('fs-a');
      assert.equal(a3.used_bytes, a.used_bytes);
    });

    test('a body that fails mid-stream leaves nothing live and its bytes are cleaned up', async () => {
      await f.drain();
      const a = await f.backendRow('fs-a');
      // 50 bytes, then the client goes away while the write is reading (not on a timer: under load a timer
      // could fire before anything listens to the body).
      let reads = 0;
      const body = new Readable({
        read() {
          if (reads++ === 0) this.push(Buffer.alloc(50, 7));
          else this.destroy(new Error('client went away'));
        },
      });
      await assert.rejects(f.store.putObject({ ...putInput('data', 'broken', ''), size: 100, body }), rejectsWith('IncompleteBody'));
      await assert.rejects(f.store.headObject('data', 'broken'), rejectsWith('NoSuchKey'));
      await f.drain();
      const a2 = await f.backendRow('fs-a');
      assert.equal(a2.used_bytes, a.used_bytes);
      assert.equal(a2.reserved_bytes, 0);
      assert.deepEqual((await filesUnder(path.join(f.dir, 'a', '.tmp'))).length, 0);
    });

    test('If-None-Match: * lets exactly one of several racing writers create the key', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => f.store.putObject(putInput('data', 'once', `w${i}`, { conditions: { ifNoneMatchStar: true } }))),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(rejectsWith('PreconditionFailed')(r.reason));
      await assert.rejects(
        f.store.putObject(putInput('data', 'once', 'x', { conditions: { ifMatch: '"nope"' } })),
        rejectsWith('PreconditionFailed'),
      );
      const cur = await f.store.headObject('data', 'once');
      await f.store.putObject(putInput('data', 'once', 'y', { conditions: { ifMatch: `"${cur.etag}"` } }));
      await f.store.deleteObject('data', 'once');
      await f.drain();
    });

    test('list with delimiter, prefix, pagination and unicode keys in byte order', async () => {
      const keys = ['a/1', 'a/2', 'a/b/3', 'b', 'c/x/y', 'é', 'z', 'a+b', 'a%2F', 'a/ 2'];
      for (const k of keys) await f.store.putObject(putInput('other', k, k));
      const all = await f.store.listObjects({ bucket: 'other', prefix: '', maxKeys: 1000 });
      assert.deepEqual(all.objects.map((o) => o.key), [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      const top = await f.store.listObjects({ bucket: 'other', prefix: '', delimiter: '/', maxKeys: 1000 });
      assert.deepEqual(top.commonPrefixes, ['a/', 'c/']);
      assert.deepEqual(top.objects.map((o) => o.key), ['a%2F', 'a+b', 'b', 'z', 'é']);
      const sub = await f.store.listObjects({ bucket: 'other', prefix: 'a/', delimiter: '/', maxKeys: 1000 });
      assert.deepEqual(sub.objects.map((o) => o.key), ['a/ 2', 'a/1', 'a/2']);
      assert.deepEqual(sub.commonPrefixes, ['a/b/']);
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await f.store.listObjects({ bucket: 'other', prefix: '', delimiter: '/', maxKeys: 2, ...(after ? { after } : {}) });
        seen.push(...page.commonPrefixes, ...page.objects.map((o) => o.key));
        if (!page.isTruncated) break;
        after = page.nextAfter;
      }
      assert.deepEqual(seen.sort(), [...top.commonPrefixes, ...top.objects.map((o) => o.key)].sort());
      await f.store.deleteObjects('other', keys);
      assert.equal((await f.store.listObjects({ bucket: 'other', prefix: '', maxKeys: 10 })).objects.length, 0);
    });

    test('copy within a backend is server-side and keeps the ETag; COPY onto itself is refused', async () => {
      await f.store.putObject(putInput('data', 'src', 'copy me', { userMeta: { a: '1' } }));
      const v = await f.store.copyObject({
        srcBucket: 'data', srcKey: 'src', dstBucket: 'other', dstKey: 'dst',
        metadataDirective: 'COPY', headers: {}, userMeta: {},
      });
      assert.equal(v.etag, (await f.store.headObject('data', 'src')).etag);
      assert.deepEqual(v.userMeta, { a: '1' });
      assert.equal((await readAll((await f.store.getObject('other', 'dst')).body)).toString(), 'copy me');
      await assert.rejects(
        f.store.copyObject({ srcBucket: 'data', srcKey: 'src', dstBucket: 'data', dstKey: 'src', metadataDirective: 'COPY', headers: {}, userMeta: {} }),
        rejectsWith('InvalidRequest'),
      );
      await f.store.deleteObject('data', 'src');
      await f.store.deleteObject('other', 'dst');
      await f.drain();
    });

    test('the janitor aborts writes whose heartbeat stopped', async () => {
      await f.db.query(`INSERT INTO object_versions (version_id, bucket, key, state, size, heartbeat_at)
                        VALUES ('stale0000000000000000000000000000', 'data', 'stale', 'pending', 5, now() - interval '1 hour')`);
      await f.db.query(`UPDATE backends SET reserved_bytes = reserved_bytes + 5 WHERE name = 'fs-a'`);
      await f.db.query(`INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                        VALUES ('stale0000000000000000000000000000', 'fs-a', 'data/xx/stale', 5, 'pending')`);
      assert.equal(await abortStaleWrites(f.db, 60_000), 1);
      await f.drain();
      const row = await f.backendRow('fs-a');
      assert.equal(row.reserved_bytes, 0);
      const { rows } = await f.db.query(`SELECT 1 FROM object_versions WHERE version_id = 'stale0000000000000000000000000000'`);
      assert.equal(rows.length, 0);
    });
  });
}

describe('failover', () => {
  test('a backend that refuses connections is skipped before any byte is acknowledged', async () => {
    const s3 = await startS3rver();
    const f = await coreFixture('embedded', (dir) => [
      { ...s3BackendConfig({ endpoint: 'http://127.0.0.1:1', bucket: 'test' }, 'dead'), quotaBytes: 0 },
      { type: 'fs', name: 'alive', path: path.join(dir, 'alive'), quotaBytes: 0 },
    ]);
    try {
      const data = Buffer.alloc(100_000, 9);
      await f.store.putObject(putInput('data', 'k', data));
      const loc = await f.store.locate('data', 'k');
      assert.equal(loc.copies[0]!.backend, 'alive');
      assert.deepEqual(await readAll((await f.store.getObject('data', 'k')).body), data);
      await f.drain();
      const dead = await f.backendRow('dead');
      assert.equal(dead.reserved_bytes, 0);
    } finally {
      await f.close();
      await s3.stop();
    }
  });
});
