import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as jq from '../meta/queries/jobs.js';
import type { Logger } from '../log.js';
import { dropPendingCopies } from './copies.js';
import { enqueueTask, type TaskEffect, type TaskHandler } from './tasks.js';

export type { JobRow } from '../meta/queries/jobs.js';

/**
 * Jobs: long operations (drain, rebalance, bucket purge; later repair and scrub passes) as one row that
 * owns many tasks. A job never runs anything itself:
 * - its **planner** is a task (`job-plan`, one per job: singleton key) that pages through what the job
 *   covers with a keyset cursor kept on the job row, and for each page, in ONE transaction, inserts the
 *   page's tasks (or does the page's work) and records the cursor and totals — only while the job is
 *   running. A crash loses at most a page that was never committed; the next claim resumes at the cursor.
 * - its **items** are ordinary tasks with `job_id` set (moves are `copy-version` tasks), claimed with SKIP
 *   LOCKED by every worker of every instance;
 * - its **progress** is an aggregate: done = total recorded by the planner − tasks left. No task updates
 *   the job row;
 * - the **finisher** (the `jobs` worker) notices a job with nothing left and asks its kind whether it is
 *   done, must plan again (a drained backend got new copies meanwhile) or waits (uploads in progress).
 * Pause holds the job's queued tasks back (`run_after = infinity`, and the claim skips tasks of paused
 * jobs); cancel deletes its queued tasks and lets the running ones finish.
 */

/** What a job does. */
export type JobKind = 'drain' | 'rebalance' | 'purge-bucket';
export const JOB_KINDS: readonly JobKind[] = ['drain', 'rebalance', 'purge-bucket'];

/** Where a job is in its life. */
export type JobState = 'running' | 'paused' | 'cancelling' | 'cancelled' | 'done' | 'failed';
export const JOB_STATES: readonly JobState[] = ['running', 'paused', 'cancelling', 'cancelled', 'done', 'failed'];

/** The task kind of every job's planner. */
export const PLAN_TASK = 'job-plan';
/** The task kind a drain or rebalance moves a copy with (core/replicate.ts). */
export const MOVE_TASK = 'copy-version';

/** A job's progress, aggregated from its row and its tasks. */
export interface JobProgress {
  /** Items planned so far; while planning, at least the estimate made at the start. */
  itemsTotal: number;
  itemsDone: number;
  bytesTotal: number;
  bytesDone: number;
  /** True once the planner has enqueued everything (totals are exact). */
  planned: boolean;
  /** Tasks queued, running, and parked dead after their last attempt. */
  queued: number;
  running: number;
  dead: number;
  /** Tasks of the job that failed at least once and are still there (retrying or dead). */
  errors: number;
  lastError?: string;
}

/** A job as the admin API sees it. */
export interface JobRecord {
  id: number;
  kind: JobKind;
  /** The backend (drain), the bucket (purge-bucket), '' (rebalance). */
  target: string;
  state: JobState;
  params: Record<string, unknown>;
  /** What the job waits for, why it failed, or how it ended. */
  message: string;
  passes: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  progress: JobProgress;
}

/** A job-level error the admin layer maps to a Connect code (NotFound, InvalidArgument, FailedPrecondition). */
export class JobError extends Error {
  readonly code: 'NotFound' | 'InvalidArgument' | 'FailedPrecondition';
  /** The request field at fault (InvalidArgument). */
  readonly field: string | undefined;
  constructor(code: JobError['code'], message: string, field?: string) {
    super(message);
    this.name = 'JobError';
    this.code = code;
    this.field = field;
  }
}

/** What the finisher decides for a running job whose tasks are all gone. */
export type FinishDecision =
  | { outcome: 'done' | 'failed'; message: string }
  | { outcome: 'replan'; message: string }
  | { outcome: 'wait'; message: string };

/** What each kind contributes: its planner page and its end. */
export interface JobKindImpl {
  readonly kind: JobKind;
  /** Task kinds of its items (cancel removes the queued ones). */
  readonly itemKinds: readonly string[];
  /**
   * Plans one page in ONE transaction: enqueue its tasks (or do its work) and record it with
   * {@link recordPage}. Returns 'more' while pages remain, 'done' when planning is finished, 'stopped'
   * when the job is no longer running (the page was rolled back).
   */
  planPage(db: Db, job: jq.JobRow): Promise<'more' | 'done' | 'stopped'>;
  /** Called with the job row locked once nothing is left: done, failed, plan again, or wait. */
  finish(q: Queryable, job: jq.JobRow): Promise<FinishDecision>;
}

/** Thrown inside a page's transaction to roll it back when the job stopped running. */
class JobStopped extends Error {}

/**
 * Records a page inside the planner's transaction; rolls the whole page back (throws) when the job is no
 * longer running. Use through {@link planInTx}.
 */
export async function recordPage(q: Queryable, jobId: number, page: Parameters<typeof jq.recordPage>[1]): Promise<void> {
  if ((await run(q, jq.recordPage(jobId, page))).rowCount === 0) throw new JobStopped();
}

/** Runs a planner page's transaction; 'stopped' when it was rolled back because the job stopped. */
export async function planInTx(db: Db, fn: (q: Queryable) => Promise<'more' | 'done'>): Promise<'more' | 'done' | 'stopped'> {
  try {
    return await db.tx(fn);
  } catch (err) {
    if (err instanceof JobStopped) return 'stopped';
    throw err;
  }
}

/** Creates a job and its planner in the caller's transaction; undefined when one of that kind and target is open. */
export async function createJob(
  q: Queryable,
  kind: JobKind,
  target: string,
  params: Record<string, unknown>,
  createdBy = '',
): Promise<jq.JobRow | undefined> {
  const row = (await run<jq.JobRow>(q, jq.insertJob(kind, target, params, createdBy))).rows[0];
  if (row) await enqueuePlanner(q, row.id);
  return row;
}

async function enqueuePlanner(q: Queryable, jobId: number, delayMs = 0): Promise<void> {
  await enqueueTask(q, PLAN_TASK, { jobId }, { singletonKey: `${PLAN_TASK}:${jobId}`, jobId, delayMs });
}

/** The open job of a kind and target, if any. */
export async function openJob(q: Queryable, kind: JobKind, target: string): Promise<jq.JobRow | undefined> {
  return (await run<jq.JobRow>(q, jq.selectOpenJob(kind, target))).rows[0];
}

/** One job with its progress; undefined when there is no such job. */
export async function getJob(q: Queryable, id: number): Promise<JobRecord | undefined> {
  const row = (await run<jq.JobRow>(q, jq.selectJob(id))).rows[0];
  return row ? (await withProgress(q, [row]))[0] : undefined;
}

/** Jobs newest first (keyset paging by id). */
export async function listJobs(
  q: Queryable,
  f: { kind?: JobKind; states?: readonly JobState[]; beforeId?: number; limit: number },
): Promise<JobRecord[]> {
  return withProgress(q, (await run<jq.JobRow>(q, jq.listJobs(f))).rows);
}

/** Rows → records, with one aggregate statement for all of them. */
export async function withProgress(q: Queryable, rows: readonly jq.JobRow[]): Promise<JobRecord[]> {
  if (rows.length === 0) return [];
  const counts = new Map(
    (await run<jq.JobTaskCounts>(q, jq.taskCounts(rows.map((r) => r.id), PLAN_TASK))).rows.map((c) => [Number(c.job_id), c]),
  );
  return rows.map((r) => toRecord(r, counts.get(r.id)));
}

function toRecord(r: jq.JobRow, c: jq.JobTaskCounts | undefined): JobRecord {
  const estimate = (r.params.estimate ?? {}) as { items?: number; bytes?: number };
  const finished = r.planned || ['done', 'failed', 'cancelled', 'cancelling'].includes(r.state);
  const itemsTotal = finished ? r.items_total : Math.max(r.items_total, estimate.items ?? 0);
  const bytesTotal = finished ? r.bytes_total : Math.max(r.bytes_total, estimate.bytes ?? 0);
  // Items that were enqueued and are gone are done (a cancel takes the tasks it deleted off the totals).
  const itemsDone = Math.max(0, r.items_total - (c?.items_left ?? 0));
  const bytesDone = Math.max(0, r.bytes_total - (c?.bytes_left ?? 0));
  return {
    id: Number(r.id),
    kind: r.kind as JobKind,
    target: r.target,
    state: r.state as JobState,
    params: r.params,
    message: r.message,
    passes: r.passes,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.finished_at ? { finishedAt: r.finished_at } : {}),
    progress: {
      itemsTotal,
      itemsDone: Math.min(itemsDone, itemsTotal),
      bytesTotal,
      bytesDone: Math.min(bytesDone, bytesTotal),
      planned: r.planned,
      queued: c?.queued ?? 0,
      running: c?.active ?? 0,
      dead: c?.dead ?? 0,
      errors: c?.errors ?? 0,
      ...(c?.last_error ? { lastError: c.last_error } : {}),
    },
  };
}

async function lockJob(q: Queryable, id: number): Promise<jq.JobRow> {
  const row = (await run<jq.JobRow>(q, jq.selectJob(id, true))).rows[0];
  if (!row) throw new JobError('NotFound', `job ${id} does not exist`);
  return row;
}

/** Pauses a running job: its queued tasks wait and its planner stops. Pausing a paused job is a no-op. */
export async function pauseJob(db: Db, id: number): Promise<JobRecord> {
  await db.tx(async (q) => {
    const job = await lockJob(q, id);
    if (job.state === 'paused') return;
    if (job.state !== 'running') throw new JobError('FailedPrecondition', `job ${id} is ${job.state}; only a running job can be paused`);
    await run(q, jq.transition(id, ['running'], 'paused', 'paused'));
    await run(q, jq.holdTasks(id));
  });
  return (await getJob(db, id))!;
}

/**
 * Resumes a paused job (its tasks become due, its planner continues), or retries a failed one (its dead
 * tasks get a fresh set of attempts). Resuming a running job is a no-op.
 */
export async function resumeJob(db: Db, id: number): Promise<JobRecord> {
  await db.tx(async (q) => {
    const job = await lockJob(q, id);
    if (job.state === 'running') return;
    if (job.state !== 'paused' && job.state !== 'failed') {
      throw new JobError('FailedPrecondition', `job ${id} is ${job.state}; only a paused or failed job can be resumed`);
    }
    if (job.state === 'failed' && (await openJob(q, job.kind as JobKind, job.target))) {
      throw new JobError('FailedPrecondition', `another ${job.kind} job of ${JSON.stringify(job.target)} is open; cancel it first`);
    }
    await run(q, jq.transition(id, [job.state], 'running', ''));
    await run(q, jq.releaseTasks(id, job.state === 'failed'));
    if (!job.planned) await enqueuePlanner(q, id);
  });
  return (await getJob(db, id))!;
}

/**
 * Cancels a job: its queued tasks are removed at once, running ones finish (their effects are correct on
 * their own), and the finisher marks it cancelled when none is left. Cancelling a finished job fails;
 * cancelling one already cancelling is a no-op.
 */
export async function cancelJob(db: Db, id: number, kinds: readonly JobKindImpl[]): Promise<JobRecord> {
  await db.tx(async (q) => cancelIn(q, await lockJob(q, id), kinds));
  return (await getJob(db, id))!;
}

/** Cancels a locked job inside the caller's transaction (CancelDrain uses it). */
export async function cancelIn(q: Queryable, job: jq.JobRow, kinds: readonly JobKindImpl[]): Promise<void> {
  if (job.state === 'cancelling' || job.state === 'cancelled') return;
  if (job.state !== 'running' && job.state !== 'paused') {
    throw new JobError('FailedPrecondition', `job ${job.id} is ${job.state}; it can no longer be cancelled`);
  }
  await run(q, jq.transition(job.id, ['running', 'paused'], 'cancelling', 'cancelled by request'));
  await dropQueued(q, job, kinds);
}

/**
 * Deletes a job's queued tasks; a move that had reserved its destination in an earlier, failed attempt
 * leaves a pending copy behind, which is dropped through the copy layer (its reservation released by
 * the delete-copy task queued for its key).
 */
async function dropQueued(q: Queryable, job: jq.JobRow, kinds: readonly JobKindImpl[]): Promise<void> {
  const impl = kinds.find((k) => k.kind === job.kind);
  const ids = (await run<{ id: number }>(q, jq.deleteQueuedTasks(job.id, [PLAN_TASK, ...(impl?.itemKinds ?? [])], PLAN_TASK))).rows.map((r) => Number(r.id));
  if (ids.length === 0) return;
  const pending = (await run<{ version_id: string; backend: string }>(q, jq.pendingCopiesOfTasks(ids))).rows;
  for (const c of pending) await dropPendingCopies(q, c.version_id, [c.backend], 'cancelled-move');
}

/** Most queued items a job keeps ahead of its workers; its planner waits beyond that. */
const MAX_AHEAD = 5_000;
/** How long one planner run plans before it hands over (the worker runs other tasks meanwhile). */
const PLAN_BUDGET_MS = 2_000;

/**
 * The `job-plan` task: plans pages of its job until a time budget is spent, then re-enqueues itself in
 * the completing transaction (so a page committed is never planned twice, and a crash resumes at the
 * cursor). A job with many items still queued waits before planning more.
 */
export function jobPlanHandler(db: Db, kinds: readonly JobKindImpl[], log: Logger): TaskHandler {
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  return {
    kind: PLAN_TASK,
    async run(task): Promise<TaskEffect | void> {
      const jobId = Number((task.payload as { jobId: number }).jobId);
      const started = Date.now();
      for (;;) {
        const job = (await run<jq.JobRow>(db, jq.selectJob(jobId))).rows[0];
        if (!job || job.state !== 'running' || job.planned) return;
        const impl = byKind.get(job.kind as JobKind);
        if (!impl) throw new Error(`job ${jobId} has an unknown kind ${job.kind}`);
        const queued = (await run<jq.JobTaskCounts>(db, jq.taskCounts([jobId], PLAN_TASK))).rows[0]?.queued ?? 0;
        if (queued > MAX_AHEAD) return async (q) => enqueuePlanner(q, jobId, 1_000);
        const outcome = await impl.planPage(db, job);
        if (outcome !== 'more') {
          if (outcome === 'done') log.info('job planned', { job: jobId, kind: job.kind, target: job.target });
          return;
        }
        if (Date.now() - started > PLAN_BUDGET_MS) return async (q) => enqueuePlanner(q, jobId);
      }
    },
  };
}

/** A drain that plans again more often than this is stuck (its moves complete without moving). */
const MAX_PASSES = 25;

/**
 * One step of the finisher: every running or cancelling job with no task left is settled (each job
 * under its row lock, SKIP LOCKED across instances). Returns how many jobs changed state.
 */
export async function finishJobs(db: Db, kinds: readonly JobKindImpl[], log: Logger): Promise<number> {
  const byKind = new Map(kinds.map((k) => [k.kind, k]));
  const ids = (await run<{ id: number }>(db, jq.checkableJobs(100))).rows.map((r) => Number(r.id));
  let changed = 0;
  for (const id of ids) {
    const decision = await db.tx(async (q) => {
      const job = (await run<jq.JobRow>(q, jq.lockCheckableJob(id))).rows[0];
      if (!job) return undefined;
      const c = (await run<jq.JobTaskCounts>(q, jq.taskCounts([id], PLAN_TASK))).rows[0];
      const live = (c?.queued ?? 0) + (c?.active ?? 0);
      if (job.state === 'cancelling') {
        // A task that failed after the cancel went back to the queue: it goes too.
        await dropQueued(q, job, kinds);
        if ((c?.active ?? 0) > 0) return undefined;
        await run(q, jq.transition(id, ['cancelling'], 'cancelled'));
        return 'cancelled';
      }
      if (live > 0) return undefined;
      if (!job.planned && (c?.dead ?? 0) === 0) {
        // Planning is not finished and no planner is queued or running (it was lost): queue it again.
        await enqueuePlanner(q, id);
        return undefined;
      }
      if ((c?.dead ?? 0) > 0) {
        const msg = `${c!.dead} task(s) failed for good${c?.last_error ? `; last error: ${c.last_error}` : ''}; ResumeJob retries them`;
        await run(q, jq.transition(id, ['running'], 'failed', msg));
        return 'failed';
      }
      const impl = byKind.get(job.kind as JobKind);
      if (!impl) return undefined;
      const d = await impl.finish(q, job);
      if (d.outcome === 'wait') {
        await run(q, jq.setMessage(id, d.message));
        return undefined;
      }
      if (d.outcome === 'replan') {
        if (job.passes + 1 >= MAX_PASSES) {
          await run(q, jq.transition(id, ['running'], 'failed', `gave up after ${MAX_PASSES} planning passes: ${d.message}`));
          return 'failed';
        }
        await run(q, jq.replan(id, d.message));
        await enqueuePlanner(q, id);
        return 'replan';
      }
      await run(q, jq.transition(id, ['running'], d.outcome, d.message));
      return d.outcome;
    });
    if (decision) {
      changed++;
      log.info('job state changed', { job: id, decision });
    }
  }
  return changed;
}
