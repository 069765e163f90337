import type { Db, Queryable } from '../meta/db.js';

/** The metadata database, as the workers that drive core see it. */
export type { Db };
import { run } from '../meta/run.js';
import * as tq from '../meta/queries/tasks.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/**
 * The task contract. One table, one claim, one way to finish:
 * - `enqueueTask` inserts a task in the CALLER's transaction, so the metadata change that needs physical
 *   work and the promise to do it commit together (the outbox);
 * - `runTaskBatch` claims due tasks in one statement (SKIP LOCKED, across instances), runs each kind's
 *   handler, and completes a task only while its claim still holds the lease: the completing statement
 *   checks the lease token, and the handler's effects (quota release…) are applied in that same
 *   transaction — so a task held past its lease and run twice releases its bytes once;
 * - failures retry with exponential backoff and park as `dead` after `max_attempts` (visible in metrics).
 * Handlers never hold a transaction open across backend I/O.
 */

/**
 * Lease on a claimed task: a worker that dies mid-task gives it back after this long. The runner extends
 * the lease every third of it while the handler runs, so a long task keeps it and a dead worker's claims
 * come back within a minute (completion is fenced by the lease token, so a lease that runs out anyway
 * can only cost a repeated run, never a double effect).
 */
export const LEASE_MS = 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;

/**
 * The time the queue and the janitors see: the database's clock plus `skewMs()`. Production uses
 * {@link systemClock}; tests move a {@link ManualClock} forward to expire leases, backoffs and heartbeats.
 */
export interface Clock {
  skewMs(): number;
}

export const systemClock: Clock = { skewMs: () => 0 };

/** A clock tests can move forward. */
export class ManualClock implements Clock {
  #skew = 0;
  skewMs(): number {
    return this.#skew;
  }
  advance(ms: number): void {
    this.#skew += ms;
  }
}

/** Backoff after the n-th failed attempt: 1 s, 2 s, 4 s … capped at one hour. */
export function backoffMs(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/** A task as its handler sees it. */
export interface Task<P = Record<string, unknown>> {
  id: number;
  kind: string;
  payload: P;
  attempts: number;
  leaseToken: number;
}

/** What a handler asks the queue to apply, in the completing transaction, once the lease is confirmed. */
export type TaskEffect = (q: Queryable) => Promise<void>;

/** The handler of one task kind (core owns them; the worker runner only schedules). */
export interface TaskHandler {
  readonly kind: string;
  /** Does the physical work; returns the metadata effect to apply on completion (if any). */
  run(task: Task, ctx: TaskContext): Promise<TaskEffect | void>;
}

export interface TaskContext {
  /** Extends the lease and records progress; false when the lease was lost (stop working then). */
  heartbeat(progress?: unknown): Promise<boolean>;
}

export interface TaskQueueDeps {
  db: Db;
  log: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** This instance's identity, recorded as the lease owner. */
  owner: string;
  leaseMs?: number;
}

/** Inserts a task in the caller's transaction. Returns its id (undefined for a duplicate singleton). */
export async function enqueueTask(
  q: Queryable,
  kind: string,
  payload: unknown,
  opts: tq.EnqueueOptions = {},
  clock: Clock = systemClock,
): Promise<number | undefined> {
  const { rows } = await run<{ id: number }>(q, tq.enqueue(kind, payload, opts, clock.skewMs()));
  return rows[0]?.id;
}

/**
 * Claims up to `limit` due tasks of the handlers' kinds and runs them concurrently. Returns how many were
 * claimed. Never throws for a failing task (it is retried); throws only if the claim itself fails.
 */
export async function runTaskBatch(deps: TaskQueueDeps, handlers: readonly TaskHandler[], limit = 32): Promise<number> {
  const clock = deps.clock ?? systemClock;
  const leaseMs = deps.leaseMs ?? LEASE_MS;
  const byKind = new Map(handlers.map((h) => [h.kind, h]));
  const { rows } = await run<tq.TaskRow>(deps.db, tq.claim([...byKind.keys()], limit, leaseMs, deps.owner, clock.skewMs()));
  await Promise.all(rows.map((row) => runOne(deps, byKind.get(row.kind)!, row, clock, leaseMs)));
  return rows.length;
}

/**
 * A pool of up to `concurrency` tasks running at once, refilled as each one finishes: unlike
 * {@link runTaskBatch}, a slow task (a big move) never holds back the claim of the next ones. The task
 * worker drives it: {@link fill} claims as many due tasks as there are free slots and starts them,
 * {@link next} waits until one finishes, {@link drain} until all have (at stop).
 */
export class TaskPool {
  readonly #deps: TaskQueueDeps;
  readonly #byKind: Map<string, TaskHandler>;
  readonly #concurrency: number;
  readonly #running = new Set<Promise<void>>();

  constructor(deps: TaskQueueDeps, handlers: readonly TaskHandler[], concurrency: number) {
    this.#deps = deps;
    this.#byKind = new Map(handlers.map((h) => [h.kind, h]));
    this.#concurrency = concurrency;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Claims up to the free slots' worth of due tasks and starts them. Returns how many were claimed. */
  async fill(): Promise<number> {
    const free = this.#concurrency - this.#running.size;
    if (free <= 0) return 0;
    const clock = this.#deps.clock ?? systemClock;
    const leaseMs = this.#deps.leaseMs ?? LEASE_MS;
    const { rows } = await run<tq.TaskRow>(this.#deps.db, tq.claim([...this.#byKind.keys()], free, leaseMs, this.#deps.owner, clock.skewMs()));
    for (const row of rows) {
      const p: Promise<void> = runOne(this.#deps, this.#byKind.get(row.kind)!, row, clock, leaseMs)
        .catch((err: unknown) => this.#deps.log.error('task run failed outside its handler', { task: row.id, err }))
        .finally(() => this.#running.delete(p));
      this.#running.add(p);
    }
    return rows.length;
  }

  /** Resolves when one running task finishes (at once when none runs). */
  async next(): Promise<void> {
    if (this.#running.size > 0) await Promise.race(this.#running);
  }

  /** Resolves when every running task has finished. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}

async function runOne(deps: TaskQueueDeps, handler: TaskHandler, row: tq.TaskRow, clock: Clock, leaseMs: number): Promise<void> {
  const task: Task = { id: row.id, kind: row.kind, payload: row.payload, attempts: row.attempts, leaseToken: row.lease_token };
  const ctx: TaskContext = {
    heartbeat: async (progress) =>
      (await run(deps.db, tq.extendLease(task.id, task.leaseToken, leaseMs, progress, clock.skewMs()))).rowCount > 0,
  };
  // Keep the lease while the handler runs; a lost lease is noticed at completion (fenced).
  const keep = setInterval(() => {
    void ctx.heartbeat().catch((err: unknown) => deps.log.warn('task lease extension failed', { task: task.id, err }));
  }, Math.max(1_000, Math.floor(leaseMs / 3)));
  keep.unref();
  try {
    const effect = await handler.run(task, ctx);
    const held = await completeTask(deps.db, task, effect ?? undefined);
    if (held) {
      deps.metrics?.tasks.inc({ kind: task.kind, outcome: 'done' });
    } else {
      // Another claim took the task after our lease ran out: its run completes it, ours changes nothing.
      deps.log.warn('task lease lost before completion; its effects were not applied', { task: task.id, kind: task.kind });
      deps.metrics?.tasks.inc({ kind: task.kind, outcome: 'lease_lost' });
    }
  } catch (err) {
    const delay = backoffMs(task.attempts);
    const message = err instanceof Error ? err.message : String(err);
    const { rows } = await run<{ state: string }>(deps.db, tq.fail(task.id, task.leaseToken, delay, message, clock.skewMs())).catch(
      (e: unknown) => {
        deps.log.error('could not record a task failure (it will be retried when its lease expires)', { task: task.id, err: e });
        return { rows: [] as { state: string }[] };
      },
    );
    const dead = rows[0]?.state === 'dead';
    const log = dead ? deps.log.error.bind(deps.log) : deps.log.warn.bind(deps.log);
    log(dead ? 'task failed for the last time; parked as dead' : 'task failed; will retry', {
      task: task.id,
      kind: task.kind,
      attempts: task.attempts,
      ...(dead ? {} : { delayMs: delay }),
      err,
    });
    deps.metrics?.tasks.inc({ kind: task.kind, outcome: dead ? 'dead' : 'retry' });
  } finally {
    clearInterval(keep);
  }
}

/**
 * Completes a task and applies its effect in one transaction, only while `task`'s claim still holds it.
 * Returns false (and applies nothing) when the lease was lost.
 */
export async function completeTask(db: Db, task: Pick<Task, 'id' | 'leaseToken'>, effect?: TaskEffect): Promise<boolean> {
  return db.tx(async (q) => {
    const done = await run(q, tq.complete(task.id, task.leaseToken));
    if (done.rowCount === 0) return false;
    if (effect) await effect(q);
    return true;
  });
}

/** Task counts by kind and state, for metrics and the admin API. */
export async function taskCounts(db: Db): Promise<Array<{ kind: string; state: string; n: number }>> {
  return (await run<{ kind: string; state: string; n: number }>(db, tq.countByState())).rows;
}

/** Drops dead tasks older than `retentionMs`. Returns how many were removed. */
export async function purgeDeadTasks(db: Db, retentionMs: number, clock: Clock = systemClock): Promise<number> {
  return (await run(db, tq.purgeDead(retentionMs, 1000, clock.skewMs()))).rowCount;
}
