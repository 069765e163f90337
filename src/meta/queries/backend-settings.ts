import type { Sql } from '../db.js';

/**
 * Backends as runtime rows (schema 6): the settings, sealed secret, placement knobs and ownership of each
 * backend. Counters (used, reserved, objects) are never written here: only the copy layer changes them.
 */

/** A backend row with everything needed to build and describe it. */
export interface BackendSettingsRow {
  name: string;
  type: string;
  quota_bytes: number;
  used_bytes: number;
  reserved_bytes: number;
  object_count: number;
  state: 'active' | 'read_only' | 'draining' | 'removed';
  source: 'config' | 'api';
  zone: string | null;
  read_priority: number;
  weight: number;
  /** s3: endpoint, region, bucket, prefix, forcePathStyle, accessKeyId; fs: path. */
  settings: Record<string, unknown>;
  /** Sealed provider secret, or null. */
  secret: string | null;
  config_ref: string | null;
  config_index: number | null;
  removal_requested_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `name, type, quota_bytes, used_bytes, reserved_bytes, object_count, state, source, zone, read_priority, weight,
  settings, secret, config_ref, config_index, removal_requested_at, created_at, updated_at`;

/** Placement order: config-owned rows in file order, then the others by age. */
const ORDER = `ORDER BY config_index NULLS LAST, created_at, name`;

/** Every backend row, removed ones included, in placement order. */
export function selectBackendSettings(): Sql {
  return { text: `SELECT ${COLUMNS} FROM backends ${ORDER}`, values: [] };
}

/** One backend row; `lock` takes its row lock (FOR UPDATE) for a change that depends on what it reads. */
export function selectBackendSettingsByName(name: string, lock = false): Sql {
  return { text: `SELECT ${COLUMNS} FROM backends WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, values: [name] };
}

/** What a writer sets on a backend row (counters excluded). */
export interface BackendSettingsInput {
  name: string;
  type: string;
  quotaBytes: number;
  zone: string | null;
  readPriority: number;
  weight: number;
  settings: Record<string, unknown>;
  secret: string | null;
}

/**
 * Applies a backend the config file declares: the row becomes config-owned with the file's settings.
 * A row the file had stopped declaring, or one that was removed, is taken back (active again); a drain
 * in progress is kept. Counters are never touched.
 */
export function upsertDeclaredBackend(b: BackendSettingsInput, configRef: string, configIndex: number): Sql {
  return {
    text: `INSERT INTO backends (name, type, quota_bytes, zone, read_priority, weight, settings, secret, source, config_ref, config_index)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'config', $9, $10)
           ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, quota_bytes = EXCLUDED.quota_bytes, zone = EXCLUDED.zone,
             read_priority = EXCLUDED.read_priority, weight = EXCLUDED.weight, settings = EXCLUDED.settings, secret = EXCLUDED.secret,
             source = 'config', config_ref = EXCLUDED.config_ref, config_index = EXCLUDED.config_index,
             state = CASE WHEN backends.state = 'removed' THEN 'active'
                          WHEN backends.removal_requested_at IS NOT NULL AND backends.state = 'read_only' THEN 'active'
                          ELSE backends.state END,
             removal_requested_at = NULL, updated_at = now()
           WHERE (backends.type, backends.quota_bytes, backends.zone, backends.read_priority, backends.weight, backends.settings,
                  backends.secret, backends.source, backends.config_ref, backends.config_index, backends.state, backends.removal_requested_at)
             IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.quota_bytes, EXCLUDED.zone, EXCLUDED.read_priority, EXCLUDED.weight, EXCLUDED.settings,
                  EXCLUDED.secret, 'config', EXCLUDED.config_ref, EXCLUDED.config_index,
                  CASE WHEN backends.state = 'removed' THEN 'active'
                       WHEN backends.removal_requested_at IS NOT NULL AND backends.state = 'read_only' THEN 'active'
                       ELSE backends.state END, NULL::timestamptz)
           RETURNING name`,
    values: [b.name, b.type, b.quotaBytes, b.zone, b.readPriority, b.weight, JSON.stringify(b.settings), b.secret, configRef, configIndex],
  };
}

/**
 * Creates an API-owned backend, or takes back the name of a removed one (its counters are zero: a backend
 * is only removed once it holds nothing). Returns no row when an active (not removed) backend has the name.
 */
export function insertApiBackend(b: BackendSettingsInput): Sql {
  return {
    text: `INSERT INTO backends (name, type, quota_bytes, zone, read_priority, weight, settings, secret, source)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'api')
           ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, quota_bytes = EXCLUDED.quota_bytes, zone = EXCLUDED.zone,
             read_priority = EXCLUDED.read_priority, weight = EXCLUDED.weight, settings = EXCLUDED.settings, secret = EXCLUDED.secret,
             source = 'api', config_ref = NULL, config_index = NULL, state = 'active', removal_requested_at = NULL,
             created_at = now(), updated_at = now()
           WHERE backends.state = 'removed'
           RETURNING name`,
    values: [b.name, b.type, b.quotaBytes, b.zone, b.readPriority, b.weight, JSON.stringify(b.settings), b.secret],
  };
}

/** Fields of an update; undefined leaves the column as it is (zone null clears it). */
export interface BackendUpdate {
  quotaBytes?: number;
  readPriority?: number;
  zone?: string | null;
  weight?: number;
}

/** Changes the placement knobs of a backend that is not removed. Returns the row's name when it changed. */
export function updateBackendSettings(name: string, u: BackendUpdate): Sql {
  return {
    text: `UPDATE backends SET
             quota_bytes = coalesce($2::bigint, quota_bytes),
             read_priority = coalesce($3::integer, read_priority),
             zone = CASE WHEN $4::boolean THEN $5::text ELSE zone END,
             weight = coalesce($6::integer, weight),
             updated_at = now()
           WHERE name = $1 AND state <> 'removed'
           RETURNING name`,
    values: [name, u.quotaBytes ?? null, u.readPriority ?? null, u.zone !== undefined, u.zone ?? null, u.weight ?? null],
  };
}

/** What still ties a backend to data: copies of any state, uploads in progress, queued physical work. */
export interface BackendHoldingsRow {
  copies: number;
  uploads: number;
  tasks: number;
  used_bytes: number;
  reserved_bytes: number;
}

/**
 * Counts what a backend holds. Run in the removing transaction after locking the row
 * ({@link selectBackendSettingsByName} with `lock`): copies are created only by reserving on the row first,
 * so nothing new can appear before the removal commits.
 */
export function selectBackendHoldings(name: string): Sql {
  return {
    text: `SELECT (SELECT count(*) FROM object_copies WHERE backend = $1)::int AS copies,
                  ((SELECT count(*) FROM multipart_uploads WHERE backend = $1) + (SELECT count(*) FROM multipart_replicas WHERE backend = $1))::int AS uploads,
                  (SELECT count(*) FROM tasks WHERE payload->>'backend' = $1 AND state <> 'dead')::int AS tasks,
                  b.used_bytes, b.reserved_bytes
           FROM backends b WHERE b.name = $1`,
    values: [name],
  };
}

/** Marks a backend removed (its row stays for the record; it is no longer built or used). */
export function markBackendRemoved(name: string): Sql {
  return {
    text: `UPDATE backends SET state = 'removed', source = 'api', config_ref = NULL, config_index = NULL, removal_requested_at = NULL,
             updated_at = now()
           WHERE name = $1 AND state <> 'removed' RETURNING name`,
    values: [name],
  };
}

/**
 * A config-owned backend the file no longer declares but that still holds data: it is handed to the
 * admin API (the file no longer owns it), takes no new copies, and waits for a drain or purge.
 */
export function markBackendUndeclared(name: string): Sql {
  return {
    text: `UPDATE backends SET source = 'api', config_ref = NULL, config_index = NULL,
             removal_requested_at = coalesce(removal_requested_at, now()),
             state = CASE WHEN state = 'active' THEN 'read_only' ELSE state END, updated_at = now()
           WHERE name = $1 AND source = 'config' RETURNING name`,
    values: [name],
  };
}

/** Deletes one row of `settings` (a removed fs backend's recorded directory identity). */
export function deleteSetting(key: string): Sql {
  return { text: `DELETE FROM settings WHERE key = $1`, values: [key] };
}

/** The open drain jobs (running, paused or cancelling) by backend (jobs.target). */
export function selectOpenDrains(): Sql {
  return {
    text: `SELECT id, target, state FROM jobs WHERE kind = 'drain' AND state IN ('running', 'paused', 'cancelling')`,
    values: [],
  };
}

/** Sets one row of `settings` (an added fs backend's directory identity). */
export function putSetting(key: string, value: string): Sql {
  return {
    text: `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    values: [key, value],
  };
}
