import type { Sql } from '../db.js';
import type { VersionRow } from './objects.js';

/**
 * Read-side SQL of replication: what repair, moves, replica convergence and scrub look at. Nothing here
 * changes a copy or a counter (those statements are in copies.ts, used through core/copies.ts); the only
 * writes are task inserts.
 */

/** `now()` shifted by the parameter at position `i` (milliseconds; tests move the clock). */
function now(i: number): string {
  return `(now() + ($${i}::double precision * interval '1 millisecond'))`;
}

/** A copy of a version with what repair needs to judge it. */
export interface ReplicaRow {
  backend: string;
  physical_key: string;
  size: number;
  state: 'pending' | 'live' | 'bad';
  bad_reason: string | null;
  task_id: number | null;
  /** A pending copy whose task is still queued or running (a copy being made). */
  owned: boolean;
}

/** A row of {@link versionReplicas}: the version's columns, the wanted count and its copies. */
export type VersionReplicasRow = VersionRow & { part_sizes: number[] | null; want: number; copies: ReplicaRow[] };

/** A live version by id with the replica count its bucket wants (`$2` when the bucket has none) and all its copies. */
export function versionReplicas(versionId: string, defaultReplicas: number): Sql {
  return {
    text: `SELECT v.*,
             coalesce(b.replicas, $2)::int AS want,
             coalesce((SELECT json_agg(json_build_object('backend', c.backend, 'physical_key', c.physical_key, 'size', c.size,
                         'state', c.state, 'bad_reason', c.bad_reason, 'task_id', c.task_id,
                         'owned', c.task_id IS NOT NULL AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = c.task_id AND t.state <> 'dead'))
                         ORDER BY c.created_at, c.backend)
                       FROM object_copies c WHERE c.version_id = v.version_id), '[]') AS copies
           FROM object_versions v JOIN buckets b ON b.name = v.bucket
           WHERE v.version_id = $1 AND v.state = 'live'`,
    values: [versionId, defaultReplicas],
  };
}

/** Backends as replication ranks them. */
export interface ReplicaBackendRow {
  name: string;
  state: 'active' | 'read_only' | 'draining' | 'removed';
  zone: string | null;
  read_priority: number;
  quota_bytes: number;
  used_bytes: number;
  reserved_bytes: number;
  object_count: number;
  type: string;
}

export function selectReplicaBackends(): Sql {
  return {
    text: `SELECT name, type, state, zone, read_priority, quota_bytes, used_bytes, reserved_bytes, object_count FROM backends ORDER BY name`,
    values: [],
  };
}

/**
 * Copy-version tasks queued or running that ADD a copy of the version (moves carry `retire`). The
 * `payload ? 'versionId'` term lets the planner use the partial index tasks_kind_version.
 */
export function inflightAdds(versionId: string): Sql {
  return {
    text: `SELECT count(*)::int AS n FROM tasks
           WHERE kind = 'copy-version' AND payload ? 'versionId' AND payload->>'versionId' = $1
             AND state IN ('queued', 'active') AND NOT payload ? 'retire'`,
    values: [versionId],
  };
}

/** The progress a task recorded (its last heartbeat's), e.g. a copy-version's failed destination. */
export function taskProgress(id: number): Sql {
  return { text: `SELECT progress FROM tasks WHERE id = $1`, values: [id] };
}

/** One task per version id, each a singleton `<prefix><versionId>` (duplicates are no-ops). Returns how many were new. */
export function enqueuePerVersion(kind: string, prefix: string, versionIds: readonly string[], extra: Record<string, unknown>, skewMs: number): Sql {
  return {
    text: `INSERT INTO tasks (kind, payload, singleton_key, run_after)
           SELECT $1, jsonb_build_object('versionId', id) || $4::jsonb, $2 || id, ${now(5)} FROM unnest($3::text[]) AS u(id)
           ON CONFLICT (singleton_key) WHERE singleton_key IS NOT NULL AND state <> 'dead' DO NOTHING
           RETURNING id`,
    values: [kind, prefix, versionIds, JSON.stringify(extra), skewMs],
  };
}

/** A page of convergence: live versions of a bucket after `after` (key order) with their copy counts. */
export interface ConvergeRow {
  version_id: string;
  key: string;
  live: number;
  bad: number;
}

/**
 * The next `limit` live versions of `bucket` after key `after` (keyset over the live index), with the
 * number of live and bad copies of each (primary-key probes). Returns the whole page; the caller picks.
 */
export function convergePage(bucket: string, after: string | null, limit: number): Sql {
  return {
    text: `SELECT v.version_id, v.key,
             (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'live')::int AS live,
             (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'bad')::int AS bad
           FROM object_versions v
           WHERE v.bucket = $1 AND v.state = 'live' AND ($2::text IS NULL OR v.key > $2::text COLLATE "C")
           ORDER BY v.key LIMIT $3`,
    values: [bucket, after, limit],
  };
}

/** The replica count a bucket wants (`$2` when the bucket has none); no row when the bucket is gone. */
export function bucketReplicas(bucket: string, defaultReplicas: number): Sql {
  return { text: `SELECT coalesce(replicas, $2)::int AS want FROM buckets WHERE name = $1`, values: [bucket, defaultReplicas] };
}

/**
 * Every bucket with the replica count it wants (`$1` when it has none) and the count it was last converged
 * to (settings `replicas:<bucket>`, NULL when never).
 */
export function replicaTargets(defaultReplicas: number): Sql {
  return {
    text: `SELECT b.name, coalesce(b.replicas, $1)::int AS want, s.value AS last
           FROM buckets b LEFT JOIN settings s ON s.key = 'replicas:' || b.name ORDER BY b.name`,
    values: [defaultReplicas],
  };
}

/** A copy scrub verifies. */
export interface ScrubRow {
  version_id: string;
  backend: string;
  physical_key: string;
  size: number;
  etag: string | null;
  part_sizes: number[] | null;
  /** Cheap pass only: the version's live copies and the count its bucket wants. */
  live?: number;
  want?: number;
}

/**
 * The least recently verified live copies (never verified first) not verified within `minAgeMs`, on the
 * given backends: the index object_copies_verified gives them in order. With each, its version's live copy
 * count and wanted count (primary-key probes), so the pass also finds versions whose replica count is off
 * (a copy-version task that died, a change nobody converged).
 */
export function scrubCandidates(backends: readonly string[], minAgeMs: number, limit: number, skewMs: number, defaultReplicas: number): Sql {
  // Two bounded range scans of object_copies_verified (never verified; verified before the cut-off), so a
  // pass that finds nothing due reads nothing rather than the whole index.
  const pick = (cond: string) => `(SELECT version_id, backend, physical_key, size, verified_at FROM object_copies
             WHERE state = 'live' AND ${cond} AND backend = ANY($1::text[])
             ORDER BY verified_at NULLS FIRST, version_id, backend LIMIT $3)`;
  return {
    text: `WITH due AS (${pick('verified_at IS NULL')}
                  UNION ALL
                  ${pick(`verified_at < ${now(4)} - ($2::double precision * interval '1 millisecond')`)}),
                c AS (SELECT * FROM due ORDER BY verified_at NULLS FIRST, version_id, backend LIMIT $3)
           SELECT c.version_id, c.backend, c.physical_key, c.size, v.etag, v.part_sizes,
             (SELECT count(*) FROM object_copies x WHERE x.version_id = c.version_id AND x.state = 'live')::int AS live,
             coalesce(b.replicas, $5)::int AS want
           FROM c JOIN object_versions v ON v.version_id = c.version_id JOIN buckets b ON b.name = v.bucket
           ORDER BY c.verified_at NULLS FIRST, c.version_id, c.backend`,
    values: [backends, minAgeMs, limit, skewMs, defaultReplicas],
  };
}

/** The next `limit` live copies after (versionId, backend), in primary-key order (a deep pass walks them all). */
export function deepScrubPage(after: { versionId: string; backend: string } | null, limit: number): Sql {
  return {
    text: `SELECT c.version_id, c.backend, c.physical_key, c.size, v.etag, v.part_sizes
           FROM object_copies c JOIN object_versions v ON v.version_id = c.version_id
           WHERE c.state = 'live' AND ($1::text IS NULL OR (c.version_id, c.backend) > ($1::text, $2::text))
           ORDER BY c.version_id, c.backend LIMIT $3`,
    values: [after?.versionId ?? null, after?.backend ?? null, limit],
  };
}

/** Records a setting (bootstrap fact). */
export function upsertSetting(key: string, value: string): Sql {
  return {
    text: `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    values: [key, value],
  };
}
