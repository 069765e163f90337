import type { HeaderColumns, PublishRow, VersionRow, CopyRow } from '../meta/queries/objects.js';
import type { CopyLocation, ObjectVersion, StoredChecksum, SystemHeaders } from './types.js';

/**
 * Row mappers: database rows (meta/queries, snake_case, NULLs) to the domain types and back. They live in
 * core so that meta stays SQL only and never depends on the domain.
 */

/** The fields of a version known once its bytes are stored (everything but identity and size). */
export type VersionFields = Omit<ObjectVersion, 'bucket' | 'key' | 'versionId' | 'size' | 'lastModified' | 'tagCount'> & {
  tags: Record<string, string>;
  /** Part sizes of a multipart object, in order. */
  partSizes?: readonly number[];
};

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

/** A version row as the domain type (NULL columns become absent fields). */
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

export function rowToCopy(r: CopyRow): CopyLocation {
  return { backend: r.backend, physicalKey: r.physical_key, size: r.size, state: r.state };
}

/** The column values of a version being published. */
export function toPublishRow(v: VersionFields): PublishRow {
  return {
    etag: v.etag,
    content_type: v.contentType ?? null,
    content_encoding: v.contentEncoding ?? null,
    content_disposition: v.contentDisposition ?? null,
    content_language: v.contentLanguage ?? null,
    cache_control: v.cacheControl ?? null,
    expires: v.expires ?? null,
    user_meta: v.userMeta,
    checksum_algorithm: v.checksum?.algorithm ?? null,
    checksum_value: v.checksum?.value ?? null,
    checksum_type: v.checksum?.type ?? null,
    tags: v.tags,
    parts_count: v.partsCount ?? null,
    part_sizes: v.partSizes ?? null,
  };
}
