/**
 * copy-version on a real PostgreSQL over fs and s3rver backends: adding a copy, moving one, and a crash or
 * a lost lease at every step — the version always keeps a good live copy (old or new, never neither), a
 * retry reuses its pending copy instead of reserving twice, and the quota ledger stays exact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { deleteCopyHandler } from '../../../src/core/copies.js';
import { CoreMultipartStore, MIN_PART_SIZE } from '../../../src/core/multipart.js';
import { copyVersionHandler, enqueueAddCopy, enqueueMove, type ReplicationDeps } from '../../../src/core/replicate.js';
import { LEASE_MS, runTaskBatch, type TaskHandler } from '../../../src/core/tasks.js';
import { Bandwidth } from '../../../src/core/verify.js';
import type { Db } from '../../../src/meta/db.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { faultyBackend, type FaultyBackend } from '../../harness/faults-backend.js';
import { faultyDb } from '../../harness/faults-db.js';
import { assertLedger } from '../../harness/ledger.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

interface CopyRow {
  backend: string;
  state: string;
  physical_key: string;
  task_id: number | null;
}

describe('copy-version', () => {
  let s3: S3rverInstance;
  let f: CoreFixture;
  const faulty = new Map<string, FaultyBackend>();
  before(async () => {
    s3 = await startS3rver();
    f = await coreFixture(
      'postgres',
      (dir) => [
        { type: 'fs', name: 'fs-a', path: path.join(dir, 'a'), quotaBytes: 0 },
        { type: 'fs', name: 'fs-b', path: path.join(dir, 'b'), quotaBytes: 0 },
        s3BackendConfig(s3, 's3-c', { quotaBytes: 0 }),
      ],
      'pack',
      {
        wrap: (b) => {
          const w = faultyBackend(b);
          faulty.set(b.name, w);
          return w;
        },
      },
    );
  });
  after(async () => {
    await f.close();
    await s3.stop();
  });

  const rdeps = (db: Db = f.db): ReplicationDeps => ({
    db,
    backends: f.registry,
    log: f.deps.log,
    clock: f.clock,
    replicas: 1,
    strategy: 'pack',
    cleanupDelayMs: 0,
    bandwidth: new Bandwidth(0),
    stallMs: 5_000,
  });
  const handlers = (db: Db = f.db): TaskHandler[] => [copyVersionHandler(rdeps(db)), deleteCopyHandler(f.db, f.registry, f.deps.log)];
  const runOnce = (owner = 'w1', db: Db = f.db) => runTaskBatch({ db, log: f.deps.log, clock: f.clock, owner }, handlers(db), 16);
  const runAll = async (db: Db = f.db) => {
    while ((await runOnce('w1', db)) > 0) {
      // until nothing is due
    }
  };
  const copiesOf = async (versionId: string) =>
    (
      await f.db.query<CopyRow>(`SELECT backend, state, physical_key, task_id FROM object_copies WHERE version_id = $1 ORDER BY backend`, [
        versionId,
      ])
    ).rows;
  const readFrom = async (backend: string, key: string) => readAll(await f.registry.get(backend)!.get(key));
  const put = (key: string, body: string) => f.store.putObject(putInput('data', key, body));

  test('adds a copy on another backend: streamed, verified, published live with its own key; ledger exact', async () => {
    const v = await put('add/one', 'hello replication');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    const copies = await copiesOf(v.versionId);
    assert.deepEqual(
      copies.map((c) => [c.backend, c.state, c.task_id]),
      [
        ['fs-a', 'live', null],
        ['fs-b', 'live', null],
      ],
    );
    const added = copies.find((c) => c.backend === 'fs-b')!;
    assert.match(added.physical_key, /^data\/[0-9a-f]{2}\/[0-9a-f]{30}\/[0-9a-f]{32}\.[0-9a-f]{6}$/);
    assert.equal((await readFrom('fs-b', added.physical_key)).toString(), 'hello replication');
    assert.equal((await f.backendRow('fs-b')).object_count, 1);
    await assertLedger(f.db, 'after add');
  });

  test('moves a copy: the new one is live before the old one is retired through the outbox', async () => {
    const v = await put('move/one', 'move me');
    const old = (await copiesOf(v.versionId))[0]!;
    await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: 'fs-a', to: 's3-c' }, f.clock));
    const dup = await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: 'fs-a' }, f.clock));
    assert.equal(dup, undefined, 'one move per version and source');
    await runAll();
    const copies = await copiesOf(v.versionId);
    assert.deepEqual(copies.map((c) => [c.backend, c.state]), [['s3-c', 'live']]);
    assert.equal(await f.registry.get('fs-a')!.head(old.physical_key), null, 'the old copy was deleted');
    assert.equal((await f.store.getObject('data', 'move/one').then((g) => readAll(g.body))).toString(), 'move me');
    await assertLedger(f.db, 'after move');
  });

  test('a failed transfer keeps its pending copy; the retry reuses it (one reservation), then publishes', async () => {
    const v = await put('retry/one', 'retry body');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    // The source fails (the only copy cannot be read): the destination is not to blame.
    faulty.get('fs-a')!.failNext('get');
    assert.equal(await runOnce(), 1);
    const pending = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-b')!;
    assert.equal(pending.state, 'pending');
    assert.ok(pending.task_id);
    assert.equal((await f.backendRow('fs-b')).reserved_bytes, 'retry body'.length);
    await assertLedger(f.db, 'pending copy');
    f.clock.advance(2_000);
    assert.equal(await runOnce(), 1);
    const after = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-b')!;
    assert.equal(after.state, 'live');
    assert.equal(after.physical_key, pending.physical_key, 'the same key, not a second reservation');
    assert.equal((await f.backendRow('fs-b')).reserved_bytes, 0);
    await assertLedger(f.db, 'after retry');
  });

  test('a destination that fails is given up for another backend on the next attempt; its pending copy dropped', async () => {
    const v = await put('dest/one', 'destination fails');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    faulty.get('fs-b')!.failNext('put');
    assert.equal(await runOnce(), 1);
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'pending'],
      ],
    );
    f.clock.advance(2_000);
    await runAll();
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['s3-c', 'live'],
      ],
    );
    assert.equal((await f.backendRow('fs-b')).reserved_bytes, 0);
    await assertLedger(f.db, 'after choosing another destination');
  });

  test('a corrupt source (same length) never becomes a copy: the ETag check fails and the next attempt reads another copy', async () => {
    const v = await put('verify/one', 'abcdefgh');
    // Two good copies first (fs-a and fs-b), then corrupt fs-a on disk.
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    const a = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-a')!;
    await writeFile(path.join(f.dir, 'a', a.physical_key), 'abcdefgX');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    assert.equal(await runOnce(), 1, 'first attempt reads fs-a (corrupt) and fails verification');
    const c = (await copiesOf(v.versionId)).find((x) => x.backend === 's3-c')!;
    assert.equal(c.state, 'pending');
    const { rows } = await f.db.query<{ last_error: string }>(`SELECT last_error FROM tasks WHERE kind = 'copy-version'`);
    assert.match(rows[0]!.last_error, /does not verify: ETag/);
    f.clock.advance(2_000);
    assert.equal(await runOnce(), 1);
    const done = (await copiesOf(v.versionId)).find((x) => x.backend === 's3-c')!;
    assert.equal(done.state, 'live');
    assert.equal((await readFrom('s3-c', done.physical_key)).toString(), 'abcdefgh');
    // Restore fs-a so later checks of the store read good bytes.
    await writeFile(path.join(f.dir, 'a', a.physical_key), 'abcdefgh');
    await assertLedger(f.db, 'after verification failure');
  });

  test('a lease lost during the transfer: the second claim publishes, the first one changes nothing', async () => {
    const v = await put('lease/one', 'leased bytes');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    const gate = faulty.get('fs-b')!.block('put');
    const first = runOnce('w1');
    await gate.reached;
    f.clock.advance(LEASE_MS + 1_000);
    faulty.get('fs-b')!.reset();
    assert.equal(await runOnce('w2'), 1, 'the expired claim is taken over');
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'live'],
      ],
    );
    gate.release();
    await first;
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'live'],
      ],
    );
    assert.equal((await f.backendRow('fs-b')).reserved_bytes, 0);
    await assertLedger(f.db, 'after lease loss');
  });

  test('a version overwritten while its copy streams: the pending copy is dropped with its version, late bytes deleted', async () => {
    const v = await put('race/one', 'old bytes');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    const gate = faulty.get('fs-b')!.block('put');
    const running = runOnce('w1');
    await gate.reached;
    await put('race/one', 'new bytes!');
    await assertLedger(f.db, 'overwritten while copying');
    gate.release();
    await running;
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM object_copies WHERE version_id = $1`, [v.versionId]);
    assert.equal(rows[0]!.n, 0);
    await runAll();
    await assertLedger(f.db, 'after the race');
    assert.equal((await f.store.getObject('data', 'race/one').then((g) => readAll(g.body))).toString(), 'new bytes!');
  });

  test('a lost COMMIT reply when publishing: the copy is live exactly once', async () => {
    const v = await put('commit/one', 'commit body');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    const fdb = faultyDb(f.db);
    fdb.loseCommitReply({ match: /SET state = 'live', task_id = NULL/ });
    assert.equal(await runOnce('w1', fdb), 1);
    assert.equal(fdb.injected.commits, 1);
    f.clock.advance(LEASE_MS + 2_000);
    await runAll();
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'live'],
      ],
    );
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'copy-version'`);
    assert.equal(rows[0]!.n, 0);
    await assertLedger(f.db, 'after lost commit reply');
  });

  test('a move whose completing transaction fails after publishing rolls back whole: the old copy stays live until the retry', async () => {
    const v = await put('move/crash', 'move crash body');
    await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: 'fs-a', to: 'fs-b' }, f.clock));
    const fdb = faultyDb(f.db);
    // The retirement of the source runs after the publication, in the same transaction: make it fail.
    fdb.failNext({ match: /DELETE FROM object_copies WHERE version_id = \$1 AND backend = ANY/ });
    assert.equal(await runOnce('w1', fdb), 1);
    assert.equal(fdb.injected.statements, 1);
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'pending'],
      ],
    );
    assert.equal((await f.store.getObject('data', 'move/crash').then((g) => readAll(g.body))).toString(), 'move crash body');
    await assertLedger(f.db, 'after the failed completion');
    f.clock.advance(2_000);
    await runAll();
    assert.deepEqual((await copiesOf(v.versionId)).map((c) => [c.backend, c.state]), [['fs-b', 'live']]);
    await assertLedger(f.db, 'after the retried move');
  });

  test('a failure in the preparing transaction leaves nothing behind', async () => {
    const v = await put('prep/one', 'prep body');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    const fdb = faultyDb(f.db);
    fdb.failNext({ match: /INSERT INTO object_copies/ });
    assert.equal(await runOnce('w1', fdb), 1);
    assert.deepEqual((await copiesOf(v.versionId)).map((c) => c.backend), ['fs-a']);
    await assertLedger(f.db, 'after failed prepare');
    f.clock.advance(2_000);
    await runAll();
    assert.deepEqual((await copiesOf(v.versionId)).map((c) => c.backend), ['fs-a', 'fs-b']);
  });

  test('a move whose destination already holds the version only retires the source', async () => {
    const v = await put('present/one', 'present');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: 'fs-a', to: 'fs-b' }, f.clock));
    await runAll();
    assert.deepEqual((await copiesOf(v.versionId)).map((c) => [c.backend, c.state]), [['fs-b', 'live']]);
    await assertLedger(f.db, 'after present move');
  });

  test('a multipart object is copied and verified against its multipart ETag (part sizes), then a corrupted part is refused', async () => {
    const mp = new CoreMultipartStore(f.deps, f.store);
    const parts = [Buffer.alloc(MIN_PART_SIZE, 'p'), Buffer.alloc(1000, 'q')];
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mp/one', headers: {}, userMeta: {} });
    const done = [];
    for (const [i, data] of parts.entries()) {
      done.push(
        await mp.uploadPart({
          bucket: 'data',
          key: 'mp/one',
          uploadId: up.uploadId,
          partNumber: i + 1,
          size: data.length,
          body: Readable.from([data]),
          digests: () => ({ md5: createHash('md5').update(data).digest('hex') }),
        }),
      );
    }
    const v = await mp.completeMultipartUpload({
      bucket: 'data',
      key: 'mp/one',
      uploadId: up.uploadId,
      parts: done.map((p) => ({ partNumber: p.partNumber, etag: `"${p.etag}"` })),
    });
    assert.match(v.etag, /-2$/);
    const [src] = await copiesOf(v.versionId);
    await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: src!.backend, to: 's3-c' }, f.clock));
    // The first attempt reads a copy whose second part was changed on disk (same length): refused.
    const file = path.join(f.dir, src!.backend === 'fs-a' ? 'a' : 'b', src!.physical_key);
    const original = await readFile(file);
    const rotten = Buffer.from(original);
    rotten[MIN_PART_SIZE + 10] ^= 0xff;
    await writeFile(file, rotten);
    assert.equal(await runOnce(), 1);
    const { rows } = await f.db.query<{ last_error: string }>(`SELECT last_error FROM tasks WHERE kind = 'copy-version'`);
    assert.match(rows[0]!.last_error, /does not verify: ETag [0-9a-f]{32}-2, expected/);
    await writeFile(file, original);
    f.clock.advance(2_000);
    await runAll();
    const after = await copiesOf(v.versionId);
    assert.deepEqual(after.map((c) => [c.backend, c.state]), [['s3-c', 'live']]);
    const got = await readAll((await f.store.getObject('data', 'mp/one')).body);
    assert.ok(got.equals(Buffer.concat(parts)));
    await assertLedger(f.db, 'after the multipart move');
  });

  test('copy-version streams at the bandwidth limit (workers.repair_bandwidth)', async () => {
    const body = Buffer.alloc(300_000, 'z');
    const v = await f.store.putObject(putInput('data', 'slow/one', body));
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    const limited: ReplicationDeps = { ...rdeps(), bandwidth: new Bandwidth(100_000) };
    const started = Date.now();
    assert.equal(await runTaskBatch({ db: f.db, log: f.deps.log, clock: f.clock, owner: 'w1' }, [copyVersionHandler(limited)], 1), 1);
    const ms = Date.now() - started;
    // 300 kB at 100 kB/s after a one-second (100 kB) burst: about two seconds.
    assert.ok(ms >= 1_800, `took ${ms} ms`);
    assert.deepEqual(
      (await copiesOf(v.versionId)).map((c) => [c.backend, c.state]),
      [
        ['fs-a', 'live'],
        ['fs-b', 'live'],
      ],
    );
  });

  test('a move of a copy the version does not need (enough good copies elsewhere) only retires it', async () => {
    const v = await put('surplus/one', 'surplus');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    // replicas 1, two good copies: moving fs-a's copy away needs no new copy.
    await f.db.tx((q) => enqueueMove(q, { versionId: v.versionId, from: 'fs-a' }, f.clock));
    await runAll();
    assert.deepEqual((await copiesOf(v.versionId)).map((c) => [c.backend, c.state]), [['fs-b', 'live']]);
    await assertLedger(f.db, 'after a surplus move');
  });

  test('a copy of a deleted version finishes without doing anything', async () => {
    const v = await put('gone/one', 'gone');
    await f.store.deleteObject('data', 'gone/one');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'copy-version'`);
    assert.equal(rows[0]!.n, 0);
    await assertLedger(f.db, 'after gone');
  });
});
