import type { Sql } from '../db.js';

/**
 * The statements of the offline tools (`s3-orchestrator fsck`, core/fsck.ts): what the database says each
 * backend holds, the quota ledger recomputed from the rows, and the counter corrections. Only
 * src/core/fsck.ts may use this module (the layering test checks it): besides the copy layer, it is the one
 * place that writes quota counters, and only to make them equal the ledger again.
 *
 * The ledger (see queries/copies.ts), per backend:
 *   used_bytes     = Σ size of live and bad copies + Σ releaseBytes of delete-copy tasks (any state)
 *   object_count   = number of live and bad copies + Σ releaseObjects of those tasks
 *   reserved_bytes = Σ size of pending copies + Σ reserved_bytes of its multipart uploads and upload targets
 * per bucket: bucket_stats + unfolded deltas = count and Σ size of its live versions.
 */

/** One copy row as fsck compares it with a backend listing. */
export interface AuditCopyRow {
  physical_key: string;
  version_id: string;
  size: number;
  state: 'pending' | 'live' | 'bad';
}

/**
 * A page of a backend's copies in physical-key byte order (the order backends list in), after `after`.
 * Keyset pagination, so a scan of millions of rows costs one index range per page.
 */
export function copiesPage(backend: string, after: string, limit: number): Sql {
  return {
    text: `SELECT physical_key, version_id, size, state FROM object_copies
           WHERE backend = $1 AND physical_key COLLATE "C" > $2
           ORDER BY physical_key COLLATE "C" LIMIT $3`,
    values: [backend, after, limit],
  };
}

/** Physical keys of a backend named by delete-copy tasks (any state) or by multipart uploads in progress. */
export function promisedKeys(backend: string): Sql {
  return {
    text: `SELECT payload->>'physicalKey' AS physical_key FROM tasks WHERE kind = 'delete-copy' AND payload->>'backend' = $1
           UNION SELECT physical_key FROM multipart_uploads WHERE backend = $1
           UNION SELECT u.physical_key FROM multipart_replicas r JOIN multipart_uploads u USING (upload_id) WHERE r.backend = $1`,
    values: [backend],
  };
}

/** Which of `keys` something still accounts for now: a copy row, a delete-copy task or an upload. */
export function accountedKeys(backend: string, keys: readonly string[]): Sql {
  return {
    text: `SELECT physical_key FROM object_copies WHERE backend = $1 AND physical_key = ANY($2::text[])
           UNION SELECT payload->>'physicalKey' FROM tasks
             WHERE kind = 'delete-copy' AND payload->>'backend' = $1 AND payload->>'physicalKey' = ANY($2::text[])
           UNION SELECT physical_key FROM multipart_uploads WHERE backend = $1 AND physical_key = ANY($2::text[])
           UNION SELECT u.physical_key FROM multipart_replicas r JOIN multipart_uploads u USING (upload_id)
             WHERE r.backend = $1 AND u.physical_key = ANY($2::text[])`,
    values: [backend, keys],
  };
}

/** The copies of a backend at `keys`, as they are now (re-checking candidates before reporting them). */
export function copiesAt(backend: string, keys: readonly string[]): Sql {
  return {
    text: `SELECT c.physical_key, c.version_id, c.size, c.state, v.bucket, v.key FROM object_copies c
           JOIN object_versions v ON v.version_id = c.version_id
           WHERE c.backend = $1 AND c.physical_key = ANY($2::text[])`,
    values: [backend, keys],
  };
}

/** Backends with rows in the database (name and state). */
export function backendRows(): Sql {
  return { text: `SELECT name, state FROM backends ORDER BY name`, values: [] };
}

/**
 * Live versions with fewer live copies than their bucket's replicas (`defaultReplicas` when the bucket
 * has no count of its own), with whether a repair or copy task for the version is already queued or
 * running. At most `limit` rows; `total` is the number of such versions.
 */
export function underReplicated(defaultReplicas: number, limit: number): Sql {
  return {
    text: `WITH u AS (
             SELECT v.version_id, v.bucket, v.key, coalesce(b.replicas, $1)::int AS replicas,
                    (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'live')::int AS live
             FROM object_versions v JOIN buckets b ON b.name = v.bucket
             WHERE v.state = 'live'),
           w AS (
             SELECT u.*, EXISTS (SELECT 1 FROM tasks t WHERE t.kind IN ('repair-version', 'copy-version')
                                   AND t.payload ? 'versionId' AND t.payload->>'versionId' = u.version_id) AS queued
             FROM u WHERE u.live < u.replicas)
           SELECT w.*, count(*) OVER ()::int8 AS total, count(*) FILTER (WHERE queued) OVER ()::int8 AS total_queued
           FROM w ORDER BY w.queued, w.bucket, w.key LIMIT $2`,
    values: [defaultReplicas, limit],
  };
}

const BACKEND_LEDGER = `SELECT b.name, b.used_bytes, b.object_count, b.reserved_bytes,
       (coalesce((SELECT sum(size) FROM object_copies c WHERE c.backend = b.name AND c.state IN ('live', 'bad')), 0)
        + coalesce((SELECT sum((payload->>'releaseBytes')::int8) FROM tasks t WHERE t.kind = 'delete-copy' AND t.payload->>'backend' = b.name), 0))::int8 AS want_used,
       (coalesce((SELECT count(*) FROM object_copies c WHERE c.backend = b.name AND c.state IN ('live', 'bad')), 0)
        + coalesce((SELECT sum((payload->>'releaseObjects')::int8) FROM tasks t WHERE t.kind = 'delete-copy' AND t.payload->>'backend' = b.name), 0))::int8 AS want_objects,
       (coalesce((SELECT sum(size) FROM object_copies c WHERE c.backend = b.name AND c.state = 'pending'), 0)
        + coalesce((SELECT sum(reserved_bytes) FROM multipart_uploads u WHERE u.backend = b.name), 0)
        + coalesce((SELECT sum(reserved_bytes) FROM multipart_replicas r WHERE r.backend = b.name), 0))::int8 AS want_reserved
     FROM backends b`;

/** A backend's counters next to what the ledger says they should be. */
export interface BackendLedgerRow {
  name: string;
  used_bytes: number;
  object_count: number;
  reserved_bytes: number;
  want_used: number;
  want_objects: number;
  want_reserved: number;
}

/** Every backend's counters and its ledger, in ONE statement (one snapshot: consistent under writes). */
export function backendLedger(): Sql {
  return { text: `${BACKEND_LEDGER} ORDER BY b.name`, values: [] };
}

/**
 * Makes the counters of the drifted backends equal their ledger, in ONE statement, by ADDING the drift
 * measured in the statement's snapshot: a write that commits meanwhile changes its rows and the counters
 * by the same amount, so the drift (and the correction) stays right, where setting absolute values
 * could undo it. Returns the corrected backends with their counters before and after.
 */
export function correctBackendCounters(): Sql {
  return {
    text: `WITH l AS (${BACKEND_LEDGER}),
                d AS (SELECT name, want_used - used_bytes AS du, want_objects - object_count AS dob, want_reserved - reserved_bytes AS dr,
                             used_bytes, object_count, reserved_bytes
                      FROM l WHERE (used_bytes, object_count, reserved_bytes) <> (want_used, want_objects, want_reserved))
           UPDATE backends b SET used_bytes = b.used_bytes + d.du, object_count = b.object_count + d.dob,
                  reserved_bytes = b.reserved_bytes + d.dr, updated_at = now()
           FROM d WHERE b.name = d.name
           RETURNING b.name, d.used_bytes AS was_used, d.object_count AS was_objects, d.reserved_bytes AS was_reserved,
                     b.used_bytes, b.object_count, b.reserved_bytes`,
    values: [],
  };
}

const BUCKET_LEDGER = `SELECT b.name,
       (coalesce(s.object_count, 0) + coalesce((SELECT sum(objects) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS objects,
       (coalesce(s.total_bytes, 0) + coalesce((SELECT sum(bytes) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS bytes,
       (SELECT count(*) FROM object_versions v WHERE v.bucket = b.name AND v.state = 'live')::int8 AS want_objects,
       (SELECT coalesce(sum(size), 0) FROM object_versions v WHERE v.bucket = b.name AND v.state = 'live')::int8 AS want_bytes
     FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name`;

/** A bucket's counters (folded + unfolded deltas) next to its live versions. */
export interface BucketLedgerRow {
  name: string;
  objects: number;
  bytes: number;
  want_objects: number;
  want_bytes: number;
}

/** Every bucket's counters and what its live versions add up to, in ONE statement. */
export function bucketLedger(): Sql {
  return { text: `${BUCKET_LEDGER} ORDER BY b.name`, values: [] };
}

/**
 * Appends a correcting delta for every drifted bucket, in ONE statement: measured and appended in one
 * snapshot, and writers append their own deltas for what they change, so the correction stays right
 * under concurrent writes. Returns the corrected buckets and the deltas appended.
 */
export function correctBucketCounters(): Sql {
  return {
    text: `WITH l AS (${BUCKET_LEDGER})
           INSERT INTO bucket_stat_deltas (bucket, objects, bytes)
           SELECT name, want_objects - objects, want_bytes - bytes FROM l WHERE (objects, bytes) <> (want_objects, want_bytes)
           RETURNING bucket, objects, bytes`,
    values: [],
  };
}

// ---- rebuild --from-backends (core/rebuild.ts): rows reconstructed from the backends. ----

/** How much the database already holds (rebuild only runs on an empty one). */
export function contentCounts(): Sql {
  return {
    text: `SELECT (SELECT count(*) FROM object_versions)::int8 AS versions, (SELECT count(*) FROM object_copies)::int8 AS copies,
                  (SELECT count(*) FROM multipart_uploads)::int8 AS uploads,
                  (SELECT count(*) FROM tasks WHERE kind = 'delete-copy')::int8 AS deletions`,
    values: [],
  };
}

/** The names of the buckets the database has. */
export function bucketNames(): Sql {
  return { text: `SELECT name FROM buckets`, values: [] };
}

/** A bucket found on the backends (kept as it is when the configuration already declared it). */
export function ensureBucket(name: string, source: string): Sql {
  return { text: `INSERT INTO buckets (name, source) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, values: [name, source] };
}

/** A live version rebuilt from a physical object's meta. */
export interface RebuiltVersion {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  etag: string;
  contentType: string | null;
  contentEncoding: string | null;
  contentDisposition: string | null;
  contentLanguage: string | null;
  cacheControl: string | null;
  expires: string | null;
  userMeta: Record<string, string>;
  partSizes: number[] | null;
  createdAt: Date;
}

/** Inserts a rebuilt live version (no tags, no checksum: not stored with the bytes). */
export function insertRebuiltVersion(v: RebuiltVersion): Sql {
  return {
    text: `INSERT INTO object_versions (version_id, bucket, key, state, size, etag, content_type, content_encoding, content_disposition,
             content_language, cache_control, expires, user_meta, parts_count, part_sizes, created_at, heartbeat_at)
           VALUES ($1, $2, $3, 'live', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)`,
    values: [
      v.versionId, v.bucket, v.key, v.size, v.etag, v.contentType, v.contentEncoding, v.contentDisposition, v.contentLanguage,
      v.cacheControl, v.expires, JSON.stringify(v.userMeta), v.partSizes ? v.partSizes.length : null,
      v.partSizes ? JSON.stringify(v.partSizes) : null, v.createdAt,
    ],
  };
}

/** A live copy of a rebuilt version (counters are computed from the rows at the end). */
export function insertRebuiltCopy(versionId: string, backend: string, physicalKey: string, size: number): Sql {
  return {
    text: `INSERT INTO object_copies (version_id, backend, physical_key, size, state) VALUES ($1, $2, $3, $4, 'live')`,
    values: [versionId, backend, physicalKey, size],
  };
}

/**
 * Queues the deletion of bytes a rebuild does not keep (older generations, duplicates), counted like a
 * retired copy: its bytes and one object until the task ran (the counters are computed from the rows).
 */
export function queueCountedDelete(backend: string, physicalKey: string, size: number, reason: string, delayMs: number): Sql {
  return {
    text: `INSERT INTO tasks (kind, payload, run_after)
           VALUES ('delete-copy', jsonb_build_object('backend', $1::text, 'physicalKey', $2::text, 'releaseBytes', $3::int8,
                     'releaseObjects', 1, 'reason', $4::text),
                   now() + ($5::double precision * interval '1 millisecond'))`,
    values: [backend, physicalKey, size, reason, delayMs],
  };
}
