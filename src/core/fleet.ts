import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as bq from '../meta/queries/backends.js';
import * as tq from '../meta/queries/tenants.js';

/**
 * The fleet as the database records it: one row per backend with its runtime state (active, read_only,
 * draining, removed), quota and counters. The config file declares the rows it owns; placement reads the
 * rows at every write, so a state change made by any instance applies to the next write everywhere.
 */

/** A backend as the admin API and metrics see it. */
export interface BackendRecord {
  name: string;
  type: string;
  state: 'active' | 'read_only' | 'draining' | 'removed';
  source: string;
  zone?: string;
  quotaBytes: number;
  usedBytes: number;
  reservedBytes: number;
  objectCount: number;
}

/** A backend the config file declares. */
export interface DeclaredBackend {
  name: string;
  type: string;
  quotaBytes: number;
  zone?: string;
}

/**
 * Applies the config file's backends to their rows (type, quota, zone; marked config-owned) in one
 * transaction. Returns the rows the file no longer declares (their copies stay counted, and unreachable
 * until the backend is declared again).
 */
export async function syncConfigBackends(db: Db, declared: readonly DeclaredBackend[]): Promise<BackendRecord[]> {
  return db.tx(async (q) => {
    for (const b of declared) await run(q, bq.upsertConfigBackend(b.name, b.type, b.quotaBytes, b.zone ?? null));
    const names = new Set(declared.map((b) => b.name));
    const { rows } = await run<bq.BackendRow>(q, bq.selectBackends());
    return rows.filter((r) => !names.has(r.name) && r.state !== 'removed').map(toRecord);
  });
}

/** Every backend row. */
export async function listBackendRecords(db: Db): Promise<BackendRecord[]> {
  return (await run<bq.BackendRow>(db, bq.selectBackends())).rows.map(toRecord);
}

function toRecord(r: bq.BackendRow): BackendRecord {
  return {
    name: r.name,
    type: r.type,
    state: r.state ?? 'active',
    source: r.source ?? 'config',
    ...(r.zone ? { zone: r.zone } : {}),
    quotaBytes: r.quota_bytes,
    usedBytes: r.used_bytes,
    reservedBytes: r.reserved_bytes,
    objectCount: r.object_count,
  };
}

/** A bucket with its live object count and bytes (kept by counters, never by scanning objects). */
export interface BucketRecord {
  name: string;
  createdAt: Date;
  objectCount: number;
  totalBytes: number;
  accessKeyIds: string[];
}

export async function listBucketRecords(db: Db): Promise<BucketRecord[]> {
  const { rows } = await run<{ name: string; created_at: Date; object_count: number; total_bytes: number; access_key_ids: string[] }>(
    db,
    tq.selectBucketStats(),
  );
  return rows.map((r) => ({
    name: r.name,
    createdAt: r.created_at,
    objectCount: r.object_count,
    totalBytes: r.total_bytes,
    accessKeyIds: r.access_key_ids,
  }));
}
