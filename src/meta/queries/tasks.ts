import type { Sql } from '../db.js';

/**
 * SQL of the task queue (table `tasks`, schema 3). Every time comparison is made against the database's
 * clock shifted by `skewMs` (0 in production; tests move it forward to expire leases and backoffs without
 * sleeping), so all instances agree on time.
 */

/** `now()` shifted by the parameter at position `i` (milliseconds). */
function now(i: number): string {
  return `(now() + ($${i}::double precision * interval '1 millisecond'))`;
}

/** A claimed task as the queue returns it. */
export interface TaskRow {
  id: number;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  lease_token: number;
  job_id: number | null;
  progress: Record<string, unknown> | null;
}

export interface EnqueueOptions {
  delayMs?: number;
  /** At most one queued or active task per key; a second enqueue with the same key is a no-op. */
  singletonKey?: string;
  jobId?: number;
  maxAttempts?: number;
}

/** Inserts one task (in the caller's transaction). Returns its id, or no row for a duplicate singleton. */
export function enqueue(kind: string, payload: unknown, opts: EnqueueOptions, skewMs: number): Sql {
  return {
    text: `INSERT INTO tasks (kind, payload, run_after, singleton_key, job_id, max_attempts)
           VALUES ($1, $2, ${now(7)} + ($3::double precision * interval '1 millisecond'), $4, $5, coalesce($6, 25))
           ON CONFLICT (singleton_key) WHERE singleton_key IS NOT NULL AND state <> 'dead' DO NOTHING
           RETURNING id`,
    values: [kind, JSON.stringify(payload), opts.delayMs ?? 0, opts.singletonKey ?? null, opts.jobId ?? null, opts.maxAttempts ?? null, skewMs],
  };
}

/**
 * Claims up to `limit` due tasks of the given kinds in ONE statement: queued tasks whose time has come and
 * active tasks whose lease expired (their worker died or stalled). Each claim increments `lease_token`;
 * only the holder of the current token can complete or fail the task. Queued tasks of a paused or cancelled
 * job are not claimed (a paused job's queued tasks also wait with run_after = infinity, so they are never
 * scanned; this condition catches those that went back to the queue after a failure); a claim whose
 * worker died is taken over whatever its job's state, so the work it began is finished or undone.
 */
export function claim(kinds: readonly string[], limit: number, leaseMs: number, owner: string, skewMs: number): Sql {
  return {
    text: `WITH next AS (
             SELECT id FROM tasks
             WHERE kind = ANY($1::text[])
               AND ((state = 'queued' AND run_after <= ${now(5)}) OR (state = 'active' AND lease_until < ${now(5)}))
               AND (job_id IS NULL OR state = 'active' OR job_id NOT IN (SELECT j.id FROM jobs j WHERE j.state IN ('paused', 'cancelling', 'cancelled')))
             ORDER BY run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE tasks t SET state = 'active', lease_owner = $4, lease_token = t.lease_token + 1,
             lease_until = ${now(5)} + ($3::double precision * interval '1 millisecond'),
             attempts = t.attempts + 1, updated_at = now()
           FROM next WHERE t.id = next.id
           RETURNING t.id, t.kind, t.payload, t.attempts, t.max_attempts, t.lease_token, t.job_id, t.progress`,
    values: [kinds, limit, leaseMs, owner, skewMs],
  };
}

/**
 * Completes a task: deletes it only if this claim still holds it (same token). Returns the row when it
 * did; the caller applies the task's effects in the same transaction only then.
 */
export function complete(id: number, token: number): Sql {
  return {
    text: `DELETE FROM tasks WHERE id = $1 AND lease_token = $2 AND state = 'active' RETURNING id`,
    values: [id, token],
  };
}

/**
 * A failed attempt: back to the queue after `backoffMs`, or parked as dead once the attempts are spent.
 * Only the current claim can fail the task. Returns the new state.
 */
export function fail(id: number, token: number, backoffMs: number, error: string, skewMs: number): Sql {
  return {
    text: `UPDATE tasks SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
             lease_owner = NULL, lease_until = NULL, last_error = $4, updated_at = now(),
             run_after = ${now(5)} + ($3::double precision * interval '1 millisecond')
           WHERE id = $1 AND lease_token = $2 AND state = 'active' RETURNING state`,
    values: [id, token, backoffMs, error.slice(0, 2000), skewMs],
  };
}

/** Extends a held lease (long tasks) and records progress; no row when the lease was lost. */
export function extendLease(id: number, token: number, leaseMs: number, progress: unknown, skewMs: number): Sql {
  return {
    text: `UPDATE tasks SET lease_until = ${now(5)} + ($3::double precision * interval '1 millisecond'),
             progress = coalesce($4, progress), updated_at = now()
           WHERE id = $1 AND lease_token = $2 AND state = 'active' RETURNING id`,
    values: [id, token, leaseMs, progress === undefined ? null : JSON.stringify(progress), skewMs],
  };
}

/** Task counts by kind and state (metrics, admin). */
export function countByState(): Sql {
  return { text: `SELECT kind, state, count(*)::int8 AS n FROM tasks GROUP BY kind, state ORDER BY kind, state`, values: [] };
}

/** Removes dead tasks older than the retention. Returns how many. */
export function purgeDead(retentionMs: number, limit: number, skewMs: number): Sql {
  return {
    text: `DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE state = 'dead'
               AND updated_at < ${now(3)} - ($1::double precision * interval '1 millisecond')
             ORDER BY updated_at LIMIT $2)
           RETURNING id`,
    values: [retentionMs, limit, skewMs],
  };
}

/** A dead task back to the queue (admin retry). */
export function requeueDead(id: number): Sql {
  return {
    text: `UPDATE tasks SET state = 'queued', attempts = 0, run_after = now(), updated_at = now()
           WHERE id = $1 AND state = 'dead' RETURNING id`,
    values: [id],
  };
}
