import type { Sql } from '../db.js';
import type { HeaderColumns } from './objects.js';

/** A row of multipart_uploads. */
export interface UploadRow extends HeaderColumns {
  upload_id: string;
  bucket: string;
  key: string;
  version_id: string;
  backend: string;
  physical_key: string;
  backend_upload_id: string;
  state: 'active' | 'completing';
  completing_since: Date | null;
  user_meta: Record<string, string>;
  tags: Record<string, string>;
  checksum_algorithm: string | null;
  checksum_type: string | null;
  reserved_bytes: number;
  initiated_at: Date;
}

/** A row of multipart_parts. */
export interface PartRow {
  part_number: number;
  size: number;
  etag: string;
  backend_etag: string;
  checksum_value: string | null;
  created_at: Date;
}

export function insertUpload(u: Omit<UploadRow, 'state' | 'reserved_bytes' | 'initiated_at' | 'completing_since'>): Sql {
  return {
    text: `INSERT INTO multipart_uploads (upload_id, bucket, key, version_id, backend, physical_key, backend_upload_id, state,
             content_type, content_encoding, content_disposition, content_language, cache_control, expires, user_meta, tags,
             checksum_algorithm, checksum_type)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           RETURNING initiated_at`,
    values: [
      u.upload_id, u.bucket, u.key, u.version_id, u.backend, u.physical_key, u.backend_upload_id,
      u.content_type, u.content_encoding, u.content_disposition, u.content_language, u.cache_control, u.expires,
      JSON.stringify(u.user_meta), JSON.stringify(u.tags), u.checksum_algorithm, u.checksum_type,
    ],
  };
}

/** The upload, only if it belongs to this bucket and key (an id is never usable elsewhere). */
export function selectUpload(uploadId: string, bucket: string, key: string, lock = false): Sql {
  return {
    text: `SELECT * FROM multipart_uploads WHERE upload_id = $1 AND bucket = $2 AND key = $3${lock ? ' FOR UPDATE' : ''}`,
    values: [uploadId, bucket, key],
  };
}

/** `now()` shifted by the parameter at position `i` (ms): the clock tests can move (core/tasks.ts Clock). */
const now = (i: number) => `(now() + ($${i}::double precision * interval '1 millisecond'))`;

/**
 * Marks an upload as completing, so abort and a second Complete cannot race it: an active upload, or one
 * whose completion went stale (its completer died: no heartbeat for `staleMs`) — that one is taken over.
 */
export function beginCompleting(uploadId: string, staleMs: number, skewMs: number): Sql {
  return {
    text: `UPDATE multipart_uploads SET state = 'completing', completing_since = ${now(3)}
           WHERE upload_id = $1 AND (state = 'active'
             OR (state = 'completing' AND completing_since < ${now(3)} - ($2::double precision * interval '1 millisecond')))
           RETURNING upload_id`,
    values: [uploadId, staleMs, skewMs],
  };
}

/** Keeps a running completion from being taken for stale. */
export function heartbeatCompleting(uploadId: string, skewMs: number): Sql {
  return {
    text: `UPDATE multipart_uploads SET completing_since = ${now(2)} WHERE upload_id = $1 AND state = 'completing' RETURNING upload_id`,
    values: [uploadId, skewMs],
  };
}

/** Back to active after a failed completion, so the client can retry or abort. */
export function endCompleting(uploadId: string): Sql {
  return {
    text: `UPDATE multipart_uploads SET state = 'active', completing_since = NULL WHERE upload_id = $1 AND state = 'completing'`,
    values: [uploadId],
  };
}

/**
 * Uploads in `state` whose `column` (a timestamp) is older than `ageMs`, oldest first, claimed with SKIP
 * LOCKED so that concurrent sweepers never take the same one.
 */
function claimOlderThan(state: 'active' | 'completing', column: 'initiated_at' | 'completing_since', ageMs: number, limit: number, skewMs: number): Sql {
  return {
    text: `SELECT upload_id FROM multipart_uploads
           WHERE state = '${state}' AND ${column} < ${now(3)} - ($1::double precision * interval '1 millisecond')
           ORDER BY ${column} LIMIT $2 FOR UPDATE SKIP LOCKED`,
    values: [ageMs, limit, skewMs],
  };
}

/** Uploads whose completion stalled (no heartbeat for `staleMs`): their completer died. Claimed for roll-back. */
export function selectStuckCompletions(staleMs: number, limit: number, skewMs: number): Sql {
  return claimOlderThan('completing', 'completing_since', staleMs, limit, skewMs);
}

/** The live version a completed upload produced (a repeated Complete answers with it). */
export function selectCompletedVersion(bucket: string, key: string, uploadId: string): Sql {
  return {
    text: `SELECT version_id FROM object_versions WHERE bucket = $1 AND key = $2 AND upload_id = $3 AND state = 'live'`,
    values: [bucket, key, uploadId],
  };
}

/** Adds (or, with a negative delta, releases) bytes reserved by an upload's parts. */
export function addUploadReservation(uploadId: string, delta: number): Sql {
  return {
    text: `UPDATE multipart_uploads SET reserved_bytes = reserved_bytes + $2 WHERE upload_id = $1 AND state = 'active' RETURNING upload_id`,
    values: [uploadId, delta],
  };
}

export function selectPart(uploadId: string, partNumber: number): Sql {
  return {
    text: `SELECT part_number, size, etag, backend_etag, checksum_value, created_at FROM multipart_parts
           WHERE upload_id = $1 AND part_number = $2 FOR UPDATE`,
    values: [uploadId, partNumber],
  };
}

/** Records a part (replacing an earlier upload of the same number). */
export function upsertPart(uploadId: string, p: Omit<PartRow, 'created_at'>): Sql {
  return {
    text: `INSERT INTO multipart_parts (upload_id, part_number, size, etag, backend_etag, checksum_value)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (upload_id, part_number) DO UPDATE SET size = EXCLUDED.size, etag = EXCLUDED.etag,
             backend_etag = EXCLUDED.backend_etag, checksum_value = EXCLUDED.checksum_value, created_at = now()
           RETURNING part_number, size, etag, backend_etag, checksum_value, created_at`,
    values: [uploadId, p.part_number, p.size, p.etag, p.backend_etag, p.checksum_value],
  };
}

export function selectParts(uploadId: string, after = 0, limit = 10_001): Sql {
  return {
    text: `SELECT part_number, size, etag, backend_etag, checksum_value, created_at FROM multipart_parts
           WHERE upload_id = $1 AND part_number > $2 ORDER BY part_number LIMIT $3`,
    values: [uploadId, after, limit],
  };
}

/** Uploads of a bucket in (key, upload id) order after a (key, upload id) position, under a prefix. */
export function selectUploadsPage(bucket: string, prefix: string, afterKey: string, afterUpload: string, limit: number): Sql {
  return {
    text: `SELECT * FROM multipart_uploads
           WHERE bucket = $1 AND starts_with(key, $2) AND (key, upload_id) > ($3 COLLATE "C", $4)
           ORDER BY key, upload_id LIMIT $5`,
    values: [bucket, prefix, afterKey, afterUpload, limit],
  };
}

/** Active uploads started before `olderThanMs` ago (abandoned), claimed for abort. */
export function selectAbandoned(olderThanMs: number, limit: number, skewMs: number): Sql {
  return claimOlderThan('active', 'initiated_at', olderThanMs, limit, skewMs);
}

/** A row of multipart_replicas: one more target of a replicated upload. */
export interface ReplicaRow {
  backend: string;
  backend_upload_id: string;
  reserved_bytes: number;
}

/** Records one more target (its native upload) of an upload. */
export function insertReplica(uploadId: string, backend: string, backendUploadId: string): Sql {
  return {
    text: `INSERT INTO multipart_replicas (upload_id, backend, backend_upload_id) VALUES ($1, $2, $3)`,
    values: [uploadId, backend, backendUploadId],
  };
}

/** The other targets of an upload, in name order. */
export function selectReplicas(uploadId: string): Sql {
  return {
    text: `SELECT backend, backend_upload_id, reserved_bytes FROM multipart_replicas WHERE upload_id = $1 ORDER BY backend`,
    values: [uploadId],
  };
}

/** Adds `delta` to a target's reservation while its upload is active; no row otherwise (it was settled). */
export function addReplicaReservation(uploadId: string, backend: string, delta: number): Sql {
  return {
    text: `UPDATE multipart_replicas r SET reserved_bytes = r.reserved_bytes + $3
           FROM multipart_uploads u WHERE r.upload_id = $1 AND r.backend = $2 AND u.upload_id = r.upload_id AND u.state = 'active'
           RETURNING r.backend`,
    values: [uploadId, backend, delta],
  };
}

/** Records a part's ETag on one more target (replaces the ETag of a part uploaded again). */
export function upsertPartReplica(uploadId: string, partNumber: number, backend: string, backendEtag: string): Sql {
  return {
    text: `INSERT INTO multipart_part_replicas (upload_id, part_number, backend, backend_etag) VALUES ($1, $2, $3, $4)
           ON CONFLICT (upload_id, part_number, backend) DO UPDATE SET backend_etag = EXCLUDED.backend_etag`,
    values: [uploadId, partNumber, backend, backendEtag],
  };
}

/** Every part ETag an upload's other targets returned. */
export function selectPartReplicas(uploadId: string): Sql {
  return {
    text: `SELECT part_number, backend, backend_etag FROM multipart_part_replicas WHERE upload_id = $1`,
    values: [uploadId],
  };
}
