/**
 * Jobs at the core level, over a real database and fs backends, with the task queue and the finisher
 * driven by hand: a multipart upload in progress on a draining backend finishes there and the drain plans
 * again; a drain with nowhere to go is refused; pause holds the work back (the claim skips it); a cancel
 * drops the pending copy a deleted move had reserved; a failed job is retried by resume; rebalance targets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { JobControl, settleJobs } from '../../../src/core/job-kinds.js';
import { CoreMultipartStore, MIN_PART_SIZE } from '../../../src/core/multipart.js';
import { initialState, rebalanceOnAdd } from '../../../src/core/rebalance.js';
import { runTaskBatch } from '../../../src/core/tasks.js';
import { createLogger } from '../../../src/log.js';
import { taskHandlers } from '../../../src/workers/index.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { engines } from '../../harness/db.js';

const hasPostgres = (await engines()).includes('postgres');
const log = createLogger({}, 'error');

describe('jobs in core', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let f: CoreFixture;
  let jobs: JobControl;

  before(async () => {
    f = await coreFixture('postgres', (dir) => [
      { type: 'fs', name: 'fs-1', path: path.join(dir, 'fs-1'), quotaBytes: 0 },
      { type: 'fs', name: 'fs-2', path: path.join(dir, 'fs-2'), quotaBytes: 0 },
    ]);
    jobs = new JobControl(f.db, { strategy: 'pack', backendOrder: () => ['fs-1', 'fs-2'], cleanupDelayMs: 0 });
  });
  after(async () => f?.close());

  /** Runs the queue and the finisher until the job leaves `running` (or nothing changes any more). */
  async function settle(id: number): Promise<string> {
    for (let i = 0; i < 50; i++) {
      await f.drain();
      await settleJobs(f.db, log);
      const j = await jobs.get(id);
      if (j.state !== 'running' && j.state !== 'cancelling') return j.state;
    }
    return (await jobs.get(id)).state;
  }

  test('an upload in progress on a draining backend finishes there; the drain waits, then plans again', async () => {
    for (let i = 0; i < 5; i++) await f.store.putObject(putInput('data', `d/${i}`, `object ${i}`));
    const mp = new CoreMultipartStore(f.deps, f.store);
    const up = await mp.createMultipartUpload({ bucket: 'data', key: 'mp', headers: {}, userMeta: {} });
    const data = Buffer.alloc(MIN_PART_SIZE + 10, 7);
    const part = await mp.uploadPart({
      bucket: 'data', key: 'mp', uploadId: up.uploadId, partNumber: 1, size: data.length,
      body: Readable.from([data]), digests: () => ({ md5: createHash('md5').update(data).digest('hex') }),
    });
    const { job } = await jobs.drain('fs-1');
    await f.drain();
    await settleJobs(f.db, log);
    const waiting = await jobs.get(job.id);
    assert.equal(waiting.state, 'running');
    assert.match(waiting.message, /waiting for 0 write\(s\) and 1 multipart upload/);
    assert.equal(waiting.progress.itemsDone, 5);
    // The upload completes on fs-1 (its parts are there), then the drain moves it too.
    await mp.completeMultipartUpload({ bucket: 'data', key: 'mp', uploadId: up.uploadId, parts: [{ partNumber: 1, etag: `"${part.etag}"` }] });
    assert.equal(await settle(job.id), 'done');
    const done = await jobs.get(job.id);
    assert.equal(done.passes, 1, 'a second planning pass found the completed upload');
    assert.equal(done.progress.itemsDone, 6);
    const { rows } = await f.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 'fs-1'`);
    assert.equal(rows[0]!.n, 0);
    assert.equal((await readAll((await f.store.getObject('data', 'mp')).body)).compare(data), 0);
    await jobs.cancelDrain('fs-1');
  });

  test('a drain with no other active backend is refused; an unknown one is not found', async () => {
    await f.db.query(`UPDATE backends SET state = 'read_only' WHERE name = 'fs-1'`);
    await assert.rejects(jobs.drain('fs-2'), /no other active backend/);
    await f.db.query(`UPDATE backends SET state = 'active' WHERE name = 'fs-1'`);
    await assert.rejects(jobs.drain('nope'), (e: Error & { code?: string }) => e.code === 'NotFound');
    await assert.rejects(jobs.get(-1), (e: Error & { code?: string; field?: string }) => e.code === 'InvalidArgument' && e.field === 'id');
  });

  test('pause holds queued moves (the claim skips them); cancel drops the destination a failed move reserved', async () => {
    // Everything is on fs-2 now; drain it towards fs-1.
    const { job } = await jobs.drain('fs-2');
    // Plan only: run the planner task alone.
    const queue = { db: f.db, log, owner: 'test', clock: f.clock };
    const plan = taskHandlers({ db: f.db, backends: f.registry, log }).filter((h) => h.kind === 'job-plan');
    await runTaskBatch(queue, plan);
    const moves = (await f.db.query<{ id: number }>(`SELECT id FROM tasks WHERE job_id = $1 AND kind = 'copy-version' ORDER BY id`, [job.id])).rows;
    assert.equal(moves.length, 6);
    // One move reserved its destination in an attempt that then failed (as a crash between prepare and
    // transfer leaves it): a pending copy owned by the task, and the task back in the queue.
    const victim = Number(moves[0]!.id);
    const { rows: v } = await f.db.query<{ version_id: string; size: number }>(
      `SELECT v.version_id, v.size FROM tasks t JOIN object_versions v ON v.version_id = t.payload->>'versionId' WHERE t.id = $1`,
      [victim],
    );
    await f.db.query(
      `WITH r AS (UPDATE backends SET reserved_bytes = reserved_bytes + $2 WHERE name = 'fs-1' RETURNING 1)
       INSERT INTO object_copies (version_id, backend, physical_key, size, state, task_id) SELECT $1, 'fs-1', 'reserved/by/a/failed/move', $2, 'pending', $3 FROM r`,
      [v[0]!.version_id, v[0]!.size, victim],
    );
    await jobs.pause(job.id);
    const held = await f.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM tasks WHERE job_id = $1 AND run_after = 'infinity'`, [job.id]);
    assert.equal(held.rows[0]!.n, 6);
    // A task that went back to the queue during the pause (a failure's backoff) is due, yet not claimed.
    await f.db.query(`UPDATE tasks SET run_after = now() - interval '1 second' WHERE id = $1`, [victim]);
    assert.equal(await runTaskBatch(queue, taskHandlers({ db: f.db, backends: f.registry, log })), 0);
    const paused = await jobs.get(job.id);
    assert.equal(paused.state, 'paused');
    assert.equal(paused.progress.queued, 6);

    const cancelled = await jobs.cancel(job.id);
    assert.equal(cancelled.state, 'cancelling');
    assert.equal(cancelled.progress.itemsTotal, 0, 'deleted moves are taken off the totals');
    const { rows: pending } = await f.db.query(`SELECT 1 FROM object_copies WHERE task_id = $1`, [victim]);
    assert.equal(pending.length, 0, 'the reserved destination was dropped');
    assert.equal(await settle(job.id), 'cancelled');
    await jobs.cancelDrain('fs-2');
    // The ledger (checked when the fixture closes) holds: the reservation became used bytes, released
    // by the delete-copy task of the dropped copy.
    await f.drain();
  });

  test('a job whose items failed for good is failed; resume retries them', async () => {
    const { job } = await jobs.drain('fs-2');
    const queue = { db: f.db, log, owner: 'test', clock: f.clock };
    await runTaskBatch(queue, taskHandlers({ db: f.db, backends: f.registry, log }).filter((h) => h.kind === 'job-plan'));
    await f.db.query(`UPDATE tasks SET state = 'dead', last_error = 'provider said no' WHERE job_id = $1 AND kind = 'copy-version'`, [job.id]);
    await settleJobs(f.db, log);
    const failed = await jobs.get(job.id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.message, /6 task\(s\) failed for good; last error: provider said no/);
    assert.equal(failed.progress.dead, 6);
    assert.equal(failed.progress.errors, 6);
    const resumed = await jobs.resume(job.id);
    assert.equal(resumed.state, 'running');
    assert.equal(await settle(job.id), 'done');
    await jobs.cancelDrain('fs-2');
  });

  test('placement.rebalance_on_add: a backend never seen before starts a rebalance, once', async () => {
    const order = ['fs-1', 'fs-2', 'fs-3'];
    assert.equal(await rebalanceOnAdd(f.db, order, 'spread'), undefined, 'the first call records the fleet');
    assert.equal(await rebalanceOnAdd(f.db, order, 'spread'), undefined);
    await f.db.query(`INSERT INTO backends (name, type, quota_bytes) VALUES ('fs-3', 'fs', 0)`);
    const job = await rebalanceOnAdd(f.db, order, 'spread');
    assert.equal(job?.kind, 'rebalance');
    assert.equal(job?.params.trigger, 'backend added: fs-3');
    assert.equal(await rebalanceOnAdd(f.db, order, 'spread'), undefined, 'seen now');
    await jobs.cancel(job!.id);
    assert.equal(await settle(job!.id), 'cancelled');
    // Draining and reactivating a known backend is not an addition.
    await f.db.query(`UPDATE backends SET state = 'draining' WHERE name = 'fs-3'`);
    await f.db.query(`UPDATE backends SET state = 'active' WHERE name = 'fs-3'`);
    assert.equal(await rebalanceOnAdd(f.db, order, 'spread'), undefined);
    await f.db.query(`DELETE FROM backends WHERE name = 'fs-3'`);
  });

  test('rebalance targets: spread shares by quota or equally (times weight), pack pours in order', async () => {
    const order = ['fs-1', 'fs-2'];
    const live = await f.db.query<{ bytes: number }>(`SELECT coalesce(sum(size), 0)::int8 AS bytes FROM object_copies WHERE state = 'live'`);
    const total = live.rows[0]!.bytes;
    const spread = await initialState(f.db, order, 'spread');
    assert.deepEqual(spread.backends.map((b) => b.targetBytes), [Math.floor(total / 2), Math.floor(total / 2)]);
    const pack = await initialState(f.db, order, 'pack');
    assert.deepEqual(pack.backends.map((b) => b.targetBytes), [total, 0]);
    await f.db.query(`UPDATE backends SET weight = 3 WHERE name = 'fs-2'`);
    const weighted = await initialState(f.db, order, 'spread');
    assert.deepEqual(weighted.backends.map((b) => b.targetBytes), [Math.floor(total / 4), Math.floor((total * 3) / 4)]);
    await f.db.query(`UPDATE backends SET weight = 0 WHERE name = 'fs-2'`);
    assert.deepEqual((await initialState(f.db, order, 'spread')).backends.map((b) => b.targetBytes), [total, 0]);
    await f.db.query(`UPDATE backends SET weight = 1 WHERE name = 'fs-2'`);
    // A draining backend is not part of a rebalance.
    await f.db.query(`UPDATE backends SET state = 'draining' WHERE name = 'fs-2'`);
    assert.deepEqual((await initialState(f.db, order, 'spread')).backends.map((b) => b.name), ['fs-1']);
    await f.db.query(`UPDATE backends SET state = 'active' WHERE name = 'fs-2'`);
  });
});
