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

/** The version columns, for RETURNING clauses of statements on object_versions (no alias). */
export const VERSION_RETURNING = VERSION_COLUMNS.replace(/v\./g, '');

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

/** The fields of a version known once its bytes are stored (everything but identity and size). */
export type PublishFields = Omit<ObjectVersion, 'bucket' | 'key' | 'versionId' | 'size' | 'lastModified' | 'tagCount'> & {
  tags: Record<string, string>;
  /** Part sizes of a multipart object, in order. */
  partSizes?: readonly number[];
};

export function publishValues(v: PublishFields): unknown[] {
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
