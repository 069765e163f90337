/**
 * Write-path races (issue 7), each made deterministic by the fault-injection seam: a Db that loses a
 * COMMIT reply, a Backend that blocks on cue, and a clock the queue and janitors are judged by.
 * Every fixture closes with the quota ledger and the stray-bytes check (test/harness/core.ts).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../../src/backends/backend.js';
import { BackendRegistry } from '../../../src/core/backends.js';
import { HealthTracker } from '../../../src/core/health.js';
import { deleteCopyHandler } from '../../../src/core/copies.js';
import { CoreError } from '../../../src/core/errors.js';
import { CoreObjectStore } from '../../../src/core/objects.js';
import { abortStaleWrites } from '../../../src/core/sweepers.js';
import { LEASE_MS, runTaskBatch } from '../../../src/core/tasks.js';
import { DbTenantDirectory } from '../../../src/core/tenants.js';
import { createLogger } from '../../../src/log.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { faultyBackend, type FaultyBackend } from '../../harness/faults-backend.js';
import { faultyDb, type FaultyDb } from '../../harness/faults-db.js';
import { assertLedger, assertNoStrayBytes } from '../../harness/ledger.js';

const log = createLogger({}, 'error');

describe('write-path races', () => {
  let f: CoreFixture;
  let fb: FaultyBackend;
  let db: FaultyDb;
  let store: CoreObjectStore;
  before(async () => {
    f = await coreFixture('postgres', (dir) => [{ type: 'fs' as const, name: 'disk', path: path.join(dir, 'disk'), quotaBytes: 0 }], 'pack', {
      wrap: (b) => (fb = faultyBackend(b)),
    });
    db = faultyDb(f.db);
    store = new CoreObjectStore({ ...f.deps, db }, new DbTenantDirectory(db));
  });
  after(async () => {
    db.reset();
    fb.reset();
    await f.drain();
    await f.close();
  });

  test('a PUT whose COMMIT reply is lost is resolved by re-reading: acknowledged, and the key keeps its new value', async () => {
    await store.putObject(putInput('data', 'lost-commit', 'first'));
    db.loseCommitReply({ match: /UPDATE object_versions SET state = 'live'/ });
    const v = await store.putObject(putInput('data', 'lost-commit', 'second'));
    assert.equal(db.injected.commits, 1, 'the fault fired');
    f.clock.advance(60_000);
    await f.drain();
    const got = await store.getObject('data', 'lost-commit');
    assert.equal(got.version.versionId, v.versionId);
    assert.equal((await readAll(got.body)).toString(), 'second');
    await assertLedger(f.db);
  });

  test('a write taken for abandoned while still streaming is fenced: it fails, and its late bytes are removed', async () => {
    const gate = fb.block('put');
    const put = store.putObject(putInput('data', 'stale', 'late bytes'));
    const failed = put.then(
      () => assert.fail('the abandoned write must not be acknowledged'),
      (err: unknown) => err,
    );
    await gate.reached;
    f.clock.advance(f.deps.staleMs + 1_000);
    assert.equal(await abortStaleWrites(f.db, f.deps.staleMs, f.clock), 1, 'the janitor takes the write');
    await f.drain(); // the janitor's deletion runs before the writer's bytes land
    gate.release();
    const err = await failed;
    assert.ok(err instanceof CoreError && err.code === 'ServiceUnavailable', String(err));
    await assert.rejects(store.headObject('data', 'stale'), (e: unknown) => e instanceof CoreError && e.code === 'NoSuchKey');
    await f.drain(); // the writer's own late-bytes deletion
    await assertNoStrayBytes(f.db, f.registry.all());
    await assertLedger(f.db);
  });

  test('a delete-copy task held past its lease completes only for the claim that holds it, and releases its bytes once', async () => {
    await store.putObject(putInput('data', 'twice', 'x'.repeat(1000)));
    await store.deleteObject('data', 'twice');
    const before = await f.backendRow('disk');
    const gateA = fb.block('delete');
    const runA = runTaskBatch({ db: f.db, log, clock: f.clock, owner: 'A' }, [deleteCopyHandler(f.db, f.registry, log)]);
    await gateA.reached;
    f.clock.advance(LEASE_MS + 1_000);
    // Another worker takes the expired lease (over the real backend, with a gate of its own) while A still runs.
    const fbB = faultyBackend(fb.inner);
    const gateB = fbB.block('delete');
    const runB = runTaskBatch({ db: f.db, log, clock: f.clock, owner: 'B' }, [deleteCopyHandler(f.db, new BackendRegistry([fbB]), log)]);
    await gateB.reached;
    gateA.release();
    assert.equal(await runA, 1);
    const mid = await f.backendRow('disk');
    assert.equal(mid.used_bytes, before.used_bytes, 'A lost its lease: its completion applied nothing');
    const { rows } = await f.db.query<{ lease_owner: string }>(`SELECT lease_owner FROM tasks WHERE kind = 'delete-copy'`);
    assert.deepEqual(rows.map((r) => r.lease_owner), ['B'], 'the task is still held by B');
    gateB.release();
    assert.equal(await runB, 1);
    const after = await f.backendRow('disk');
    assert.equal(after.used_bytes, before.used_bytes - 1000, 'released exactly once');
    assert.equal(after.object_count, before.object_count - 1);
    await assertLedger(f.db);
  });
});

describe('placement and live health', () => {
  test('a backend that live health reports unavailable is tried last, so writes go elsewhere without a failed attempt', async () => {
    let health!: HealthTracker;
    const faulty = new Map<string, FaultyBackend>();
    const f = await coreFixture(
      'postgres',
      (dir) => [
        { type: 'fs' as const, name: 'first', path: path.join(dir, 'first'), quotaBytes: 0 },
        { type: 'fs' as const, name: 'second', path: path.join(dir, 'second'), quotaBytes: 0 },
      ],
      'pack',
      {
        wrap: (b) => {
          const fb = faultyBackend(b);
          faulty.set(b.name, fb);
          return fb;
        },
        health: (names) => (health = new HealthTracker(names)),
      },
    );
    try {
      await f.store.putObject(putInput('data', 'a', 'to first'));
      assert.deepEqual((await f.store.locate('data', 'a')).copies.map((c) => c.backend), ['first'], 'pack fills first');
      for (let i = 0; i < 3; i++) health.recordCall('first', new BackendError('first', 'Unavailable', 'connection refused'));
      assert.equal(health.isAvailable('first'), false);
      const calls = faulty.get('first')!.calls;
      const before = calls.put ?? 0;
      assert.equal(before, 1);
      await f.store.putObject(putInput('data', 'b', 'to second'));
      assert.deepEqual((await f.store.locate('data', 'b')).copies.map((c) => c.backend), ['second']);
      assert.equal(calls.put ?? 0, before, 'no attempt on the unavailable backend');
    } finally {
      await f.close();
    }
  });
});
