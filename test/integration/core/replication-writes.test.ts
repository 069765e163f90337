import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BackendError, type Backend } from '../../../src/backends/backend.js';
import { CoreError } from '../../../src/core/errors.js';
import { CoreObjectStore } from '../../../src/core/objects.js';
import { DbTenantDirectory } from '../../../src/core/tenants.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { faultyBackend, type FaultyBackend } from '../../harness/faults-backend.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const rejectsWith = (code: string) => (err: unknown) => err instanceof CoreError && err.code === code;

/** Makes the next put on `b` read `bytes` of its body, then fail like a provider dropping the connection. */
function failMidStream(b: Backend, bytes: number): { arm(): void } {
  let armed = false;
  const put = b.put.bind(b);
  b.put = async (key: string, body: Readable, size: number, meta, signal?: AbortSignal) => {
    if (!armed) return put(key, body, size, meta, signal);
    armed = false;
    let got = 0;
    for await (const c of body) {
      got += (c as Buffer).length;
      if (got >= bytes) break;
    }
    throw new BackendError(b.name, 'Unavailable', `connection reset after ${got} bytes`);
  };
  return { arm: () => (armed = true) };
}

describe('replicated writes (fan-out, quorum, zones)', () => {
  let f: CoreFixture;
  const faulty = new Map<string, FaultyBackend>();
  let store: CoreObjectStore;
  let quorum1: CoreObjectStore;

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
    store = new CoreObjectStore({ ...f.deps, replicas: 2 }, new DbTenantDirectory(f.db));
    quorum1 = new CoreObjectStore({ ...f.deps, replicas: 2, writeQuorum: 1 }, new DbTenantDirectory(f.db));
  });
  after(async () => {
    for (const fb of faulty.values()) fb.reset();
    await f.drain();
    await f.close();
  });

  async function copiesOf(key: string): Promise<{ backend: string; state: string }[]> {
    const { rows } = await f.db.query<{ backend: string; state: string }>(
      `SELECT c.backend, c.state FROM object_copies c JOIN object_versions v USING (version_id)
       WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live' ORDER BY c.backend`,
      [key],
    );
    return rows;
  }

  async function repairsQueued(): Promise<number> {
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'repair-version'`);
    return rows[0]!.n;
  }

  test('a version gets two copies on distinct backends in distinct zones, each byte-exact', async () => {
    const data = randomBytes(600 * 1024);
    const v = await store.putObject(putInput('data', 'two', data));
    assert.equal(v.etag, md5(data));
    const copies = await copiesOf('two');
    assert.deepEqual(copies.map((c) => c.backend), ['a1', 'b1'], 'pack order, but the second copy goes to the other zone');
    assert.ok(copies.every((c) => c.state === 'live'));
    for (const name of ['a1', 'b1']) {
      const { rows } = await f.db.query<{ physical_key: string }>(
        `SELECT physical_key FROM object_copies WHERE version_id = $1 AND backend = $2`,
        [v.versionId, name],
      );
      const body = await readAll(await f.registry.get(name)!.get(rows[0]!.physical_key));
      assert.equal(md5(body), md5(data), `copy on ${name}`);
    }
    const got = await store.getObject('data', 'two');
    assert.equal(md5(await readAll(got.body)), md5(data));
    assert.equal(await repairsQueued(), 0);
  });

  test('a destination that fails before its first byte is replaced by the next backend', async () => {
    faulty.get('b1')!.failNext('put');
    const data = randomBytes(100 * 1024);
    await store.putObject(putInput('data', 'replaced', data));
    assert.deepEqual((await copiesOf('replaced')).map((c) => c.backend), ['a1', 'a2']);
    assert.equal(md5(await readAll((await store.getObject('data', 'replaced')).body)), md5(data));
  });

  test('a dropped kept-alive connection is retried once on the same backend (no replacement)', async () => {
    faulty.get('b1')!.failNext('put', () => new BackendError('b1', 'Unavailable', 'put x: socket hang up'));
    const data = randomBytes(100 * 1024);
    await store.putObject(putInput('data', 'reset-once', data));
    assert.deepEqual((await copiesOf('reset-once')).map((c) => c.backend), ['a1', 'b1']);
    assert.equal(md5(await readAll((await store.getObject('data', 'reset-once')).body)), md5(data));
  });

  test('a destination failing mid-stream past the replay window: quorum 2 refuses, nothing is left', async () => {
    const mid = failMidStream(faulty.get('b1')!, 400 * 1024);
    mid.arm();
    await assert.rejects(store.putObject(putInput('data', 'mid', randomBytes(1024 * 1024))), rejectsWith('ServiceUnavailable'));
    await assert.rejects(store.headObject('data', 'mid'), rejectsWith('NoSuchKey'));
    const { rows } = await f.db.query(`SELECT 1 FROM object_versions WHERE bucket = 'data' AND key = 'mid'`);
    assert.equal(rows.length, 0, 'no pending or live row remains');
  });

  test('with write_quorum 1 the write is acknowledged on one copy and the missing one is queued for repair', async () => {
    const mid = failMidStream(faulty.get('b1')!, 400 * 1024);
    mid.arm();
    const data = randomBytes(1024 * 1024);
    const v = await quorum1.putObject(putInput('data', 'q1', data));
    assert.equal(v.etag, md5(data));
    assert.deepEqual((await copiesOf('q1')).map((c) => c.backend), ['a1']);
    const { rows } = await f.db.query<{ payload: { versionId: string } }>(`SELECT payload FROM tasks WHERE kind = 'repair-version'`);
    assert.ok(rows.some((r) => r.payload.versionId === v.versionId), 'a repair task names the version');
    assert.equal(md5(await readAll((await store.getObject('data', 'q1')).body)), md5(data));
  });

  test('all destinations failing: the write fails and leaves nothing', async () => {
    for (const n of ['a1', 'a2', 'b1']) faulty.get(n)!.failNext('put', undefined, 5);
    await assert.rejects(store.putObject(putInput('data', 'none', 'x'.repeat(1000))), rejectsWith('ServiceUnavailable'));
    for (const n of ['a1', 'a2', 'b1']) faulty.get(n)!.reset();
    await assert.rejects(store.headObject('data', 'none'), rejectsWith('NoSuchKey'));
  });

  test('a read fails over to the other copy when the first copy cannot be read', async () => {
    const data = randomBytes(50 * 1024);
    await store.putObject(putInput('data', 'read-over', data));
    faulty.get('a1')!.failNext('get', undefined, 3);
    faulty.get('b1')!.failNext('get', undefined, 3);
    faulty.get('a2')!.failNext('get', undefined, 3);
    const copies = (await copiesOf('read-over')).map((c) => c.backend);
    assert.equal(copies.length, 2);
    // Only one of the two copies fails now.
    faulty.get(copies[1]!)!.reset();
    assert.equal(md5(await readAll((await store.getObject('data', 'read-over')).body)), md5(data));
    for (const fb of faulty.values()) fb.reset();
  });

  test('a copy that is gone or shorter is marked bad and repair queued, while the read is served by the other', async () => {
    for (const [key, damage] of [
      ['gone', 'delete'],
      ['short', 'truncate'],
    ] as const) {
      const data = randomBytes(300 * 1024);
      const v = await store.putObject(putInput('data', key, data));
      const { rows } = await f.db.query<{ physical_key: string }>(
        `SELECT physical_key FROM object_copies WHERE version_id = $1 AND backend = 'a1'`,
        [v.versionId],
      );
      const file = path.join(f.dir, 'a1', rows[0]!.physical_key);
      if (damage === 'delete') await f.registry.get('a1')!.delete(rows[0]!.physical_key);
      else await truncate(file, 1000);
      assert.equal(md5(await readAll((await store.getObject('data', key)).body)), md5(data), `${key}: served whole`);
      for (let i = 0; i < 50; i++) {
        const bad = await f.db.query(`SELECT 1 FROM object_copies WHERE version_id = $1 AND backend = 'a1' AND state = 'bad'`, [v.versionId]);
        if (bad.rows.length) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const { rows: st } = await f.db.query<{ state: string; bad_reason: string | null }>(
        `SELECT state, bad_reason FROM object_copies WHERE version_id = $1 ORDER BY backend`,
        [v.versionId],
      );
      assert.deepEqual(st.map((r) => r.state), ['bad', 'live'], `${key}: the damaged copy is bad`);
      const { rows: t } = await f.db.query(`SELECT 1 FROM tasks WHERE kind = 'repair-version' AND payload->>'versionId' = $1`, [v.versionId]);
      assert.equal(t.length, 1, `${key}: repair queued`);
      // Later reads never try the bad copy.
      faulty.get('a1')!.failNext('get', () => new Error('the bad copy was read'), 5);
      assert.equal(md5(await readAll((await store.getObject('data', key)).body)), md5(data));
      faulty.get('a1')!.reset();
    }
  });

  test('507 and nothing written when fewer backends than the quorum have room', async () => {
    await f.db.query(`UPDATE backends SET quota_bytes = used_bytes + reserved_bytes + 10 WHERE name IN ('a2', 'b1')`);
    try {
      await assert.rejects(store.putObject(putInput('data', 'full', randomBytes(1000))), rejectsWith('InsufficientStorage'));
      await assert.rejects(store.headObject('data', 'full'), rejectsWith('NoSuchKey'));
      // Quorum 1 still takes it, on the one backend with room, and queues the missing copy.
      await quorum1.putObject(putInput('data', 'full', randomBytes(1000)));
      assert.deepEqual((await copiesOf('full')).map((c) => c.backend), ['a1']);
    } finally {
      await f.db.query(`UPDATE backends SET quota_bytes = 0`);
    }
  });
});
