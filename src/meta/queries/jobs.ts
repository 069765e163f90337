import type { Sql } from '../db.js';

/**
 * SQL of jobs (table `jobs`, schema 7): a job owns many tasks (tasks.job_id). Its progress is an
 * aggregate — totals recorded by its planner once per page, what is left counted from its tasks — so no
 * task ever updates the job row. State changes lock the job row, and the planner's page (tasks inserted
 * plus cursor) is conditioned on the job still running in the same transaction, so a pause or a cancel
 * and a page being planned never interleave.
 */

/** A row of `jobs`. */
export interface JobRow {
  id: number;
  kind: string;
  target: string;
  state: string;
  params: Record<string, unknown>;
  cursor: Record<string, unknown> | null;
  planned: boolean;
  passes: number;
  items_total: number;
  bytes_total: number;
  message: string;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** What is left of a job's work, counted from its tasks. */
export interface JobTaskCounts {
  job_id: number;
  queued: number;
  active: number;
  dead: number;
  /** Items still queued or running (planner tasks excluded). */
  items_left: number;
  /** Bytes of the versions those items move. */
  bytes_left: number;
  /** Tasks that failed at least once (their last error is kept). */
  errors: number;
  last_error: string | null;
}

const COLUMNS = `id, kind, target, state, params, cursor, planned, passes, items_total, bytes_total,
  message, created_by, created_at, updated_at, finished_at`;

/** The job states in which a job still has work to do or finish. */
export const OPEN_STATES = ['running', 'paused', 'cancelling'] as const;

/** Inserts a job unless one of the same kind and target is open (then no row). */
export function insertJob(kind: string, target: string, params: unknown, createdBy: string): Sql {
  return {
    text: `INSERT INTO jobs (kind, target, params, created_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (kind, target) WHERE state IN ('running', 'paused', 'cancelling') DO NOTHING
           RETURNING ${COLUMNS}`,
    values: [kind, target, JSON.stringify(params ?? {}), createdBy],
  };
}

/** The open job of a kind and target, if any. */
export function selectOpenJob(kind: string, target: string): Sql {
  return {
    text: `SELECT ${COLUMNS} FROM jobs WHERE kind = $1 AND target = $2 AND state IN ('running', 'paused', 'cancelling')`,
    values: [kind, target],
  };
}

/** One job; `lock` takes its row lock (state changes, planner pages). */
export function selectJob(id: number, lock = false): Sql {
  return { text: `SELECT ${COLUMNS} FROM jobs WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, values: [id] };
}

/** Jobs newest first, optionally of one kind / in some states, before `beforeId` (keyset paging). */
export function listJobs(f: { kind?: string; states?: readonly string[]; beforeId?: number; limit: number }): Sql {
  return {
    text: `SELECT ${COLUMNS} FROM jobs
           WHERE ($1::text IS NULL OR kind = $1) AND ($2::text[] IS NULL OR state = ANY($2::text[]))
             AND ($3::int8 IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4`,
    values: [f.kind ?? null, f.states && f.states.length > 0 ? f.states : null, f.beforeId ?? null, f.limit],
  };
}

/**
 * What is left of each job, from its tasks: items and the bytes of the versions they name (a version
 * overwritten meanwhile counts as done), dead tasks, and tasks that failed at least once.
 */
export function taskCounts(jobIds: readonly number[], planKind: string): Sql {
  return {
    text: `SELECT t.job_id,
             count(*) FILTER (WHERE t.state = 'queued')::int8 AS queued,
             count(*) FILTER (WHERE t.state = 'active')::int8 AS active,
             count(*) FILTER (WHERE t.state = 'dead')::int8 AS dead,
             count(*) FILTER (WHERE t.state <> 'dead' AND t.kind <> $2)::int8 AS items_left,
             coalesce(sum(coalesce(v.size, (t.payload->>'size')::int8, 0)) FILTER (WHERE t.state <> 'dead' AND t.kind <> $2), 0)::int8 AS bytes_left,
             count(*) FILTER (WHERE t.last_error IS NOT NULL)::int8 AS errors,
             (array_agg(t.last_error ORDER BY t.updated_at DESC) FILTER (WHERE t.last_error IS NOT NULL))[1] AS last_error
           FROM tasks t LEFT JOIN object_versions v ON v.version_id = t.payload->>'versionId'
           WHERE t.job_id = ANY($1::int8[])
           GROUP BY t.job_id`,
    values: [jobIds, planKind],
  };
}

/** Sets a job's state when it is in one of `from`; returns the row (none when it was not). */
export function transition(id: number, from: readonly string[], to: string, message?: string): Sql {
  const terminal = ['cancelled', 'done', 'failed'].includes(to);
  return {
    text: `UPDATE jobs SET state = $3, message = coalesce($4, message), updated_at = now()${terminal ? ', finished_at = now()' : ''}
           WHERE id = $1 AND state = ANY($2::text[]) RETURNING ${COLUMNS}`,
    values: [id, from, to, message ?? null],
  };
}

/** Holds a job's queued tasks back (pause): they sort last and are never due. */
export function holdTasks(jobId: number): Sql {
  return {
    text: `UPDATE tasks SET run_after = 'infinity', updated_at = now() WHERE job_id = $1 AND state = 'queued'`,
    values: [jobId],
  };
}

/** Makes a job's held tasks due again (resume); dead ones are given a fresh set of attempts when `dead`. */
export function releaseTasks(jobId: number, dead: boolean): Sql {
  return {
    text: `UPDATE tasks SET run_after = now(), updated_at = now(),
             state = 'queued', attempts = CASE WHEN state = 'dead' THEN 0 ELSE attempts END
           WHERE job_id = $1 AND (state = 'queued' OR ($2 AND state = 'dead'))`,
    values: [jobId, dead],
  };
}

/**
 * Removes a job's queued tasks of the given kinds (cancel) and takes what they would have done off the
 * job's totals, so its progress shows what was really done. Returns the ids deleted. Running ones finish (a move that completes
 * after a cancel is still a correct move); dead ones stay for inspection until the dead-task retention.
 */
export function deleteQueuedTasks(jobId: number, kinds: readonly string[], planKind: string): Sql {
  return {
    text: `WITH d AS (DELETE FROM tasks WHERE job_id = $1 AND state = 'queued' AND kind = ANY($2::text[]) RETURNING id, kind, payload),
                s AS (SELECT count(*) FILTER (WHERE d.kind <> $3) AS items,
                        coalesce(sum(coalesce(v.size, (d.payload->>'size')::int8, 0)) FILTER (WHERE d.kind <> $3), 0) AS bytes
                      FROM d LEFT JOIN object_versions v ON v.version_id = d.payload->>'versionId'),
                j AS (UPDATE jobs SET items_total = greatest(0, items_total - s.items), bytes_total = greatest(0, bytes_total - s.bytes)
                      FROM s WHERE jobs.id = $1 RETURNING 1)
           SELECT d.id FROM d`,
    values: [jobId, kinds, planKind],
  };
}

/**
 * Records one planned page, only while the job is running: the cursor, the totals it added (work the
 * planner did itself counts as done at once: it has no task left), and whether planning is finished. No row: the job was paused or cancelled meanwhile
 * (the caller rolls the page back).
 */
export function recordPage(
  id: number,
  p: { cursor: unknown; items: number; bytes: number; planned: boolean; message?: string },
): Sql {
  return {
    text: `UPDATE jobs SET cursor = $2, items_total = items_total + $3, bytes_total = bytes_total + $4,
             planned = $5, message = coalesce($6, message),
             updated_at = now()
           WHERE id = $1 AND state = 'running' RETURNING id`,
    values: [id, JSON.stringify(p.cursor), p.items, p.bytes, p.planned, p.message ?? null],
  };
}

/** Pending copies a task was making (a move's reserved destination), by task id. */
export function pendingCopiesOfTasks(taskIds: readonly number[]): Sql {
  return {
    text: `SELECT version_id, backend FROM object_copies WHERE task_id = ANY($1::int8[]) AND state = 'pending'`,
    values: [taskIds],
  };
}

/** Starts another planning pass from the beginning (a drain whose backend still holds copies). */
export function replan(id: number, message: string): Sql {
  return {
    text: `UPDATE jobs SET cursor = NULL, planned = false, passes = passes + 1, message = $2, updated_at = now()
           WHERE id = $1 AND state = 'running' RETURNING id`,
    values: [id, message],
  };
}

/** Sets the message of an open job (what it waits for). */
export function setMessage(id: number, message: string): Sql {
  return { text: `UPDATE jobs SET message = $2, updated_at = now() WHERE id = $1 AND message <> $2`, values: [id, message] };
}

/** Ids of the jobs the finisher looks at (running or cancelling). */
export function checkableJobs(limit: number): Sql {
  return { text: `SELECT id FROM jobs WHERE state IN ('running', 'cancelling') ORDER BY id LIMIT $1`, values: [limit] };
}

/** One running or cancelling job, locked; no row when another instance holds it (SKIP LOCKED). */
export function lockCheckableJob(id: number): Sql {
  return {
    text: `SELECT ${COLUMNS} FROM jobs WHERE id = $1 AND state IN ('running', 'cancelling') FOR UPDATE SKIP LOCKED`,
    values: [id],
  };
}

// --- drains -------------------------------------------------------------------------------------------

/** The state of a backend row (none when it does not exist). */
export function backendState(name: string, lock = false): Sql {
  return { text: `SELECT name, state, zone FROM backends WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, values: [name] };
}

/** Sets a backend's state when it is in one of `from`. */
export function setBackendState(name: string, from: readonly string[], to: string): Sql {
  return {
    text: `UPDATE backends SET state = $3, updated_at = now() WHERE name = $1 AND state = ANY($2::text[]) RETURNING name`,
    values: [name, from, to],
  };
}

/**
 * One page of the versions that have a copy on `backend` (live versions only: a pending one is either
 * published later, and found by the next pass, or dropped with its copy), in version order after `after`.
 */
export function drainPage(backend: string, after: string, limit: number): Sql {
  return {
    text: `SELECT c.version_id, v.size FROM object_copies c JOIN object_versions v ON v.version_id = c.version_id
           WHERE c.backend = $1 AND c.version_id > $2 AND v.state = 'live'
           ORDER BY c.version_id LIMIT $3`,
    values: [backend, after, limit],
  };
}

/** What still keeps a drained backend busy: its copies (any state) and multipart uploads in progress. */
export function backendLeftovers(backend: string): Sql {
  return {
    text: `SELECT (SELECT count(*) FROM object_copies WHERE backend = $1)::int8 AS copies,
                  (SELECT count(*) FROM object_copies c JOIN object_versions v ON v.version_id = c.version_id
                    WHERE c.backend = $1 AND v.state = 'live')::int8 AS live_copies,
                  ((SELECT count(*) FROM multipart_uploads WHERE backend = $1) + (SELECT count(*) FROM multipart_replicas WHERE backend = $1))::int8 AS uploads`,
    values: [backend],
  };
}

/** Backends with at least one more active backend than `name` (a drain needs somewhere to go). */
export function otherActiveBackends(name: string): Sql {
  return { text: `SELECT name FROM backends WHERE state = 'active' AND name <> $1 ORDER BY name`, values: [name] };
}

// --- rebalance ------------------------------------------------------------------------------------------

/** Live bytes and copies per backend (what a rebalance can move), with each backend's quota, zone and state. */
export function liveUsage(): Sql {
  return {
    text: `SELECT b.name, b.state, b.zone, b.quota_bytes, b.used_bytes, b.reserved_bytes, b.weight,
             coalesce(u.bytes, 0)::int8 AS live_bytes, coalesce(u.copies, 0)::int8 AS live_copies
           FROM backends b LEFT JOIN (
             SELECT c.backend, sum(c.size) AS bytes, count(*) AS copies FROM object_copies c
             WHERE c.state = 'live' GROUP BY c.backend) u ON u.backend = b.name
           ORDER BY b.name`,
    values: [],
  };
}

/**
 * One page of the live copies on `backend` after `after` (version order), each with the backends and
 * zones of the version's other copies (a move must not land beside one of them).
 */
export function movablePage(backend: string, after: string, limit: number): Sql {
  return {
    text: `SELECT c.version_id, c.size, v.bucket, v.key,
             coalesce((SELECT array_agg(o.backend) FROM object_copies o WHERE o.version_id = c.version_id AND o.backend <> $1), '{}') AS others,
             coalesce((SELECT array_agg(b.zone) FROM object_copies o JOIN backends b ON b.name = o.backend
                       WHERE o.version_id = c.version_id AND o.backend <> $1 AND b.zone IS NOT NULL), '{}') AS other_zones
           FROM object_copies c JOIN object_versions v ON v.version_id = c.version_id
           WHERE c.backend = $1 AND c.state = 'live' AND v.state = 'live' AND c.version_id > $2
             AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.kind = 'copy-version' AND t.payload->>'versionId' = c.version_id)
           ORDER BY c.version_id LIMIT $3`,
    values: [backend, after, limit],
  };
}

// --- bucket purge ---------------------------------------------------------------------------------------

/** A bucket's live object count and bytes (folded counters plus unfolded deltas). */
export function bucketTotals(bucket: string): Sql {
  return {
    text: `SELECT b.name,
             (coalesce(s.object_count, 0) + coalesce((SELECT sum(objects) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS objects,
             (coalesce(s.total_bytes, 0) + coalesce((SELECT sum(bytes) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS bytes
           FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name WHERE b.name = $1`,
    values: [bucket],
  };
}

/** One page of a bucket's live keys in key order after `after`, with their sizes. */
export function purgePage(bucket: string, after: string, limit: number): Sql {
  return {
    text: `SELECT key, size FROM object_versions WHERE bucket = $1 AND state = 'live' AND key > $2 ORDER BY key LIMIT $3`,
    values: [bucket, after, limit],
  };
}

/** Up to `limit` active multipart uploads of a bucket (a purge aborts them; completing ones are waited for). */
export function bucketUploads(bucket: string, limit: number): Sql {
  return {
    text: `SELECT upload_id FROM multipart_uploads WHERE bucket = $1 AND state = 'active' ORDER BY upload_id LIMIT $2`,
    values: [bucket, limit],
  };
}

/** What still keeps a purged bucket from going: versions (live, pending) and uploads (active, completing). */
export function bucketLeftovers(bucket: string): Sql {
  return {
    text: `SELECT (SELECT count(*) FROM object_versions WHERE bucket = $1 AND state = 'live')::int8 AS live,
                  (SELECT count(*) FROM object_versions WHERE bucket = $1 AND state <> 'live')::int8 AS pending,
                  (SELECT count(*) FROM multipart_uploads WHERE bucket = $1 AND state = 'active')::int8 AS uploads,
                  (SELECT count(*) FROM multipart_uploads WHERE bucket = $1 AND state <> 'active')::int8 AS completing,
                  (SELECT count(*) FROM buckets WHERE name = $1)::int8 AS bucket`,
    values: [bucket],
  };
}

/** Deletes an empty bucket row (its grants and counters go with it). */
export function deleteBucket(bucket: string): Sql {
  return {
    text: `DELETE FROM buckets b WHERE name = $1
             AND NOT EXISTS (SELECT 1 FROM object_versions v WHERE v.bucket = b.name)
             AND NOT EXISTS (SELECT 1 FROM multipart_uploads u WHERE u.bucket = b.name)
           RETURNING name`,
    values: [bucket],
  };
}

// --- rebalance when a backend is added ----------------------------------------------------------------

/** The settings row that remembers every backend name seen (placement.rebalance_on_add). */
export const KNOWN_BACKENDS_KEY = 'rebalance.known_backends';

/** Creates the settings row if absent (no row returned when it existed). */
export function insertSetting(key: string, value: string): Sql {
  return { text: `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key`, values: [key, value] };
}

/** A settings row, locked. */
export function lockSetting(key: string): Sql {
  return { text: `SELECT value FROM settings WHERE key = $1 FOR UPDATE`, values: [key] };
}

export function updateSetting(key: string, value: string): Sql {
  return { text: `UPDATE settings SET value = $2 WHERE key = $1`, values: [key, value] };
}

/** Every backend row's name and state. */
export function backendNames(): Sql {
  return { text: `SELECT name, state FROM backends ORDER BY name`, values: [] };
}
