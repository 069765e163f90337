import type { Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as jq from '../meta/queries/jobs.js';
import { notifySql } from '../meta/notify.js';
import { dropUpload, lockKeys, retireLive } from './copies.js';
import { createJob, JobError, openJob, planInTx, recordPage, type FinishDecision, type JobKindImpl, type JobRow } from './jobs.js';

/**
 * Bucket purge: emptying a bucket as a job, then deleting its row (BucketService.Delete with `force`).
 *
 * The planner pages through the bucket's live keys in key order and retires each page through the copy
 * layer in one transaction under the keys' advisory locks (the versions' rows go, a delete-copy task per
 * copy is queued: the outbox, exactly as a DeleteObjects would), then aborts the bucket's multipart
 * uploads the same way. The work is the planner's own: a page retired counts as done when it commits.
 * The finisher then waits for writes and completions still in progress, plans again when they published
 * something, and deletes the bucket row (its grants and counters with it) once nothing refers to it. The
 * physical deletions go on in the task queue afterwards, as after any delete.
 *
 * Writes that keep arriving while the purge runs keep it going: callers should stop writers first (revoke
 * the bucket's credentials, or refuse writes to a bucket being deleted).
 */

/** Keys retired (or uploads aborted) per planner page. */
const PAGE = 500;

interface PurgeCursor {
  phase: 'keys' | 'uploads';
  after: string;
}

export const purgeJob: JobKindImpl = {
  kind: 'purge-bucket',
  itemKinds: [],
  planPage: (db, job) =>
    planInTx(db, async (q) => {
      const cursor = (job.cursor as PurgeCursor | null) ?? { phase: 'keys', after: '' };
      const delayMs = Number(job.params.cleanupDelayMs ?? 0);
      if (cursor.phase === 'keys') {
        const { rows } = await run<{ key: string; size: number }>(q, jq.purgePage(job.target, cursor.after, PAGE));
        const keys = await lockKeys(q, job.target, rows.map((r) => r.key));
        const retired = new Set(await retireLive(q, job.target, keys, 'purge', delayMs));
        const gone = rows.filter((r) => retired.has(r.key));
        const next: PurgeCursor = rows.length < PAGE ? { phase: 'uploads', after: '' } : { phase: 'keys', after: rows.at(-1)!.key };
        await recordPage(q, job.id, {
          cursor: next,
          items: gone.length,
          bytes: gone.reduce((n, r) => n + Number(r.size), 0),
          planned: false,
          message: 'deleting objects',
        });
        return 'more';
      }
      const { rows } = await run<{ upload_id: string }>(q, jq.bucketUploads(job.target, PAGE));
      for (const u of rows) await dropUpload(q, u.upload_id, ['active'], 'purge');
      const done = rows.length < PAGE;
      await recordPage(q, job.id, {
        cursor: cursor,
        items: 0,
        bytes: 0,
        planned: done,
        message: done ? 'waiting for writes in progress' : 'aborting multipart uploads',
      });
      return done ? 'done' : 'more';
    }),
  finish: async (q, job): Promise<FinishDecision> => {
    const left = (
      await run<{ live: number; pending: number; uploads: number; completing: number; bucket: number }>(q, jq.bucketLeftovers(job.target))
    ).rows[0]!;
    if (Number(left.bucket) === 0) return { outcome: 'done', message: `bucket ${job.target} is gone` };
    if (Number(left.live) > 0 || Number(left.uploads) > 0) {
      return { outcome: 'replan', message: `${left.live} object(s) and ${left.uploads} upload(s) appeared during the purge; purging again` };
    }
    if (Number(left.pending) > 0 || Number(left.completing) > 0) {
      return { outcome: 'wait', message: `waiting for ${left.pending} write(s) and ${left.completing} completion(s) in progress` };
    }
    await run(q, jq.deleteBucket(job.target));
    // Every instance's caches drop the bucket (and the grants that went with it) when this commits.
    await run(q, notifySql(`buckets\n${job.target}`));
    await run(q, notifySql('credentials'));
    return { outcome: 'done', message: `bucket ${job.target} emptied and deleted` };
  },
};

/**
 * Starts purging a bucket in the caller's transaction (BucketService.Delete with `force` can mark the
 * bucket and start the purge atomically). Idempotent: a bucket already being purged returns its open
 * job. Fails NotFound for an unknown bucket. `cleanupDelayMs` delays the physical deletions like an
 * ordinary delete (`workers.cleanup_delay`), so reads that already started can finish.
 */
export async function startBucketPurge(
  q: Queryable,
  bucket: string,
  opts: { cleanupDelayMs?: number; createdBy?: string } = {},
): Promise<{ jobId: number; existing: boolean }> {
  if (bucket === '') throw new JobError('InvalidArgument', 'bucket is required', 'bucket');
  const open = await openJob(q, 'purge-bucket', bucket);
  if (open) return { jobId: Number(open.id), existing: true };
  const totals = (await run<{ objects: number; bytes: number }>(q, jq.bucketTotals(bucket))).rows[0];
  if (!totals) throw new JobError('NotFound', `bucket ${JSON.stringify(bucket)} does not exist`);
  const params = { cleanupDelayMs: opts.cleanupDelayMs ?? 0, estimate: { items: Number(totals.objects), bytes: Number(totals.bytes) } };
  const job: JobRow | undefined = await createJob(q, 'purge-bucket', bucket, params, opts.createdBy ?? '');
  if (!job) throw new JobError('FailedPrecondition', `a purge of bucket ${JSON.stringify(bucket)} is already open`);
  return { jobId: Number(job.id), existing: false };
}
