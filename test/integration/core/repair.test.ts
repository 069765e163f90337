/**
 * Repair, replica convergence and scrub on a real PostgreSQL over fs and s3rver backends: raising a
 * bucket's replica count converges every version; lowering it retires the surplus (bad copies and copies on
 * draining backends first, never the last good copy); a copy deleted from a backend or corrupted on disk
 * (same length) is found by scrub, marked bad and replaced; the quota ledger stays exact throughout.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { deleteCopyHandler, markCopyBad } from '../../../src/core/copies.js';
import { convergeChangedBuckets, convergeReplicasHandler, enqueueReplicaConvergence, repairVersionHandler } from '../../../src/core/repair.js';
import { copyVersionHandler, enqueueAddCopy, type ReplicationDeps } from '../../../src/core/replicate.js';
import { deepScrubHandler, ensureScrubTasks, scrubHandler, type ScrubSettings } from '../../../src/core/scrub.js';
import { runTaskBatch, type TaskHandler } from '../../../src/core/tasks.js';
import { Bandwidth } from '../../../src/core/verify.js';
import { createMetrics } from '../../../src/metrics.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { assertLedger } from '../../harness/ledger.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

interface CopyRow {
  backend: string;
  state: string;
  physical_key: string;
  bad_reason: string | null;
}

describe('repair, convergence and scrub', () => {
  let s3: S3rverInstance;
  let f: CoreFixture;
  const metrics = createMetrics();
  before(async () => {
    s3 = await startS3rver();
    f = await coreFixture('postgres', (dir) => [
      { type: 'fs', name: 'fs-a', path: path.join(dir, 'a'), quotaBytes: 0 },
      { type: 'fs', name: 'fs-b', path: path.join(dir, 'b'), quotaBytes: 0 },
      s3BackendConfig(s3, 's3-c', { quotaBytes: 0 }),
    ]);
  });
  after(async () => {
    await f.close();
    await s3.stop();
  });
  beforeEach(async () => {
    // Each test starts from an empty bucket on the default replica count and active backends.
    await runAll();
    for (const { key } of (await f.db.query<{ key: string }>(`SELECT key FROM object_versions WHERE bucket = 'data'`)).rows) {
      await f.store.deleteObject('data', key);
    }
    await f.db.query(`UPDATE buckets SET replicas = NULL`);
    await f.db.query(`UPDATE backends SET state = 'active'`);
    await runAll();
  });

  const rdeps: ReplicationDeps = {
    get db() {
      return f.db;
    },
    get backends() {
      return f.registry;
    },
    get log() {
      return f.deps.log;
    },
    get clock() {
      return f.clock;
    },
    metrics,
    replicas: 1,
    strategy: 'pack',
    cleanupDelayMs: 0,
    bandwidth: new Bandwidth(0),
    stallMs: 5_000,
  };
  const scrub: ScrubSettings = { intervalMs: 1_000, rate: 1_000, deepIntervalMs: 3_600_000, bandwidth: new Bandwidth(0) };
  /** Everything but the scrub passes (they re-queue themselves): run until nothing is due. */
  const repairHandlers = (): TaskHandler[] => [
    copyVersionHandler(rdeps),
    repairVersionHandler(rdeps),
    convergeReplicasHandler(rdeps, 2),
    deleteCopyHandler(f.db, f.registry, f.deps.log),
  ];
  const queue = () => ({ db: f.db, log: f.deps.log, clock: f.clock, owner: 'test', metrics });
  async function runAll(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await runTaskBatch(queue(), repairHandlers(), 32)) === 0) return;
    }
    throw new Error('the queue did not settle');
  }
  const runScrub = (kind: 'scrub' | 'scrub-deep') =>
    runTaskBatch(queue(), [kind === 'scrub' ? scrubHandler(rdeps, scrub) : deepScrubHandler(rdeps, scrub)], 1);
  const copiesOf = async (versionId: string) =>
    (
      await f.db.query<CopyRow>(`SELECT backend, state, physical_key, bad_reason FROM object_copies WHERE version_id = $1 ORDER BY backend`, [
        versionId,
      ])
    ).rows;
  const states = async (versionId: string) => (await copiesOf(versionId)).map((c) => `${c.backend}:${c.state}`);
  const put = (key: string, body: string) => f.store.putObject(putInput('data', key, body));
  const setReplicas = (n: number | null) => f.db.query(`UPDATE buckets SET replicas = $1 WHERE name = 'data'`, [n]);
  const fsPath = (backend: string, key: string) => path.join(f.dir, backend === 'fs-a' ? 'a' : 'b', key);

  test('raising a bucket replica count converges every version to that many copies on distinct backends', async () => {
    const vs = [await put('up/1', 'one'), await put('up/2', 'two'), await put('up/3', 'three'), await put('up/4', 'four!'), await put('up/5', '5')];
    await setReplicas(3);
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    for (const v of vs) assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:live', 's3-c:live']);
    for (const v of vs) {
      const { body } = await f.store.getObject('data', v.key);
      assert.equal((await readAll(body)).length, v.size);
    }
    await assertLedger(f.db, 'after raising');
  });

  test('lowering it retires the surplus through the outbox, keeping the preferred copies', async () => {
    const v = await put('down/1', 'down body');
    await setReplicas(3);
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    assert.equal((await copiesOf(v.versionId)).length, 3);
    // A draining backend's copy goes first, whatever the placement order says.
    await f.db.query(`UPDATE backends SET state = 'draining' WHERE name = 'fs-a'`);
    await setReplicas(2);
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-b:live', 's3-c:live']);
    await setReplicas(1);
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-b:live']);
    await assertLedger(f.db, 'after lowering');
  });

  test('the last good copy is never retired: with replicas 1, a bad copy goes and the good one stays', async () => {
    await setReplicas(2);
    const v = await put('last/1', 'last good');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:live']);
    await setReplicas(1);
    await f.db.tx((q) => markCopyBad(q, v.versionId, 'fs-a', 'test: corrupt'));
    await assertLedger(f.db, 'a bad copy is still counted');
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-b:live']);
    await assertLedger(f.db, 'after retiring the bad copy');
  });

  test('overwriting or deleting a version with a bad copy releases that copy like a live one', async () => {
    await setReplicas(2);
    const v = await put('badgone/1', 'first');
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    await f.db.tx((q) => markCopyBad(q, v.versionId, 'fs-b', 'test'));
    await put('badgone/1', 'second');
    await assertLedger(f.db, 'after the overwrite');
    await runAll();
    const w = await f.store.headObject('data', 'badgone/1');
    const first = (await copiesOf(w.versionId))[0]!.backend;
    await f.db.tx((q) => markCopyBad(q, w.versionId, first, 'test'));
    await f.store.deleteObject('data', 'badgone/1');
    await runAll();
    await assertLedger(f.db, 'after the delete');
  });

  test('a version whose only copy is bad and does not verify keeps it; one that verifies again is restored', async () => {
    const v = await put('only/1', 'only copy');
    const [a] = await copiesOf(v.versionId);
    await writeFile(fsPath('fs-a', a!.physical_key), 'only cXpy');
    await f.db.tx((q) => markCopyBad(q, v.versionId, 'fs-a', 'test: corrupt'));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:bad'], 'nothing deleted, nothing to copy from');
    // The bytes come back (the failure was transient): the next repair restores the copy.
    await writeFile(fsPath('fs-a', a!.physical_key), 'only copy');
    const { enqueueRepair } = await import('../../../src/core/replicate.js');
    await f.db.tx((q) => enqueueRepair(q, v.versionId, 'test', f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:live']);
    assert.equal((await readAll((await f.store.getObject('data', 'only/1')).body)).toString(), 'only copy');
    await assertLedger(f.db, 'after restore');
  });

  test('a copy deleted from a backend: the cheap scrub marks it bad and repair restores two copies', async () => {
    await setReplicas(2);
    const v = await put('lost/1', 'lost body');
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:live']);
    const b = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-b')!;
    await rm(fsPath('fs-b', b.physical_key));
    await f.db.tx((q) => ensureScrubTasks(q, scrub, f.clock));
    f.clock.advance(scrub.intervalMs + 1_000);
    assert.equal(await runScrub('scrub'), 1);
    const marked = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-b')!;
    assert.equal(marked.state, 'bad');
    assert.match(marked.bad_reason!, /missing/);
    await runAll();
    const after = await copiesOf(v.versionId);
    assert.deepEqual(
      after.map((c) => `${c.backend}:${c.state}`),
      ['fs-a:live', 's3-c:live'],
      'a new copy on the next eligible backend; the bad one retired',
    );
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM object_copies WHERE verified_at IS NOT NULL AND version_id = $1`, [
      v.versionId,
    ]);
    assert.equal(rows[0]!.n, 2);
    await assertLedger(f.db, 'after cheap scrub repair');
    assert.match(await metrics.registry.getSingleMetricAsString('s3o_scrub_checked_total'), /pass="cheap",outcome="bad"} 1/);
  });

  test('a copy corrupted on disk (same length): the deep scrub finds it and repair replaces it', async () => {
    await setReplicas(2);
    const v = await put('rot/1', 'bit rot happens');
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    await runAll();
    const a = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-a')!;
    await writeFile(fsPath('fs-a', a.physical_key), 'bit rot hAppens');
    // The cheap pass sees the right size and finds nothing.
    await f.db.tx((q) => ensureScrubTasks(q, scrub, f.clock));
    f.clock.advance(scrub.intervalMs + 1_000);
    await runScrub('scrub');
    assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:live']);
    // The deep pass starts one deep interval after it was first queued, walks every copy (one page of 16
    // per run) and re-reads it.
    f.clock.advance(scrub.deepIntervalMs);
    for (let i = 0; i < 10 && (await runScrub('scrub-deep')) > 0; i++) {
      // until the pass ends (it re-queues itself an hour later)
    }
    const bad = (await copiesOf(v.versionId)).find((c) => c.backend === 'fs-a')!;
    assert.equal(bad.state, 'bad');
    assert.match(bad.bad_reason!, /ETag/);
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-b:live', 's3-c:live']);
    const c = (await copiesOf(v.versionId)).find((x) => x.backend === 's3-c')!;
    assert.equal((await readAll(await f.registry.get('s3-c')!.get(c.physical_key))).toString(), 'bit rot happens');
    await assertLedger(f.db, 'after deep scrub repair');
  });

  test('the cheap scrub also queues repair for a version below its replica count (a copy task that died)', async () => {
    const v = await put('under/1', 'under-replicated');
    await setReplicas(2);
    // Nobody converged: only the scrub notices.
    await f.db.tx((q) => ensureScrubTasks(q, scrub, f.clock));
    f.clock.advance(scrub.intervalMs + 1_000);
    await runScrub('scrub');
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'repair-version' AND payload->>'versionId' = $1`, [
      v.versionId,
    ]);
    assert.equal(rows[0]!.n, 1);
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:live']);
    await assertLedger(f.db, 'after scrub-driven repair');
  });

  test('a pending copy whose task died is dropped by repair; its reservation settled and its bytes deleted', async () => {
    const v = await put('orphan/1', 'orphan');
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    // The copy task reserves and writes, then dies before publishing.
    const failing: TaskHandler = {
      kind: 'copy-version',
      run: async (t, ctx) => {
        await copyVersionHandler(rdeps).run(t, ctx);
        throw new Error('crashed before publishing');
      },
    };
    await runTaskBatch(queue(), [failing], 1);
    assert.deepEqual(await states(v.versionId), ['fs-a:live', 'fs-b:pending']);
    await f.db.query(`UPDATE tasks SET state = 'dead' WHERE kind = 'copy-version'`);
    await assertLedger(f.db, 'orphan pending copy');
    const { enqueueRepair } = await import('../../../src/core/replicate.js');
    await f.db.tx((q) => enqueueRepair(q, v.versionId, 'test', f.clock));
    await runAll();
    assert.deepEqual(await states(v.versionId), ['fs-a:live']);
    assert.equal((await f.backendRow('fs-b')).reserved_bytes, 0);
    await f.db.query(`DELETE FROM tasks WHERE kind = 'copy-version' AND state = 'dead'`);
    await assertLedger(f.db, 'after dropping the orphan');
  });

  test('convergence pages through the bucket and restarts when the count changes during the walk', async () => {
    for (let i = 0; i < 5; i++) await put(`walk/${i}`, `walk ${i}`);
    await setReplicas(2);
    await f.db.tx((q) => enqueueReplicaConvergence(q, 'data', f.clock));
    // One page (2 versions) per run; change the count after the first page.
    await runTaskBatch(queue(), [convergeReplicasHandler(rdeps, 2)], 1);
    await setReplicas(3);
    await runAll();
    const { rows } = await f.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM object_copies c JOIN object_versions v USING (version_id) WHERE v.bucket = 'data' AND c.state = 'live'`,
    );
    assert.equal(rows[0]!.n, 15);
    await assertLedger(f.db, 'after the restarted walk');
  });

  test('scrub is one task across instances: concurrent workers never check the same copies twice', async () => {
    for (let i = 0; i < 6; i++) await put(`coord/${i}`, `coordinated ${i}`);
    await f.db.query(`DELETE FROM tasks WHERE kind IN ('scrub', 'scrub-deep')`);
    // Every instance queues the singletons at start; only one of each exists.
    await Promise.all([1, 2, 3].map(() => f.db.tx((q) => ensureScrubTasks(q, scrub, f.clock))));
    const { rows } = await f.db.query<{ kind: string; n: number }>(
      `SELECT kind, count(*)::int AS n FROM tasks WHERE kind IN ('scrub', 'scrub-deep') GROUP BY kind ORDER BY kind`,
    );
    assert.deepEqual(rows, [
      { kind: 'scrub', n: 1 },
      { kind: 'scrub-deep', n: 1 },
    ]);
    f.clock.advance(scrub.intervalMs + 1_000);
    let heads = 0;
    const counting = {
      ...rdeps,
      backends: new Proxy(f.registry, {
        get(target, prop) {
          if (prop !== 'get') return Reflect.get(target, prop, target);
          return (name: string) => {
            const b = target.get(name)!;
            return { ...b, head: (k: string) => (heads++, b.head(k)) };
          };
        },
      }),
    } as ReplicationDeps;
    const claims = await Promise.all(['A', 'B', 'C'].map((owner) => runTaskBatch({ ...queue(), owner }, [scrubHandler(counting, scrub)], 4)));
    assert.deepEqual(claims.sort(), [0, 0, 1], 'one claim of the one scrub task');
    const { rows: live } = await f.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM object_copies WHERE state = 'live'`);
    assert.equal(heads, live[0]!.n, 'each live copy checked once');
    await f.db.query(`DELETE FROM tasks WHERE kind IN ('scrub', 'scrub-deep')`);
  });

  test('a change of the wanted count is noticed from the database (settings), once', async () => {
    await put('cfg/1', 'cfg');
    const first = await convergeChangedBuckets({ db: f.db, replicas: 2, clock: f.clock });
    assert.ok(first.includes('data'));
    assert.deepEqual(await convergeChangedBuckets({ db: f.db, replicas: 2, clock: f.clock }), []);
    await runAll();
    const v = await f.store.headObject('data', 'cfg/1');
    assert.equal((await copiesOf(v.versionId)).length, 1, 'the handler here converges to its own replicas (1)');
    assert.deepEqual(await convergeChangedBuckets({ db: f.db, replicas: 1, clock: f.clock }), ['data', 'other']);
  });
});
