import type { Sql } from '../db.js';

/** A row of the backends table. */
export interface BackendRow {
  name: string;
  type: string;
  quota_bytes: number;
  used_bytes: number;
  reserved_bytes: number;
  object_count: number;
}

/** Registers a configured backend or updates its type and quota (counters are never touched here). */
export function upsertBackend(name: string, type: string, quotaBytes: number): Sql {
  return {
    text: `INSERT INTO backends (name, type, quota_bytes) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, quota_bytes = EXCLUDED.quota_bytes`,
    values: [name, type, quotaBytes],
  };
}

export function selectBackends(): Sql {
  return { text: `SELECT name, type, quota_bytes, used_bytes, reserved_bytes, object_count FROM backends ORDER BY name`, values: [] };
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

/**
 * A write was abandoned: its reservation turns into used bytes that the cleanup job for its physical key
 * releases once the (possibly partial) bytes are gone, so the quota never counts them as free too early.
 */
export function abandonReservation(name: string, size: number): Sql {
  return {
    text: `UPDATE backends SET reserved_bytes = reserved_bytes - $2, used_bytes = used_bytes + $2 WHERE name = $1`,
    values: [name, size],
  };
}

/** Gives back reserved bytes that were never written (a failed or replaced multipart part). */
export function releaseReservation(name: string, size: number): Sql {
  return { text: `UPDATE backends SET reserved_bytes = reserved_bytes - $2 WHERE name = $1`, values: [name, size] };
}

/**
 * Settles a multipart upload: its whole reservation is given back and the assembled object's bytes (and,
 * when published, one object) are counted as used.
 */
export function settleUpload(name: string, reserved: number, size: number, objects: number): Sql {
  return {
    text: `UPDATE backends SET reserved_bytes = reserved_bytes - $2, used_bytes = used_bytes + $3,
             object_count = object_count + $4 WHERE name = $1`,
    values: [name, reserved, size, objects],
  };
}

/** Bytes (and a copy) are gone from a backend. */
export function releaseUsed(name: string, bytes: number, objects: number): Sql {
  return {
    text: `UPDATE backends SET used_bytes = greatest(used_bytes - $2, 0), object_count = greatest(object_count - $3, 0)
           WHERE name = $1`,
    values: [name, bytes, objects],
  };
}
