import type { Sql } from '../db.js';

export function upsertBucket(name: string, source: string): Sql {
  return { text: `INSERT INTO buckets (name, source) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, values: [name, source] };
}

/** A bucket's replica count (NULL: placement.replicas). */
export function setBucketReplicas(name: string, replicas: number | null): Sql {
  return { text: `UPDATE buckets SET replicas = $2 WHERE name = $1 AND replicas IS DISTINCT FROM $2`, values: [name, replicas] };
}

/** Replaces a credential's secret (or creates it). */
export function upsertCredential(accessKeyId: string, secret: string, source: string): Sql {
  return {
    text: `INSERT INTO credentials (access_key_id, secret_access_key, source) VALUES ($1, $2, $3)
           ON CONFLICT (access_key_id) DO UPDATE SET secret_access_key = EXCLUDED.secret_access_key, source = EXCLUDED.source`,
    values: [accessKeyId, secret, source],
  };
}

export function grant(accessKeyId: string, bucket: string): Sql {
  return {
    text: `INSERT INTO bucket_grants (access_key_id, bucket) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
    values: [accessKeyId, bucket],
  };
}

/** Drops the config-sourced credentials not in `keep` (the config is the source of truth for them). */
export function deleteConfigCredentialsExcept(keep: string[]): Sql {
  return {
    text: `DELETE FROM credentials WHERE source = 'config' AND NOT (access_key_id = ANY($1::text[]))`,
    values: [keep],
  };
}

/** Drops every grant of a credential (before re-granting from config). */
export function revokeAll(accessKeyId: string): Sql {
  return { text: `DELETE FROM bucket_grants WHERE access_key_id = $1`, values: [accessKeyId] };
}

export function selectCredential(accessKeyId: string): Sql {
  return {
    text: `SELECT c.access_key_id, c.secret_access_key,
             coalesce(array_agg(g.bucket ORDER BY g.bucket) FILTER (WHERE g.bucket IS NOT NULL), '{}') AS buckets
           FROM credentials c LEFT JOIN bucket_grants g USING (access_key_id)
           WHERE c.access_key_id = $1 GROUP BY c.access_key_id, c.secret_access_key`,
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

/**
 * Buckets with their live object count, bytes and credential ids (admin): the folded counters plus the
 * deltas not folded yet, so the figures are exact without scanning objects.
 */
export function selectBucketStats(): Sql {
  return {
    text: `SELECT b.name, b.created_at,
             (coalesce(s.object_count, 0) + coalesce((SELECT sum(objects) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS object_count,
             (coalesce(s.total_bytes, 0) + coalesce((SELECT sum(bytes) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS total_bytes,
             coalesce((SELECT array_agg(g.access_key_id ORDER BY g.access_key_id) FROM bucket_grants g WHERE g.bucket = b.name), '{}') AS access_key_ids
           FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name ORDER BY b.name`,
    values: [],
  };
}

export function getSetting(key: string): Sql {
  return { text: `SELECT value FROM settings WHERE key = $1`, values: [key] };
}

/** Sets a value only if absent; returns the row when this call set it. */
export function setSettingOnce(key: string, value: string): Sql {
  return { text: `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value`, values: [key, value] };
}
