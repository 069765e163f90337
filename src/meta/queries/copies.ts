import type { Sql } from '../db.js';
import { PUBLISH_COLUMNS, VERSION_RETURNING, publishValues, type PublishRow } from './objects.js';

/**
 * The statements that change physical copies (object_copies), the quota counters that follow them and the
 * delete-copy tasks they imply. Only src/core/copies.ts may use this module (the layering test checks it):
 * that is what makes the quota ledger provable — every change of a counter is one of these statements.
 *
 * Ledger, per backend:  used_bytes   = Σ live and bad copies' size + Σ releaseBytes of queued delete-copy tasks
 *                        object_count = Σ live and bad copies       + Σ releaseObjects of those tasks
 *                        reserved     = Σ pending copies' size + Σ multipart uploads' reserved_bytes
 */

/** A delete-copy task's payload, as a SQL expression over columns backend, physical_key, bytes, objects. */
function deletePayload(bytes: string, objects: string, reason: string, uploadId = 'NULL::text'): string {
  return `jsonb_strip_nulls(jsonb_build_object('backend', backend, 'physicalKey', physical_key, 'uploadId', ${uploadId},
            'releaseBytes', ${bytes}, 'releaseObjects', ${objects}, 'reason', (${reason})::text))`;
}

const DELAY = (i: number) => `now() + ($${i}::double precision * interval '1 millisecond')`;

/**
 * Stages a write in ONE statement: reserves `size` bytes on `backend` if it is active and they fit under its
 * quota (the UPDATE's row lock serialises concurrent reservations, so a quota cannot be overshot) and, only
 * then, inserts the pending version and its pending copy. Returns one row on success.
 */
export function stageWrite(v: { versionId: string; bucket: string; key: string; size: number; backend: string; physicalKey: string }): Sql {
  return {
    text: `WITH r AS (UPDATE backends SET reserved_bytes = reserved_bytes + $4
                      WHERE name = $5 AND state = 'active'
                        AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $4 <= quota_bytes)
                      RETURNING name),
                v AS (INSERT INTO object_versions (version_id, bucket, key, state, size)
                      SELECT $1, $2, $3, 'pending', $4 FROM r RETURNING version_id),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT version_id, $5, $6, $4, 'pending' FROM v RETURNING version_id)
           SELECT version_id FROM c`,
    values: [v.versionId, v.bucket, v.key, v.size, v.backend, v.physicalKey],
  };
}

/**
 * Publishes a staged write in ONE statement: the pending version becomes live, its copies become live, each
 * copy's reservation becomes used bytes and one object, and the bucket's counters get a delta. Returns the
 * published row (none when the version is no longer pending: the janitor took it).
 */
export function publishWrite(versionId: string, v: PublishRow): Sql {
  return {
    text: `WITH v AS (UPDATE object_versions SET state = 'live', (${PUBLISH_COLUMNS}) =
                        ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16), created_at = now()
                      WHERE version_id = $1 AND state = 'pending'
                      RETURNING ${VERSION_RETURNING}),
                c AS (UPDATE object_copies SET state = 'live'
                      WHERE version_id IN (SELECT version_id FROM v) AND state = 'pending' RETURNING backend, size),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - c.size,
                        used_bytes = backends.used_bytes + c.size, object_count = backends.object_count + 1
                      FROM c WHERE backends.name = c.backend RETURNING 1),
                s AS (INSERT INTO bucket_stat_deltas (bucket, objects, bytes) SELECT bucket, 1, size FROM v RETURNING 1)
           SELECT v.*, (SELECT count(*) FROM b)::int8 AS settled, (SELECT count(*) FROM s)::int8 AS counted FROM v`,
    values: [versionId, ...publishValues(v)],
  };
}

/**
 * Drops a version ONLY while it is pending (an abort never touches a committed version, whatever the
 * caller believes) and returns the copies it had; their reservations become used bytes and a delete-copy
 * task is queued for each, in the same statement.
 */
export function dropPending(versionId: string, reason: string): Sql {
  return {
    text: `WITH c AS (SELECT backend, physical_key, size FROM object_copies WHERE version_id = $1),
                d AS (DELETE FROM object_versions WHERE version_id = $1 AND state = 'pending' RETURNING version_id),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - x.size, used_bytes = backends.used_bytes + x.size
                      FROM (SELECT backend, sum(size) AS size FROM c, d GROUP BY backend) x WHERE backends.name = x.backend RETURNING 1),
                t AS (INSERT INTO tasks (kind, payload)
                      SELECT 'delete-copy', ${deletePayload('size', '0', '$2')} FROM c, d RETURNING 1)
           SELECT c.backend, c.physical_key, c.size FROM c, d`,
    values: [versionId, reason],
  };
}

/** The state of a version ('pending' | 'live'), no row when it does not exist. */
export function versionState(versionId: string): Sql {
  return { text: `SELECT state FROM object_versions WHERE version_id = $1`, values: [versionId] };
}

/** A live version by id. */
export function selectLiveVersion(versionId: string): Sql {
  return { text: `SELECT ${VERSION_RETURNING} FROM object_versions WHERE version_id = $1 AND state = 'live'`, values: [versionId] };
}

/**
 * Queues the deletion of a physical key that no ledger entry counts (bytes a writer may have stored after
 * its write was taken for abandoned and already queued for deletion): releases nothing.
 */
export function queueUncountedDelete(backend: string, physicalKey: string, reason: string, delayMs: number, uploadId?: string): Sql {
  return {
    text: `INSERT INTO tasks (kind, payload, run_after)
           SELECT 'delete-copy', ${deletePayload('0', '0', '$3', '$5::text')}, ${DELAY(4)}
           FROM (SELECT $1::text AS backend, $2::text AS physical_key) k`,
    values: [backend, physicalKey, reason, delayMs, uploadId ?? null],
  };
}

/**
 * Retires the live versions of `keys` (delete or overwrite) and, in the same statement, queues a
 * delete-copy task for every copy they had (the outbox) and records the bucket delta. The copies' bytes and
 * objects stay counted until the task has deleted them (a live or bad copy: its size and one object; a
 * pending copy that repair or a move was making: its reservation becomes used bytes, no object). Returns the
 * keys that had a live version. Callers hold the keys' advisory locks (so does the copy-version task when it
 * adds or publishes a copy: the copies seen here are all the version has).
 */
export function retireLive(bucket: string, keys: readonly string[], reason: string, delayMs: number): Sql {
  return {
    text: `WITH v AS (SELECT version_id, key, size FROM object_versions
                      WHERE bucket = $1 AND key = ANY($2::text[]) AND state = 'live' FOR UPDATE),
                c AS (SELECT backend, physical_key, size, state FROM object_copies WHERE version_id IN (SELECT version_id FROM v)),
                d AS (DELETE FROM object_versions WHERE version_id IN (SELECT version_id FROM v) RETURNING key, size),
                r AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - x.size, used_bytes = backends.used_bytes + x.size
                      FROM (SELECT backend, sum(size) AS size FROM c WHERE state = 'pending' GROUP BY backend) x
                      WHERE backends.name = x.backend RETURNING 1),
                t AS (INSERT INTO tasks (kind, payload, run_after)
                      SELECT 'delete-copy', ${deletePayload('size', "CASE WHEN state = 'pending' THEN 0 ELSE 1 END", '$3')}, ${DELAY(4)} FROM c RETURNING 1),
                s AS (INSERT INTO bucket_stat_deltas (bucket, objects, bytes)
                      SELECT $1, -count(*), -coalesce(sum(size), 0) FROM d HAVING count(*) > 0 RETURNING 1)
           SELECT key, (SELECT count(*) FROM t)::int8 AS jobs, (SELECT count(*) FROM s)::int8 AS counted FROM d`,
    values: [bucket, keys, reason, delayMs],
  };
}

/**
 * Publishes an object assembled by a backend (multipart completion) in ONE statement: the live version,
 * its live copy, the upload's reservation settled into used bytes and one object, the bucket delta, and
 * the upload row removed. Returns the version row (none if the upload was no longer completing).
 */
export function publishAssembled(
  id: { versionId: string; bucket: string; key: string; size: number; uploadId: string; backend: string; physicalKey: string },
  v: PublishRow,
): Sql {
  return {
    text: `WITH u AS (DELETE FROM multipart_uploads WHERE upload_id = $20 AND state = 'completing' RETURNING reserved_bytes),
                v AS (INSERT INTO object_versions (version_id, bucket, key, state, size, upload_id, ${PUBLISH_COLUMNS})
                      SELECT $1, $2, $3, 'live', $4, $20, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19 FROM u
                      RETURNING ${VERSION_RETURNING}),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT version_id, $21, $22, $4, 'live' FROM v RETURNING 1),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - u.reserved_bytes,
                        used_bytes = backends.used_bytes + $4, object_count = backends.object_count + 1
                      FROM u WHERE backends.name = $21 RETURNING 1),
                s AS (INSERT INTO bucket_stat_deltas (bucket, objects, bytes) SELECT bucket, 1, size FROM v RETURNING 1)
           SELECT v.*, (SELECT count(*) FROM c)::int8 AS copies, (SELECT count(*) FROM b)::int8 AS settled,
                  (SELECT count(*) FROM s)::int8 AS counted FROM v`,
    values: [id.versionId, id.bucket, id.key, id.size, ...publishValues(v), id.uploadId, id.backend, id.physicalKey],
  };
}

/**
 * Drops a multipart upload (abort, abandoned, failed or stale completion) with every target it has: each
 * target's reservation becomes used bytes, released by the delete-copy task that aborts its native upload
 * and deletes the (possibly assembled) physical key. `states` limits which uploads may be dropped.
 * Returns the dropped upload's first target.
 */
export function dropUpload(uploadId: string, states: readonly string[], reason: string): Sql {
  return {
    text: `WITH u AS (DELETE FROM multipart_uploads WHERE upload_id = $1 AND state = ANY($2::text[])
                      RETURNING upload_id, backend, physical_key, backend_upload_id, reserved_bytes),
                r AS (DELETE FROM multipart_replicas WHERE upload_id IN (SELECT upload_id FROM u)
                      RETURNING backend, backend_upload_id, reserved_bytes),
                p AS (DELETE FROM multipart_part_replicas WHERE upload_id IN (SELECT upload_id FROM u) RETURNING 1),
                x AS (SELECT backend, physical_key, backend_upload_id, reserved_bytes FROM u
                      UNION ALL SELECT r.backend, u.physical_key, r.backend_upload_id, r.reserved_bytes FROM r, u),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - x.reserved_bytes,
                        used_bytes = backends.used_bytes + x.reserved_bytes FROM x WHERE backends.name = x.backend RETURNING 1),
                t AS (INSERT INTO tasks (kind, payload)
                      SELECT 'delete-copy', ${deletePayload('reserved_bytes', '0', '$3', 'backend_upload_id')} FROM x RETURNING 1)
           SELECT backend, physical_key, reserved_bytes, (SELECT count(*) FROM p)::int8 AS parts FROM u`,
    values: [uploadId, states, reason],
  };
}

/**
 * Drops some targets of an upload (a target that failed a part or its completion, or every target left
 * once the upload was published): each reservation becomes used bytes, released by the delete-copy task
 * that aborts the target's native upload and deletes its key. Returns the targets dropped.
 */
export function dropUploadReplicas(uploadId: string, physicalKey: string, backends: readonly string[] | null, reason: string): Sql {
  return {
    text: `WITH r AS (DELETE FROM multipart_replicas WHERE upload_id = $1 AND ($3::text[] IS NULL OR backend = ANY($3::text[]))
                      RETURNING backend, $2::text AS physical_key, backend_upload_id, reserved_bytes),
                p AS (DELETE FROM multipart_part_replicas WHERE upload_id = $1 AND backend IN (SELECT backend FROM r) RETURNING 1),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - r.reserved_bytes,
                        used_bytes = backends.used_bytes + r.reserved_bytes FROM r WHERE backends.name = r.backend RETURNING 1),
                t AS (INSERT INTO tasks (kind, payload)
                      SELECT 'delete-copy', ${deletePayload('reserved_bytes', '0', '$4', 'backend_upload_id')} FROM r RETURNING 1)
           SELECT backend, (SELECT count(*) FROM p)::int8 AS parts FROM r`,
    values: [uploadId, physicalKey, backends, reason],
  };
}

/**
 * Publishes the targets of a completed upload that assembled the object, as live copies of the version
 * published from its first target (publishAssembled): each target's reservation is settled into used
 * bytes and one object. Returns the targets published.
 */
export function publishUploadReplicas(uploadId: string, versionId: string, physicalKey: string, size: number, backends: readonly string[]): Sql {
  return {
    text: `WITH r AS (DELETE FROM multipart_replicas WHERE upload_id = $1 AND backend = ANY($5::text[]) RETURNING backend, reserved_bytes),
                p AS (DELETE FROM multipart_part_replicas WHERE upload_id = $1 AND backend IN (SELECT backend FROM r) RETURNING 1),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT $2, backend, $3, $4, 'live' FROM r RETURNING 1),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - r.reserved_bytes,
                        used_bytes = backends.used_bytes + $4, object_count = backends.object_count + 1
                      FROM r WHERE backends.name = r.backend RETURNING 1)
           SELECT backend, (SELECT count(*) FROM c)::int8 AS copies, (SELECT count(*) FROM p)::int8 AS parts FROM r`,
    values: [uploadId, versionId, physicalKey, size, backends],
  };
}

/**
 * A delete-copy task is done: releases its bytes and objects. No clamping: a counter that would go
 * negative violates the CHECK constraint and fails loudly (the ledger would be wrong).
 */
export function releaseDeleted(backend: string, bytes: number, objects: number): Sql {
  return {
    text: `UPDATE backends SET used_bytes = used_bytes - $2, object_count = object_count - $3, updated_at = now() WHERE name = $1`,
    values: [backend, bytes, objects],
  };
}

/** True when some copy row still points at this physical key (then it must not be deleted). */
export function physicalKeyReferenced(backend: string, physicalKey: string): Sql {
  return { text: `SELECT 1 FROM object_copies WHERE backend = $1 AND physical_key = $2`, values: [backend, physicalKey] };
}

/** Folds up to `limit` bucket deltas into bucket_stats in one statement; returns how many were folded. */
export function foldBucketDeltas(limit: number): Sql {
  return {
    text: `WITH d AS (DELETE FROM bucket_stat_deltas WHERE id IN (SELECT id FROM bucket_stat_deltas ORDER BY id LIMIT $1)
                      RETURNING bucket, objects, bytes),
                g AS (SELECT bucket, sum(objects)::int8 AS objects, sum(bytes)::int8 AS bytes FROM d GROUP BY bucket),
                i AS (INSERT INTO bucket_stats (bucket, object_count, total_bytes)
                      SELECT g.bucket, g.objects, g.bytes FROM g JOIN buckets b ON b.name = g.bucket
                      ON CONFLICT (bucket) DO UPDATE SET object_count = bucket_stats.object_count + EXCLUDED.object_count,
                        total_bytes = bucket_stats.total_bytes + EXCLUDED.total_bytes
                      RETURNING 1)
           SELECT (SELECT count(*) FROM d)::int8 AS folded, (SELECT count(*) FROM i)::int8 AS buckets`,
    values: [limit],
  };
}

/**
 * One more pending copy of a version that is still being written (replication: a second destination, or
 * one replacing a destination that failed early): reserves `size` bytes on `backend` when it is active and
 * has room, and inserts the pending copy, in ONE statement. No row when the backend has no room or the
 * version is no longer pending.
 */
export function stageExtraCopy(c: { versionId: string; backend: string; size: number; physicalKey: string }): Sql {
  return {
    text: `WITH v AS (SELECT version_id FROM object_versions WHERE version_id = $1 AND state = 'pending'),
                r AS (UPDATE backends SET reserved_bytes = reserved_bytes + $3
                      WHERE name = $2 AND state = 'active' AND EXISTS (SELECT 1 FROM v)
                        AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $3 <= quota_bytes)
                      RETURNING name),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT $1, name, $4, $3, 'pending' FROM r RETURNING backend)
           SELECT backend FROM c`,
    values: [c.versionId, c.backend, c.size, c.physicalKey],
  };
}

/** The replica count wanted for a bucket's versions (its own, else `fallback`); no row for an unknown bucket. */
export function bucketReplicas(bucket: string, fallback: number): Sql {
  return { text: `SELECT coalesce(replicas, $2)::int AS replicas FROM buckets WHERE name = $1`, values: [bucket, fallback] };
}

// ---- Replication: copies added to, and retired from, a live version (repair, moves, scrub). ----

/**
 * Reserves `size` bytes on an ACTIVE backend with room and inserts a pending copy of a live version owned
 * by task `taskId`, in ONE statement (the reservation's row lock serialises concurrent reservations).
 * Returns one row on success, none when the backend is not active or has no room.
 */
export function reserveCopy(c: { versionId: string; backend: string; physicalKey: string; size: number; taskId: number }): Sql {
  return {
    text: `WITH r AS (UPDATE backends SET reserved_bytes = reserved_bytes + $4
                      WHERE name = $2 AND state = 'active'
                        AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $4 <= quota_bytes)
                      RETURNING name),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state, task_id)
                      SELECT $1, name, $3, $4, 'pending', $5 FROM r RETURNING backend)
           SELECT backend FROM c`,
    values: [c.versionId, c.backend, c.physicalKey, c.size, c.taskId],
  };
}

/**
 * Publishes the pending copy task `taskId` made of a live version: the copy becomes live (verified now),
 * its reservation becomes used bytes and one object. Returns the copy, none when it is no longer there.
 */
export function publishCopy(versionId: string, backend: string, taskId: number): Sql {
  return {
    text: `WITH c AS (UPDATE object_copies SET state = 'live', task_id = NULL, verified_at = now()
                      WHERE version_id = $1 AND backend = $2 AND task_id = $3 AND state = 'pending'
                        AND EXISTS (SELECT 1 FROM object_versions v WHERE v.version_id = $1 AND v.state = 'live')
                      RETURNING backend, size),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - c.size,
                        used_bytes = backends.used_bytes + c.size, object_count = backends.object_count + 1, updated_at = now()
                      FROM c WHERE backends.name = c.backend RETURNING 1)
           SELECT backend, size, (SELECT count(*) FROM b)::int8 AS settled FROM c`,
    values: [versionId, backend, taskId],
  };
}

/**
 * Retires live or bad copies of a version on `backends`: the rows go and a delete-copy task per copy is
 * queued after `delayMs` (the bytes and the object stay counted until it ran). Returns the retired copies.
 * The caller makes sure a good copy remains (repair never retires the last one).
 */
export function retireCopies(versionId: string, backends: readonly string[], reason: string, delayMs: number): Sql {
  return {
    text: `WITH c AS (DELETE FROM object_copies WHERE version_id = $1 AND backend = ANY($2::text[]) AND state IN ('live', 'bad')
                      RETURNING backend, physical_key, size),
                t AS (INSERT INTO tasks (kind, payload, run_after)
                      SELECT 'delete-copy', ${deletePayload('size', '1', '$3')}, ${DELAY(4)} FROM c RETURNING 1)
           SELECT backend, physical_key, size, (SELECT count(*) FROM t)::int8 AS jobs FROM c`,
    values: [versionId, backends, reason, delayMs],
  };
}

/**
 * Drops the PENDING copies of a version on `backends` (destinations that failed while the version is
 * written, or a copy whose copy-version task died): each reservation becomes used bytes, released by the
 * delete-copy task queued for its key (the bytes may have landed).
 */
export function dropPendingCopies(versionId: string, backends: readonly string[], reason: string): Sql {
  return {
    text: `WITH c AS (DELETE FROM object_copies WHERE version_id = $1 AND backend = ANY($2::text[]) AND state = 'pending'
                      RETURNING backend, physical_key, size),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - x.size, used_bytes = backends.used_bytes + x.size
                      FROM (SELECT backend, sum(size) AS size FROM c GROUP BY backend) x WHERE backends.name = x.backend RETURNING 1),
                t AS (INSERT INTO tasks (kind, payload) SELECT 'delete-copy', ${deletePayload('size', '0', '$3')} FROM c RETURNING 1)
           SELECT backend FROM c`,
    values: [versionId, backends, reason],
  };
}

/** Marks a live copy bad (never read again; still counted until retired). Returns the row when it was live. */
export function markBad(versionId: string, backend: string, reason: string): Sql {
  return {
    text: `UPDATE object_copies SET state = 'bad', bad_reason = $3 WHERE version_id = $1 AND backend = $2 AND state = 'live'
           RETURNING backend`,
    values: [versionId, backend, reason.slice(0, 500)],
  };
}

/** A bad copy that verified again becomes live (counters unchanged: bad copies are counted like live ones). */
export function restoreBad(versionId: string, backend: string): Sql {
  return {
    text: `UPDATE object_copies SET state = 'live', bad_reason = NULL, verified_at = now()
           WHERE version_id = $1 AND backend = $2 AND state = 'bad' RETURNING backend`,
    values: [versionId, backend],
  };
}

/** Records that scrub verified these live copies now (parallel arrays of version ids and backends). */
export function markVerified(versionIds: readonly string[], backends: readonly string[]): Sql {
  return {
    text: `UPDATE object_copies c SET verified_at = now()
           FROM unnest($1::text[], $2::text[]) AS u(version_id, backend)
           WHERE c.version_id = u.version_id AND c.backend = u.backend AND c.state = 'live'`,
    values: [versionIds, backends],
  };
}

/**
 * Stages a replicated write in ONE statement: among `ranked` (in that order), the first `count` ACTIVE
 * backends with room for `size` are locked and — only when at least `quorum` of them are — each reserves
 * `size` bytes and gets a pending copy, with the pending version. Returns the backends of the copies
 * (none when fewer than `quorum` had room: nothing was changed).
 */
export function stageReplicated(v: {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  physicalKey: string;
  ranked: readonly string[];
  count: number;
  quorum: number;
}): Sql {
  return {
    // Every candidate row is locked in NAME order first (the one order every statement that changes several
    // backends' counters follows: no deadlocks); the room check reads the locked (latest) row versions.
    text: `WITH lk AS (SELECT name, state, quota_bytes, used_bytes, reserved_bytes FROM backends
                       WHERE name = ANY($6::text[]) ORDER BY name FOR UPDATE),
                pick AS (SELECT name FROM lk
                         WHERE state = 'active' AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $4 <= quota_bytes)
                         ORDER BY array_position($6::text[], name) LIMIT $7),
                ok AS (SELECT count(*) AS n FROM pick HAVING count(*) >= $8),
                r AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes + $4
                      FROM pick WHERE backends.name = pick.name AND EXISTS (SELECT 1 FROM ok) RETURNING backends.name),
                v AS (INSERT INTO object_versions (version_id, bucket, key, state, size)
                      SELECT $1, $2, $3, 'pending', $4 WHERE EXISTS (SELECT 1 FROM ok) RETURNING version_id),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT v.version_id, r.name, $5, $4, 'pending' FROM r, v RETURNING backend)
           SELECT backend FROM c ORDER BY array_position($6::text[], backend)`,
    values: [v.versionId, v.bucket, v.key, v.size, v.physicalKey, v.ranked, v.count, v.quorum],
  };
}

/**
 * Locks the rows of `backends` in name order — the order every transaction that changes several backends'
 * counters takes them in, so that two of them never deadlock. Call first in such a transaction.
 */
export function lockBackendRows(backends: readonly string[]): Sql {
  return { text: `SELECT name FROM backends WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE`, values: [backends] };
}
