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

/** The version columns, for RETURNING clauses of statements on object_versions (no alias). */
export const VERSION_RETURNING = VERSION_COLUMNS.replace(/v\./g, '');

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

/**
 * Serialises commits on one key across transactions and instances (the lock is released at commit).
 * Conditional writes and overwrites read-then-replace the live row under it.
 */
export function lockKey(bucket: string, key: string): Sql {
  return { text: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, values: [`obj:${bucket}/${key}`] };
}

/**
 * {@link lockKey} for several keys in ONE statement, taken in the order of `sortedKeys` (callers sort them,
 * so that any two lockers take shared keys in the same order: no deadlocks).
 */
export function lockKeys(bucket: string, sortedKeys: readonly string[]): Sql {
  return {
    text: `SELECT count(pg_advisory_xact_lock(hashtextextended('obj:' || $1 || '/' || k, 0))) FROM unnest($2::text[]) AS u(k)`,
    values: [bucket, sortedKeys],
  };
}

/**
 * The column values a published version gets once its bytes are stored (core/rows.ts builds it from the
 * domain type), in the order of {@link PUBLISH_COLUMNS}.
 */
export interface PublishRow extends HeaderColumns {
  etag: string;
  user_meta: Record<string, string>;
  checksum_algorithm: string | null;
  checksum_value: string | null;
  checksum_type: string | null;
  tags: Record<string, string>;
  parts_count: number | null;
  part_sizes: readonly number[] | null;
}

export function publishValues(v: PublishRow): unknown[] {
  return [
    v.etag,
    v.content_type,
    v.content_encoding,
    v.content_disposition,
    v.content_language,
    v.cache_control,
    v.expires,
    JSON.stringify(v.user_meta),
    v.checksum_algorithm,
    v.checksum_value,
    v.checksum_type,
    JSON.stringify(v.tags),
    Object.keys(v.tags).length,
    v.parts_count,
    v.part_sizes ? JSON.stringify(v.part_sizes) : null,
  ];
}

export const PUBLISH_COLUMNS = `etag, content_type, content_encoding, content_disposition, content_language, cache_control, expires,
  user_meta, checksum_algorithm, checksum_value, checksum_type, tags, tag_count, parts_count, part_sizes`;

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

/** Pending writes whose heartbeat stopped (their process died or hung); claimed for abort. `skewMs` shifts the clock (tests). */
export function selectStalePending(olderThanMs: number, limit: number, skewMs = 0): Sql {
  return {
    text: `SELECT version_id FROM object_versions
           WHERE state = 'pending'
             AND heartbeat_at < now() + ($3::double precision * interval '1 millisecond') - ($1::double precision * interval '1 millisecond')
           ORDER BY heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    values: [olderThanMs, limit, skewMs],
  };
}
