import type { Sql } from '../db.js';

/** Columns of a credential row with its grants (`grants`: JSON array of {bucket, permission, prefix}). */
const CREDENTIAL_COLUMNS = `c.access_key_id, c.secret_access_key, c.source, c.description, c.can_create_buckets,
  c.created_at, c.updated_at, c.revoked_at, c.config_ref,
  coalesce((SELECT json_agg(json_build_object('bucket', g.bucket, 'permission', g.permission, 'prefix', g.prefix) ORDER BY g.bucket)
            FROM bucket_grants g WHERE g.access_key_id = c.access_key_id), '[]') AS grants`;

/** A config-declared or zero-config bucket; an existing bucket declared by the file becomes config-owned. */
export function upsertBucket(name: string, source: 'config' | 'demo', configRef: string | null = null): Sql {
  if (source === 'demo') {
    return { text: `INSERT INTO buckets (name, source) VALUES ($1, 'demo') ON CONFLICT (name) DO NOTHING`, values: [name] };
  }
  return {
    text: `INSERT INTO buckets (name, source, config_ref) VALUES ($1, 'config', $2)
           ON CONFLICT (name) DO UPDATE SET source = 'config', config_ref = EXCLUDED.config_ref`,
    values: [name, configRef],
  };
}

/** A bucket created through the admin API or S3; returns a row unless the name is taken. */
export function insertBucket(b: { name: string; source: 'api' | 's3'; owner: string | null; replicas: number | null; cors: unknown }): Sql {
  return {
    text: `INSERT INTO buckets (name, source, owner, replicas, cors) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (name) DO NOTHING RETURNING name`,
    values: [b.name, b.source, b.owner, b.replicas, b.cors === null ? null : JSON.stringify(b.cors)],
  };
}

/** Replaces a credential's secret (already sealed) as the configuration file declares it, un-revoking it. */
export function upsertConfigCredential(accessKeyId: string, sealedSecret: string, configRef: string | null): Sql {
  return {
    text: `INSERT INTO credentials (access_key_id, secret_access_key, source, config_ref) VALUES ($1, $2, 'config', $3)
           ON CONFLICT (access_key_id) DO UPDATE SET secret_access_key = EXCLUDED.secret_access_key, source = 'config',
             config_ref = EXCLUDED.config_ref, revoked_at = NULL, can_create_buckets = false, updated_at = now()`,
    values: [accessKeyId, sealedSecret, configRef],
  };
}

/** A new credential (secret already sealed); returns a row unless the access key id exists. */
export function insertCredential(c: { accessKeyId: string; sealedSecret: string; source: 'api' | 'demo'; description: string; canCreateBuckets: boolean }): Sql {
  return {
    text: `INSERT INTO credentials (access_key_id, secret_access_key, source, description, can_create_buckets)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (access_key_id) DO NOTHING RETURNING access_key_id`,
    values: [c.accessKeyId, c.sealedSecret, c.source, c.description, c.canCreateBuckets],
  };
}

/** Grants (or re-grants) a bucket to a credential. */
export function grant(accessKeyId: string, bucket: string, permission: 'read' | 'read_write' = 'read_write', prefix = ''): Sql {
  return {
    text: `INSERT INTO bucket_grants (access_key_id, bucket, permission, prefix) VALUES ($1, $2, $3, $4)
           ON CONFLICT (access_key_id, bucket) DO UPDATE SET permission = EXCLUDED.permission, prefix = EXCLUDED.prefix`,
    values: [accessKeyId, bucket, permission, prefix],
  };
}

/** Revokes the config-sourced credentials not in `keep` (the file no longer declares them). */
export function revokeConfigCredentialsExcept(keep: string[]): Sql {
  return {
    text: `WITH r AS (UPDATE credentials SET revoked_at = now(), updated_at = now(), secret_access_key = '', source = 'api', config_ref = NULL
                      WHERE source = 'config' AND NOT (access_key_id = ANY($1::text[])) RETURNING access_key_id)
           DELETE FROM bucket_grants g USING r WHERE g.access_key_id = r.access_key_id`,
    values: [keep],
  };
}

/** Hands the config-owned buckets not in `keep` to the API (the file no longer declares them). */
export function releaseConfigBuckets(keep: string[]): Sql {
  return {
    text: `UPDATE buckets SET source = 'api', config_ref = NULL WHERE source = 'config' AND NOT (name = ANY($1::text[]))`,
    values: [keep],
  };
}

/** Drops every grant on a bucket (it is being purged). */
export function dropBucketGrants(bucket: string): Sql {
  return { text: `DELETE FROM bucket_grants WHERE bucket = $1`, values: [bucket] };
}

/** Drops every grant of a credential. */
export function revokeAll(accessKeyId: string): Sql {
  return { text: `DELETE FROM bucket_grants WHERE access_key_id = $1`, values: [accessKeyId] };
}

/** An active (not revoked) credential with its grants, for S3 authentication. */
export function selectActiveCredential(accessKeyId: string): Sql {
  return {
    text: `SELECT ${CREDENTIAL_COLUMNS} FROM credentials c WHERE c.access_key_id = $1 AND c.revoked_at IS NULL`,
    values: [accessKeyId],
  };
}

/** One credential (revoked ones too) with its grants; `forUpdate` locks the row for the caller's transaction. */
export function selectCredentialRow(accessKeyId: string, forUpdate = false): Sql {
  return {
    text: `SELECT ${CREDENTIAL_COLUMNS} FROM credentials c WHERE c.access_key_id = $1${forUpdate ? ' FOR UPDATE OF c' : ''}`,
    values: [accessKeyId],
  };
}

/** Credentials sorted by access key id, optionally only those granted `bucket`, revoked ones only when asked. */
export function selectCredentialRows(opts: { bucket?: string; includeRevoked: boolean }): Sql {
  const where: string[] = [];
  const values: unknown[] = [];
  if (!opts.includeRevoked) where.push('c.revoked_at IS NULL');
  if (opts.bucket !== undefined) {
    values.push(opts.bucket);
    where.push(`EXISTS (SELECT 1 FROM bucket_grants g WHERE g.access_key_id = c.access_key_id AND g.bucket = $${values.length})`);
  }
  return {
    text: `SELECT ${CREDENTIAL_COLUMNS} FROM credentials c ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY c.access_key_id`,
    values,
  };
}

/** Changes a credential's description and/or bucket-creation right; returns a row when it exists. */
export function updateCredential(accessKeyId: string, set: { description?: string; canCreateBuckets?: boolean }): Sql {
  return {
    text: `UPDATE credentials SET description = coalesce($2, description), can_create_buckets = coalesce($3, can_create_buckets),
             updated_at = now() WHERE access_key_id = $1 RETURNING access_key_id`,
    values: [accessKeyId, set.description ?? null, set.canCreateBuckets ?? null],
  };
}

/** Revokes a credential: it stops authenticating, its secret is erased and its grants dropped. */
export function revokeCredential(accessKeyId: string): Sql {
  return {
    text: `WITH r AS (UPDATE credentials SET revoked_at = now(), updated_at = now(), secret_access_key = ''
                      WHERE access_key_id = $1 AND revoked_at IS NULL RETURNING access_key_id)
           DELETE FROM bucket_grants g USING r WHERE g.access_key_id = r.access_key_id RETURNING g.bucket`,
    values: [accessKeyId],
  };
}

export function selectBuckets(names?: readonly string[]): Sql {
  if (names) {
    return { text: `SELECT name, created_at, cors FROM buckets WHERE name = ANY($1::text[]) ORDER BY name`, values: [names] };
  }
  return { text: `SELECT name, created_at, cors FROM buckets ORDER BY name`, values: [] };
}

/** Sets (or with null removes) a bucket's CORS rules; returns a row when the bucket exists. */
export function updateCors(name: string, rules: unknown): Sql {
  return { text: `UPDATE buckets SET cors = $2 WHERE name = $1 RETURNING name`, values: [name, rules === null ? null : JSON.stringify(rules)] };
}

/** Live object count and bytes of a bucket: the folded counters plus the deltas not folded yet. */
const STATS_COLUMNS = `
  (coalesce(s.object_count, 0) + coalesce((SELECT sum(objects) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS object_count,
  (coalesce(s.total_bytes, 0) + coalesce((SELECT sum(bytes) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS total_bytes`;

/**
 * Buckets with their live object count, bytes and credential ids (admin): the folded counters plus the
 * deltas not folded yet, so the figures are exact without scanning objects.
 */
export function selectBucketStats(): Sql {
  return {
    text: `SELECT b.name, b.created_at, ${STATS_COLUMNS},
             coalesce((SELECT array_agg(g.access_key_id ORDER BY g.access_key_id) FROM bucket_grants g WHERE g.bucket = b.name), '{}') AS access_key_ids
           FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name ORDER BY b.name`,
    values: [],
  };
}

/** Every managed attribute of buckets (all, or one by name), with usage and grants. */
export function selectBucketDetails(name?: string): Sql {
  return {
    text: `SELECT b.name, b.created_at, b.source, b.owner, b.config_ref, b.replicas, b.cors, ${STATS_COLUMNS},
             EXISTS (SELECT 1 FROM multipart_uploads u WHERE u.bucket = b.name) AS has_uploads,
             coalesce((SELECT json_agg(json_build_object('accessKeyId', g.access_key_id, 'permission', g.permission, 'prefix', g.prefix)
                                       ORDER BY g.access_key_id)
                       FROM bucket_grants g WHERE g.bucket = b.name), '[]') AS grants
           FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name
           ${name === undefined ? '' : 'WHERE b.name = $1'} ORDER BY b.name`,
    values: name === undefined ? [] : [name],
  };
}

/** Locks a bucket row for the caller's transaction (its source, owner and config_ref). */
export function lockBucket(name: string): Sql {
  return { text: `SELECT name, source, owner, config_ref FROM buckets WHERE name = $1 FOR UPDATE`, values: [name] };
}

/** Sets a bucket's replicas (null: follow placement.replicas) when `setReplicas`, and its CORS when `setCors`. */
export function updateBucket(name: string, set: { replicas?: number | null; cors?: unknown }): Sql {
  return {
    text: `UPDATE buckets SET replicas = CASE WHEN $2 THEN $3::int ELSE replicas END,
             cors = CASE WHEN $4 THEN $5::jsonb ELSE cors END
           WHERE name = $1 RETURNING name`,
    values: [
      name,
      set.replicas !== undefined,
      set.replicas ?? null,
      set.cors !== undefined,
      set.cors === undefined || set.cors === null ? null : JSON.stringify(set.cors),
    ],
  };
}

/** What keeps a bucket from being deleted: versions of any state (pending writes included) and uploads. */
export function selectBucketContents(name: string): Sql {
  return {
    text: `SELECT EXISTS (SELECT 1 FROM object_versions WHERE bucket = $1) AS has_versions,
                  EXISTS (SELECT 1 FROM multipart_uploads WHERE bucket = $1) AS has_uploads`,
    values: [name],
  };
}

/**
 * Deletes an empty bucket with its grants, stats and pending stat deltas; returns a row when it was
 * deleted. The foreign keys of object_versions and multipart_uploads (ON DELETE RESTRICT) refuse a
 * bucket that a concurrent write filled meanwhile.
 */
export function deleteBucket(name: string): Sql {
  return {
    text: `WITH d AS (DELETE FROM buckets WHERE name = $1 RETURNING name),
                x AS (DELETE FROM bucket_stat_deltas WHERE bucket IN (SELECT name FROM d))
           SELECT name FROM d`,
    values: [name],
  };
}

export function getSetting(key: string): Sql {
  return { text: `SELECT value FROM settings WHERE key = $1`, values: [key] };
}

/** Sets a value only if absent; returns the row when this call set it. */
export function setSettingOnce(key: string, value: string): Sql {
  return { text: `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value`, values: [key, value] };
}
