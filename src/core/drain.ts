import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as bq from '../meta/queries/backends.js';
import * as jq from '../meta/queries/jobs.js';
import { cancelIn, createJob, getJob, JobError, MOVE_TASK, openJob, planInTx, recordPage, type FinishDecision, type JobKindImpl, type JobRecord } from './jobs.js';
import { enqueueMove } from './replicate.js';

/**
 * Drains: moving every copy off a backend so it can be removed.
 *
 * `startDrain` sets the backend `draining` (placement stops choosing it for new copies at once, on every
 * instance: placement reads the rows at every write; multipart uploads already in progress there finish
 * there) and creates a drain job. Its planner pages through the versions with a copy on the backend
 * (keyset on `(backend, version_id)`, index object_copies_backend) and enqueues one `copy-version` task
 * per version with `retire: backend`: the task copies the bytes to a destination chosen by placement under
 * a new generation-unique key, then in one transaction publishes the new copy and retires the old one
 * (its delete-copy task queued), so a reader always finds a live copy.
 *
 * When every task is done the finisher checks the backend: copies published there meanwhile (a write
 * staged before the drain began, a multipart upload completed there) start another planning pass; uploads
 * or writes still in progress are waited for; an empty backend ends the job `done`. The backend then stays
 * `draining` — nothing new lands on it, it can be removed, and CancelDrain makes it active again.
 */

/** Versions per planner page. */
const PAGE = 500;

/** The drain job kind. */
export const drainJob: JobKindImpl = {
  kind: 'drain',
  itemKinds: [MOVE_TASK],
  planPage: (db, job) =>
    planInTx(db, async (q) => {
      const after = String((job.cursor as { after?: string } | null)?.after ?? '');
      const { rows } = await run<{ version_id: string; size: number }>(q, jq.drainPage(job.target, after, PAGE));
      // A version already being moved off this backend (by another job) is not counted twice.
      let items = 0;
      let bytes = 0;
      for (const r of rows) {
        if ((await enqueueMove(q, { versionId: r.version_id, from: job.target, jobId: job.id })) === undefined) continue;
        items++;
        bytes += Number(r.size);
      }
      const last = rows.at(-1)?.version_id ?? after;
      const done = rows.length < PAGE;
      await recordPage(q, job.id, {
        cursor: { after: last },
        items,
        bytes,
        planned: done,
        ...(done ? { message: 'moving copies' } : { message: 'planning' }),
      });
      return done ? 'done' : 'more';
    }),
  finish: async (q, job): Promise<FinishDecision> => {
    const left = (await run<{ copies: number; live_copies: number; uploads: number }>(q, jq.backendLeftovers(job.target))).rows[0]!;
    if (Number(left.live_copies) > 0) {
      return { outcome: 'replan', message: `${left.live_copies} copies still on ${job.target} (published during the drain); planning again` };
    }
    const writes = Number(left.copies) - Number(left.live_copies);
    if (writes > 0 || Number(left.uploads) > 0) {
      return { outcome: 'wait', message: `waiting for ${writes} write(s) and ${left.uploads} multipart upload(s) in progress on ${job.target}` };
    }
    return { outcome: 'done', message: `${job.target} holds no copies; it stays draining (CancelDrain makes it active again)` };
  },
};

/** A drain as its caller learns it: the job, and whether it was already running. */
export interface DrainStarted {
  job: JobRecord;
  /** True when the backend was already being drained by this (open) job. */
  existing: boolean;
}

/**
 * Starts draining a backend (idempotent: a backend already being drained returns its open job).
 * Fails NotFound for an unknown backend and FailedPrecondition for a removed one or when no other
 * active backend could take its copies.
 */
export async function startDrain(db: Db, backend: string, createdBy = ''): Promise<DrainStarted> {
  if (backend === '') throw new JobError('InvalidArgument', 'backend is required', 'backend');
  const { id, existing } = await db.tx(async (q) => {
    const b = (await run<{ name: string; state: string }>(q, jq.backendState(backend, true))).rows[0];
    if (!b) throw new JobError('NotFound', `backend ${JSON.stringify(backend)} does not exist`);
    if (b.state === 'removed') throw new JobError('FailedPrecondition', `backend ${JSON.stringify(backend)} is removed`);
    const open = await openJob(q, 'drain', backend);
    if (open) return { id: Number(open.id), existing: true };
    const others = (await run<{ name: string }>(q, jq.otherActiveBackends(backend))).rows;
    if (others.length === 0) {
      throw new JobError('FailedPrecondition', `no other active backend could take the copies of ${JSON.stringify(backend)}`);
    }
    await run(q, jq.setBackendState(backend, ['active', 'read_only', 'draining'], 'draining'));
    const row = (await run<bq.BackendRow>(q, bq.selectBackends())).rows.find((r) => r.name === backend)!;
    const job = await createJob(q, 'drain', backend, { previousState: b.state, estimate: { items: row.object_count, bytes: row.used_bytes } }, createdBy);
    if (!job) throw new JobError('FailedPrecondition', `a drain of ${JSON.stringify(backend)} is already open`);
    return { id: Number(job.id), existing: false };
  });
  return { job: (await getJob(db, id))!, existing };
}

/**
 * Stops draining a backend: its open drain job is cancelled (moves already made stay made; moves running
 * finish) and the backend becomes active again. Fails NotFound for an unknown backend and
 * FailedPrecondition when it is not draining. Returns the cancelled job, if there was one.
 */
export async function cancelDrain(db: Db, backend: string, kinds: readonly JobKindImpl[]): Promise<JobRecord | undefined> {
  if (backend === '') throw new JobError('InvalidArgument', 'backend is required', 'backend');
  const id = await db.tx(async (q) => {
    const b = (await run<{ name: string; state: string }>(q, jq.backendState(backend, true))).rows[0];
    if (!b) throw new JobError('NotFound', `backend ${JSON.stringify(backend)} does not exist`);
    if (b.state !== 'draining') throw new JobError('FailedPrecondition', `backend ${JSON.stringify(backend)} is ${b.state}, not draining`);
    const open = await openJob(q, 'drain', backend);
    if (open) {
      const locked = (await run<jq.JobRow>(q, jq.selectJob(Number(open.id), true))).rows[0]!;
      await cancelIn(q, locked, kinds);
    }
    await run(q, jq.setBackendState(backend, ['draining'], 'active'));
    return open ? Number(open.id) : undefined;
  });
  return id === undefined ? undefined : getJob(db, id);
}
