/**
 * Two orchestrator instances on one PostgreSQL schema share a drain started on one of them: both claim
 * its moves (SKIP LOCKED), no version is moved twice, the backend ends empty and the ledger is exact.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobState } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import type { Orchestrator } from '../../../src/app.js';
import { engines } from '../../harness/db.js';
import { body, getObject, putObject, settleCleanup, startJobsFixture, waitJob, type JobsFixture } from './fixture.js';

const hasPostgres = (await engines()).includes('postgres');

/** This instance's count of copy-version tasks by outcome (s3o_tasks_total). */
async function moves(o: Orchestrator): Promise<Record<string, number>> {
  const metric = await o.metrics.registry.getSingleMetric('s3o_tasks_total')!.get();
  const out: Record<string, number> = {};
  for (const v of metric.values) if (v.labels.kind === 'copy-version') out[String(v.labels.outcome)] = v.value;
  return out;
}

describe('a drain shared by two instances', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let f: JobsFixture;
  const keys = Array.from({ length: 100 }, (_, i) => `two/${String(i).padStart(3, '0')}`);

  before(async () => {
    f = await startJobsFixture({ strategy: 'pack', instances: 2, cleanupDelayMs: 500 });
    const queue = [...keys];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let k = queue.shift(); k !== undefined; k = queue.shift()) await putObject(f.s3(w % 2), k, body(k, 1, 2000 + k.length * 100));
      }),
    );
  });
  after(async () => f?.stop());

  test('both instances move copies; none is moved twice', async () => {
    const [a, b] = f.orchs as [Orchestrator, Orchestrator];
    // pack puts every object on s3-1, unless a write failed over to the next backend under load.
    const { rows: held } = await a.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    const moved = Number(held[0]!.n);
    assert.ok(moved > keys.length / 2);
    const { job } = await f.jobs(0).drainBackend({ backend: 's3-1' }, f.auth);
    // Started on A, watched through B: the job lives in the database.
    const done = await waitJob(f.jobs(1), job!.id, f.auth, 60_000);
    assert.equal(done.state, JobState.DONE, done.message);
    assert.equal(done.progress!.itemsDone, BigInt(moved));

    const [ma, mb] = [await moves(a), await moves(b)];
    assert.ok((ma.done ?? 0) > 0 && (mb.done ?? 0) > 0, `both instances moved copies (A ${ma.done}, B ${mb.done})`);
    assert.equal((ma.done ?? 0) + (mb.done ?? 0), moved, 'each version moved exactly once');
    assert.equal((ma.lease_lost ?? 0) + (mb.lease_lost ?? 0), 0);
    // Each version has exactly one copy, off s3-1; its bytes are intact through either instance.
    const { rows } = await a.db.query<{ n: number; off: number }>(
      `SELECT count(*)::int8 AS n, count(*) FILTER (WHERE backend <> 's3-1')::int8 AS off FROM object_copies`,
    );
    assert.deepEqual(rows[0], { n: keys.length, off: keys.length });
    assert.equal(await settleCleanup(f.orchs), 0);
    assert.deepEqual((await a.backends.get('s3-1')!.list('', { limit: 1000 })).entries, []);
    for (const [i, k] of keys.entries()) assert.equal((await getObject(f.s3(i % 2), k)).compare(body(k, 1, 2000 + k.length * 100)), 0, k);
  });
});
