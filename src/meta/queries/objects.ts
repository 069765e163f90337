import type { CopyLocation, ObjectVersion, StoredChecksum, SystemHeaders } from '../../core/types.js';
import type { Sql } from '../db.js';

/** The system-header columns object_versions and multipart_uploads share. */
export interface HeaderColumns {
  content_type: string | null;
  content_encoding: string | null;
  content_disposition: string | null;
  content_language: string | null;
  cache_control: string | null;
  expires: string | null;
}

/** The system headers a row holds (NULL columns are absent). */
export function rowHeaders(r: HeaderColumns): SystemHeaders {
  const h: SystemHeaders = {};
  if (r.content_type !== null) h.contentType = r.content_type;
  if (r.content_encoding !== null) h.contentEncoding = r.content_encoding;
  if (r.content_disposition !== null) h.contentDisposition = r.content_disposition;
  if (r.content_language !== null) h.contentLanguage = r.content_language;
  if (r.cache_control !== null) h.cacheControl = r.cache_control;
  if (r.expires !== null) h.expires = r.expires;
  return h;
}

/** Columns of object_versions as selected by the queries here. */
export interface VersionRow extends HeaderColumns {
  version_id: string;
  bucket: string;
  key: string;
  state: 'pending' | 'live';
  size: number;
  etag: string | null;
  user_meta: Record<string, string>;
  checksum_algorithm: string | null;
  checksum_value: string | null;
  checksum_type: string | null;
  tag_count: number;
  parts_count: number | null;
  created_at: Date;
}

const VERSION_COLUMNS = `v.version_id, v.bucket, v.key, v.state, v.size, v.etag, v.content_type, v.content_encoding,
  v.content_disposition, v.content_language, v.cache_control, v.expires, v.user_meta, v.checksum_algorithm,
  v.checksum_value, v.checksum_type, v.tag_count, v.parts_count, v.created_at`;

/** Maps a row to the domain type (NULL columns become absent fields). */
export function rowToVersion(r: VersionRow): ObjectVersion {
  const v: ObjectVersion = {
    ...rowHeaders(r),
    bucket: r.bucket,
    key: r.key,
    versionId: r.version_id,
    size: r.size,
    etag: r.etag ?? '',
    userMeta: r.user_meta ?? {},
    tagCount: r.tag_count,
    lastModified: r.created_at,
  };
  if (r.parts_count !== null && r.parts_count !== undefined) v.partsCount = r.parts_count;
  if (r.checksum_algorithm && r.checksum_value) {
    v.checksum = {
      algorithm: r.checksum_algorithm as StoredChecksum['algorithm'],
      value: r.checksum_value,
      type: (r.checksum_type ?? 'FULL_OBJECT') as StoredChecksum['type'],
    };
  }
  return v;
}

/** The live version of a key. */
export function selectLive(bucket: string, key: string, forUpdate = false): Sql {
  return {
    text: `SELECT ${VERSION_COLUMNS} FROM object_versions v
           WHERE v.bucket = $1 AND v.key = $2 AND v.state = 'live'${forUpdate ? ' FOR UPDATE' : ''}`,
    values: [bucket, key],
  };
}

/**
 * The live version of a key together with its live copies (in the order reads try them), in one query:
 * what GET needs before it opens a backend.
 */
export function selectLiveWithCopies(bucket: string, key: string): Sql {
  return {
    text: `SELECT ${VERSION_COLUMNS},
             coalesce(json_agg(json_build_object('backend', c.backend, 'physical_key', c.physical_key, 'size', c.size, 'state', c.state)
                      ORDER BY c.created_at, c.backend) FILTER (WHERE c.version_id IS NOT NULL), '[]') AS copies
           FROM object_versions v LEFT JOIN object_copies c ON c.version_id = v.version_id AND c.state = 'live'
           WHERE v.bucket = $1 AND v.key = $2 AND v.state = 'live'
           GROUP BY v.version_id`,
    values: [bucket, key],
  };
}

/** Live copies of a version, in the order reads should try them. */
export function selectCopies(versionId: string): Sql {
  return {
    text: `SELECT backend, physical_key, size, state FROM object_copies
           WHERE version_id = $1 AND state = 'live' ORDER BY created_at, backend`,
    values: [versionId],
  };
}

export interface CopyRow {
  backend: string;
  physical_key: string;
  size: number;
  state: 'pending' | 'live';
}

export function rowToCopy(r: CopyRow): CopyLocation {
  return { backend: r.backend, physicalKey: r.physical_key, size: r.size, state: r.state };
}

/**
 * Serialises commits on one key across transactions and instances (the lock is released at commit).
 * Conditional writes and overwrites read-then-replace the live row under it.
 */
export function lockKey(bucket: string, key: string): Sql {
  return { text: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, values: [`obj:${bucket}/${key}`] };
}

/**
 * Stages a write in ONE statement: reserves `size` bytes on `backend` if they fit under its quota (the
 * UPDATE's row lock serialises concurrent reservations, so a quota cannot be overshot) and, only if the
 * reservation succeeded, inserts the pending version and its pending copy. Returns one row on success.
 */
export function stageWrite(v: { versionId: string; bucket: string; key: string; size: number; backend: string; physicalKey: string }): Sql {
  return {
    text: `WITH r AS (UPDATE backends SET reserved_bytes = reserved_bytes + $4
                      WHERE name = $5 AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $4 <= quota_bytes)
                      RETURNING name),
                v AS (INSERT INTO object_versions (version_id, bucket, key, state, size)
                      SELECT $1, $2, $3, 'pending', $4 FROM r RETURNING version_id),
                c AS (INSERT INTO object_copies (version_id, backend, physical_key, size, state)
                      SELECT version_id, $5, $6, $4, 'pending' FROM v RETURNING version_id)
           SELECT version_id FROM c`,
    values: [v.versionId, v.bucket, v.key, v.size, v.backend, v.physicalKey],
  };
}

/** The fields of a version known once its bytes are stored (everything but identity and size). */
export type PublishFields = Omit<ObjectVersion, 'bucket' | 'key' | 'versionId' | 'size' | 'lastModified' | 'tagCount'> & {
  tags: Record<string, string>;
  /** Part sizes of a multipart object, in order. */
  partSizes?: readonly number[];
};

function publishValues(v: PublishFields): unknown[] {
  return [
    v.etag,
    v.contentType ?? null,
    v.contentEncoding ?? null,
    v.contentDisposition ?? null,
    v.contentLanguage ?? null,
    v.cacheControl ?? null,
    v.expires ?? null,
    JSON.stringify(v.userMeta),
    v.checksum?.algorithm ?? null,
    v.checksum?.value ?? null,
    v.checksum?.type ?? null,
    JSON.stringify(v.tags),
    Object.keys(v.tags).length,
    v.partsCount ?? null,
    v.partSizes ? JSON.stringify(v.partSizes) : null,
  ];
}

const PUBLISH_COLUMNS = `etag, content_type, content_encoding, content_disposition, content_language, cache_control, expires,
  user_meta, checksum_algorithm, checksum_value, checksum_type, tags, tag_count, parts_count, part_sizes`;

/**
 * Publishes a staged write in ONE statement: the pending version becomes live with everything known once
 * its bytes are stored, its copies become live, and each copy's reservation becomes used bytes and one
 * object on its backend. Returns the published row (none when the version is no longer pending).
 */
export function publishWrite(versionId: string, v: PublishFields): Sql {
  return {
    text: `WITH v AS (UPDATE object_versions SET state = 'live', (${PUBLISH_COLUMNS}) =
                        ROW($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16), created_at = now()
                      WHERE version_id = $1 AND state = 'pending'
                      RETURNING ${VERSION_COLUMNS.replace(/v\./g, '')}),
                c AS (UPDATE object_copies SET state = 'live'
                      WHERE version_id IN (SELECT version_id FROM v) AND state = 'pending' RETURNING backend, size),
                b AS (UPDATE backends SET reserved_bytes = backends.reserved_bytes - c.size,
                        used_bytes = backends.used_bytes + c.size, object_count = backends.object_count + 1
                      FROM c WHERE backends.name = c.backend RETURNING 1)
           SELECT v.*, (SELECT count(*) FROM b)::int8 AS settled FROM v`,
    values: [versionId, ...publishValues(v)],
  };
}

/** Inserts a version directly as live (multipart completion: its bytes were assembled by the backend). */
export function insertLiveVersion(id: { versionId: string; bucket: string; key: string; size: number }, v: PublishFields): Sql {
  return {
    text: `INSERT INTO object_versions (version_id, bucket, key, state, size, ${PUBLISH_COLUMNS})
           VALUES ($1, $2, $3, 'live', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
           RETURNING ${VERSION_COLUMNS.replace(/v\./g, '')}`,
    values: [id.versionId, id.bucket, id.key, id.size, ...publishValues(v)],
  };
}

/** Inserts a live copy row (multipart completion). */
export function insertLiveCopy(versionId: string, backend: string, physicalKey: string, size: number): Sql {
  return {
    text: `INSERT INTO object_copies (version_id, backend, physical_key, size, state) VALUES ($1, $2, $3, $4, 'live')`,
    values: [versionId, backend, physicalKey, size],
  };
}

/** Part sizes of a version (NULL for single-part objects). */
export function selectPartSizes(versionId: string): Sql {
  return { text: `SELECT part_sizes FROM object_versions WHERE version_id = $1`, values: [versionId] };
}

/** Tags of the live version. */
export function selectTags(bucket: string, key: string): Sql {
  return { text: `SELECT tags FROM object_versions WHERE bucket = $1 AND key = $2 AND state = 'live'`, values: [bucket, key] };
}

/** Replaces the tags of the live version; returns a row when it exists. */
export function updateTags(bucket: string, key: string, tags: Record<string, string>): Sql {
  return {
    text: `UPDATE object_versions SET tags = $3, tag_count = $4 WHERE bucket = $1 AND key = $2 AND state = 'live' RETURNING version_id`,
    values: [bucket, key, JSON.stringify(tags), Object.keys(tags).length],
  };
}

/** Keeps a pending write from being taken for abandoned. */
export function heartbeat(versionId: string): Sql {
  return { text: `UPDATE object_versions SET heartbeat_at = now() WHERE version_id = $1 AND state = 'pending'`, values: [versionId] };
}

/**
 * Drops one version row (its copies cascade) and returns the copies it had. Used to abort a pending write;
 * the caller queues the cleanup of each returned copy in the same transaction.
 */
export function dropVersion(versionId: string): Sql {
  return {
    text: `WITH c AS (SELECT backend, physical_key, size, state FROM object_copies WHERE version_id = $1),
                d AS (DELETE FROM object_versions WHERE version_id = $1 RETURNING version_id)
           SELECT c.backend, c.physical_key, c.size, c.state FROM c, d`,
    values: [versionId],
  };
}

/**
 * Retires the live versions of `keys` (delete or overwrite) and, in the same statement, queues the deletion
 * of every copy they had: the outbox. The copies' bytes and object counts are released by the cleanup worker
 * once the bytes are gone. Returns the keys that had a live version. Callers hold the keys' advisory locks.
 */
export function retireLive(bucket: string, keys: readonly string[], reason: string, delayMs: number): Sql {
  return {
    text: `WITH v AS (SELECT version_id, key FROM object_versions
                      WHERE bucket = $1 AND key = ANY($2::text[]) AND state = 'live' FOR UPDATE),
                c AS (SELECT backend, physical_key, size FROM object_copies WHERE version_id IN (SELECT version_id FROM v)),
                d AS (DELETE FROM object_versions WHERE version_id IN (SELECT version_id FROM v) RETURNING key),
                j AS (INSERT INTO cleanup_jobs (backend, physical_key, release_bytes, release_objects, reason, run_after)
                      SELECT backend, physical_key, size, 1, $3,
                             now() + ($4::double precision * interval '1 millisecond') FROM c RETURNING 1)
           SELECT key, (SELECT count(*) FROM j)::int8 AS jobs FROM d`,
    values: [bucket, keys, reason, delayMs],
  };
}

/** Pending writes whose heartbeat stopped (their process died or hung); claimed for abort. */
export function selectStalePending(olderThanMs: number, limit: number): Sql {
  return {
    text: `SELECT version_id FROM object_versions
           WHERE state = 'pending' AND heartbeat_at < now() - ($1::double precision * interval '1 millisecond')
           ORDER BY heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    values: [olderThanMs, limit],
  };
}
