import type { Db } from '../meta/db.js';
import * as bq from '../meta/queries/backends.js';
import * as jq from '../meta/queries/jobs.js';
import * as mq from '../meta/queries/multipart.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BackendRegistry } from './backends.js';
import { abortUploadIn } from './multipart.js';
import { abortIn, run } from './writes.js';

/** Lease on a claimed job: a worker that dies mid-job gives it back after this long. */
const LEASE_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;

export interface CleanupDeps {
  db: Db;
  backends: BackendRegistry;
  log: Logger;
  metrics?: Metrics;
}

/** Backoff after the n-th failed attempt: 1 s, 2 s, 4 s … capped at one hour. */
export function backoffMs(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

/**
 * Claims up to `limit` due cleanup jobs and deletes exactly the physical key each names. Quota is
 * released only once the delete succeeded. A job whose key is still referenced by a copy row is dropped
 * without deleting anything (defence in depth: generation-unique keys make that impossible by design).
 * Returns how many jobs were claimed.
 */
export async function runCleanupBatch(deps: CleanupDeps, limit = 32): Promise<number> {
  const { rows: jobs } = await run<jq.CleanupJobRow>(deps.db, jq.claimCleanup(limit, LEASE_MS));
  await Promise.all(jobs.map((job) => runJob(deps, job)));
  return jobs.length;
}

async function runJob(deps: CleanupDeps, job: jq.CleanupJobRow): Promise<void> {
  try {
    const ref = await run(deps.db, jq.physicalKeyReferenced(job.backend, job.physical_key));
    if (ref.rowCount > 0) {
      deps.log.error('cleanup job names a key that live metadata references; dropping the job, keeping the bytes', {
        job: job.id,
        backend: job.backend,
        physicalKey: job.physical_key,
      });
      await run(deps.db, jq.deleteJob(job.id));
      deps.metrics?.cleanupJobs.inc({ outcome: 'refused' });
      return;
    }
    const backend = deps.backends.get(job.backend);
    if (!backend) throw new Error(`backend ${job.backend} is not configured`);
    if (job.upload_id) await backend.abortMultipart(job.physical_key, job.upload_id);
    await backend.delete(job.physical_key);
    await deps.db.tx(async (q) => {
      await run(q, jq.deleteJob(job.id));
      await run(q, bq.releaseUsed(job.backend, job.release_bytes, job.release_objects));
    });
    deps.metrics?.cleanupJobs.inc({ outcome: 'done' });
  } catch (err) {
    const delay = backoffMs(job.attempts);
    deps.log.warn('cleanup job failed; will retry', { job: job.id, backend: job.backend, attempts: job.attempts, delayMs: delay, err });
    deps.metrics?.cleanupJobs.inc({ outcome: 'retry' });
    await run(deps.db, jq.retryJob(job.id, delay, err instanceof Error ? err.message : String(err))).catch(() => {});
  }
}

/** Aborts multipart uploads started more than `maxAgeMs` ago. Returns the count. */
export async function abortAbandonedUploads(db: Db, maxAgeMs: number, limit = 100): Promise<number> {
  return db.tx(async (q) => {
    const { rows } = await run<mq.UploadRow>(q, mq.selectAbandoned(maxAgeMs, limit));
    for (const u of rows) await abortUploadIn(q, u, 'abandoned-upload');
    return rows.length;
  });
}

/**
 * Aborts pending writes whose heartbeat stopped (their instance died mid-upload): drops their rows,
 * turns their reservations into used bytes and queues their partial bytes for deletion. Returns the count.
 */
export async function abortStaleWrites(db: Db, staleMs: number, limit = 100): Promise<number> {
  return db.tx(async (q) => {
    const { rows } = await run<{ version_id: string }>(q, oq.selectStalePending(staleMs, limit));
    for (const r of rows) await abortIn(q, r.version_id, 'stale-write');
    return rows.length;
  });
}
