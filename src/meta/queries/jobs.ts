import type { Sql } from '../db.js';

/** A claimed cleanup job. */
export interface CleanupJobRow {
  id: number;
  backend: string;
  physical_key: string;
  release_bytes: number;
  release_objects: number;
  reason: string;
  attempts: number;
  /** Set when the job must first abort this native multipart upload. */
  upload_id: string | null;
}

/** Queues the deletion of one physical key, `delayMs` from now (same transaction as the metadata change). */
export function enqueueCleanup(job: {
  backend: string;
  physicalKey: string;
  releaseBytes: number;
  releaseObjects: number;
  reason: string;
  delayMs: number;
}): Sql {
  return {
    text: `INSERT INTO cleanup_jobs (backend, physical_key, release_bytes, release_objects, reason, run_after)
           VALUES ($1, $2, $3, $4, $5, now() + ($6::double precision * interval '1 millisecond'))`,
    values: [job.backend, job.physicalKey, job.releaseBytes, job.releaseObjects, job.reason, job.delayMs],
  };
}

/**
 * Claims up to `limit` due jobs in one statement. A claimed job is leased for `leaseMs`; if its worker dies
 * the lease expires and another worker takes it. SKIP LOCKED keeps concurrent workers off each other's rows.
 */
export function claimCleanup(limit: number, leaseMs: number): Sql {
  return {
    text: `WITH next AS (
             SELECT id FROM cleanup_jobs
             WHERE run_after <= now() AND (locked_until IS NULL OR locked_until < now())
             ORDER BY run_after, id LIMIT $1 FOR UPDATE SKIP LOCKED)
           UPDATE cleanup_jobs j SET locked_until = now() + ($2::double precision * interval '1 millisecond'),
             attempts = j.attempts + 1
           FROM next WHERE j.id = next.id
           RETURNING j.id, j.backend, j.physical_key, j.release_bytes, j.release_objects, j.reason, j.attempts, j.upload_id`,
    values: [limit, leaseMs],
  };
}

/** True when some copy row still points at this physical key (then the job must not delete it). */
export function physicalKeyReferenced(backend: string, physicalKey: string): Sql {
  return {
    text: `SELECT 1 FROM object_copies WHERE backend = $1 AND physical_key = $2`,
    values: [backend, physicalKey],
  };
}

export function deleteJob(id: number): Sql {
  return { text: `DELETE FROM cleanup_jobs WHERE id = $1`, values: [id] };
}

/** Schedules a retry with the given backoff and records the error. */
export function retryJob(id: number, backoffMs: number, error: string): Sql {
  return {
    text: `UPDATE cleanup_jobs SET locked_until = NULL, last_error = $3,
             run_after = now() + ($2::double precision * interval '1 millisecond') WHERE id = $1`,
    values: [id, backoffMs, error.slice(0, 2000)],
  };
}
