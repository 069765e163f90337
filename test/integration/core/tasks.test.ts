/**
 * The task queue contract on a real PostgreSQL: enqueue in the caller's transaction, one-statement claims
 * shared by concurrent workers, singleton keys, backoff, the dead state after max attempts, retention,
 * lease expiry and progress. Time moves with a ManualClock, never by sleeping.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  LEASE_MS,
  ManualClock,
  backoffMs,
  enqueueTask,
  purgeDeadTasks,
  runTaskBatch,
  taskCounts,
  type TaskHandler,
} from '../../../src/core/tasks.js';
import { createLogger } from '../../../src/log.js';
import type { Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { createMetrics } from '../../../src/metrics.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';

const log = createLogger({}, 'error');

describe('task queue', () => {
  let tdb: TestDatabase;
  let db: Db;
  let clock: ManualClock;
  before(async () => {
    tdb = await freshDatabase('postgres');
    db = (await openDatabase(tdb.config)).db;
    clock = new ManualClock();
  });
  after(async () => {
    await db.close();
    await tdb.drop();
  });
  const queue = (owner: string) => ({ db, log, clock, owner });
  const kinds = async (kind: string) => (await taskCounts(db)).filter((r) => r.kind === kind);

  test('a task enqueued in a transaction that rolls back never runs', async () => {
    await assert.rejects(
      db.tx(async (q) => {
        await enqueueTask(q, 't-rollback', { n: 1 }, {}, clock);
        throw new Error('change failed');
      }),
    );
    const seen: unknown[] = [];
    const h: TaskHandler = { kind: 't-rollback', run: async (t) => void seen.push(t.payload) };
    assert.equal(await runTaskBatch(queue('A'), [h]), 0);
    assert.deepEqual(seen, []);
  });

  test('concurrent workers share the queue: every task runs exactly once and its effect commits with it', async () => {
    await db.query(`CREATE TABLE IF NOT EXISTS effects (id int PRIMARY KEY)`);
    await db.tx(async (q) => {
      for (let i = 0; i < 60; i++) await enqueueTask(q, 't-share', { i }, {}, clock);
    });
    const ran: number[] = [];
    const h: TaskHandler = {
      kind: 't-share',
      run: async (t) => {
        const i = (t.payload as { i: number }).i;
        ran.push(i);
        return async (q) => void (await q.query(`INSERT INTO effects (id) VALUES ($1)`, [i]));
      },
    };
    const workers = ['A', 'B', 'C'].map(async (w) => {
      while ((await runTaskBatch(queue(w), [h], 7)) > 0) {
        // keep claiming
      }
    });
    await Promise.all(workers);
    assert.equal(ran.length, 60);
    assert.equal(new Set(ran).size, 60);
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM effects`);
    assert.equal(rows[0]!.n, 60);
    assert.deepEqual(await kinds('t-share'), []);
  });

  test('a singleton key admits one queued or active task at a time', async () => {
    const a = await db.tx((q) => enqueueTask(q, 't-single', {}, { singletonKey: 'sweep' }, clock));
    const b = await db.tx((q) => enqueueTask(q, 't-single', {}, { singletonKey: 'sweep' }, clock));
    assert.ok(a !== undefined);
    assert.equal(b, undefined, 'the duplicate is a no-op');
    await runTaskBatch(queue('A'), [{ kind: 't-single', run: async () => {} }]);
    const c = await db.tx((q) => enqueueTask(q, 't-single', {}, { singletonKey: 'sweep' }, clock));
    assert.ok(c !== undefined, 'once done, the key is free again');
    await runTaskBatch(queue('A'), [{ kind: 't-single', run: async () => {} }]);
  });

  test('failures back off exponentially, then park the task as dead; dead tasks are purged after retention', async () => {
    await db.tx((q) => enqueueTask(q, 't-fail', {}, { maxAttempts: 3 }, clock));
    const metrics = createMetrics();
    let calls = 0;
    const h: TaskHandler = {
      kind: 't-fail',
      run: async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
    };
    const q = { ...queue('A'), metrics };
    assert.equal(await runTaskBatch(q, [h]), 1);
    assert.equal(await runTaskBatch(q, [h]), 0, 'backing off');
    clock.advance(backoffMs(1) + 10);
    assert.equal(await runTaskBatch(q, [h]), 1);
    clock.advance(backoffMs(2) + 10);
    assert.equal(await runTaskBatch(q, [h]), 1);
    clock.advance(3_600_000);
    assert.equal(await runTaskBatch(q, [h]), 0, 'dead tasks are never claimed');
    assert.equal(calls, 3);
    assert.deepEqual(await kinds('t-fail'), [{ kind: 't-fail', state: 'dead', n: 1 }]);
    const { rows } = await db.query<{ last_error: string }>(`SELECT last_error FROM tasks WHERE kind = 't-fail'`);
    assert.equal(rows[0]!.last_error, 'boom 3');
    const text = await metrics.registry.getSingleMetricAsString('s3o_tasks_total');
    assert.match(text, /kind="t-fail",outcome="retry"} 2/);
    assert.match(text, /kind="t-fail",outcome="dead"} 1/);
    assert.equal(await purgeDeadTasks(db, 7 * 86_400_000, clock), 0, 'within retention');
    clock.advance(8 * 86_400_000);
    assert.equal(await purgeDeadTasks(db, 7 * 86_400_000, clock), 1);
  });

  test('an expired lease is claimed again; heartbeats extend it and record progress', async () => {
    await db.tx((q) => enqueueTask(q, 't-lease', {}, {}, clock));
    let release!: () => void;
    const parked = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const slow: TaskHandler = {
      kind: 't-lease',
      run: async (_t, ctx) => {
        assert.equal(await ctx.heartbeat({ done: 1, of: 2 }), true);
        started();
        await parked;
        assert.equal(await ctx.heartbeat({ done: 2, of: 2 }), false, 'the lease was lost meanwhile');
      },
    };
    const first = runTaskBatch(queue('A'), [slow]);
    await running;
    const { rows } = await db.query<{ progress: unknown }>(`SELECT progress FROM tasks WHERE kind = 't-lease'`);
    assert.deepEqual(rows[0]!.progress, { done: 1, of: 2 });
    assert.equal(await runTaskBatch(queue('B'), [{ kind: 't-lease', run: async () => {} }]), 0, 'still leased');
    clock.advance(LEASE_MS + 1_000);
    assert.equal(await runTaskBatch(queue('B'), [{ kind: 't-lease', run: async () => {} }]), 1, 'expired: claimed again');
    release();
    await first;
    assert.deepEqual(await kinds('t-lease'), []);
  });

  test('the runner keeps the lease of a long task while it runs: nobody else claims it', async () => {
    await db.tx((q) => enqueueTask(q, 't-long', {}, {}, clock));
    let release!: () => void;
    const parked = new Promise<void>((r) => (release = r));
    const long = runTaskBatch({ ...queue('A'), leaseMs: 1_500 }, [{ kind: 't-long', run: () => parked }]);
    // Real time passes well beyond the lease; the runner extends it every 500 ms meanwhile.
    await new Promise((r) => setTimeout(r, 4_000));
    assert.equal(await runTaskBatch(queue('B'), [{ kind: 't-long', run: async () => {} }]), 0, 'still held by A');
    release();
    assert.equal(await long, 1);
    assert.deepEqual(await kinds('t-long'), [], 'A completed it');
  });
});
