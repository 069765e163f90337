import type { Sql } from '../db.js';

/** A row of the backends table. */
export interface BackendRow {
  name: string;
  type: string;
  quota_bytes: number;
  used_bytes: number;
  reserved_bytes: number;
  object_count: number;
  /** active | read_only | draining | removed (schema 3). */
  state?: 'active' | 'read_only' | 'draining' | 'removed';
  source?: string;
  zone?: string | null;
  /** Share of new copies under spread; 0 takes none (schema 6). */
  weight?: number;
}

/**
 * Registers a backend the config file declares, or updates its type, quota and zone, and marks it
 * config-owned. Counters and state are never touched here (a drain survives a restart).
 */
export function upsertConfigBackend(name: string, type: string, quotaBytes: number, zone: string | null): Sql {
  return {
    text: `INSERT INTO backends (name, type, quota_bytes, zone, source) VALUES ($1, $2, $3, $4, 'config')
           ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, quota_bytes = EXCLUDED.quota_bytes, zone = EXCLUDED.zone,
             source = 'config', updated_at = now()`,
    values: [name, type, quotaBytes, zone],
  };
}

export function selectBackends(): Sql {
  return {
    text: `SELECT name, type, quota_bytes, used_bytes, reserved_bytes, object_count, state, source, zone, weight FROM backends ORDER BY name`,
    values: [],
  };
}

/**
 * Reserves `size` bytes on a backend if they fit under its quota, atomically: the row lock of the UPDATE
 * serialises concurrent reservations, so the quota can never be overshot. Returns one row on success.
 */
export function reserve(name: string, size: number): Sql {
  return {
    text: `UPDATE backends SET reserved_bytes = reserved_bytes + $2
           WHERE name = $1 AND (quota_bytes = 0 OR used_bytes + reserved_bytes + $2 <= quota_bytes)
           RETURNING name`,
    values: [name, size],
  };
}


/** Gives back reserved bytes that were never written (a failed or replaced multipart part). */
export function releaseReservation(name: string, size: number): Sql {
  return { text: `UPDATE backends SET reserved_bytes = reserved_bytes - $2 WHERE name = $1`, values: [name, size] };
}
