/**
 * Upkeep of fs backends that needs the metadata database: their directory identity (recorded at first use,
 * so a restart with the disk unmounted never starts writing into an empty directory) and the sweep of
 * crash leftovers (temp files and multipart directories no upload references), at start and periodically.
 */
import type { FsBackend, LeftoverReport } from '../backends/fs.js';
import type { Logger } from '../log.js';
import type { Db, Queryable } from '../meta/db.js';

/** The `settings` key holding an fs backend's identity id. */
export function identitySettingKey(backend: string): string {
  return `fs_backend_identity.${backend}`;
}

async function one<R>(q: Queryable, text: string, values: unknown[]): Promise<R | undefined> {
  return (await q.query<R>(text, values)).rows[0];
}

/**
 * Before the first check: tells each fs backend the identity recorded at its first use and whether the
 * database counts objects or bytes on it. With either, a missing directory or identity file is an outage,
 * not a first use.
 */
export async function expectFsIdentities(db: Db, backends: readonly FsBackend[]): Promise<void> {
  for (const b of backends) {
    const id = await one<{ value: string }>(db, `SELECT value FROM settings WHERE key = $1`, [identitySettingKey(b.name)]);
    const row = await one<{ used_bytes: number; object_count: number }>(
      db,
      `SELECT used_bytes, object_count FROM backends WHERE name = $1`,
      [b.name],
    );
    const hasData = row !== undefined && (Number(row.used_bytes) > 0 || Number(row.object_count) > 0);
    b.expectIdentity({ ...(id ? { id: id.value } : {}), hasData });
  }
}

/** After the check: records each fs backend's identity once (the first use's stays). */
export async function recordFsIdentities(db: Db, backends: readonly FsBackend[], log: Logger): Promise<void> {
  for (const b of backends) {
    if (b.identity === undefined) continue;
    const set = await one<{ value: string }>(
      db,
      `INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value`,
      [identitySettingKey(b.name), b.identity],
    );
    if (set) log.info('fs backend identity recorded', { backend: b.name, path: b.root, identity: b.identity });
  }
}

/** Backend upload ids of the multipart uploads the database holds for `backend`, whatever their state. */
async function uploadIds(db: Db, backend: string): Promise<Set<string>> {
  const { rows } = await db.query<{ backend_upload_id: string }>(
    `SELECT backend_upload_id FROM multipart_uploads WHERE backend = $1`,
    [backend],
  );
  return new Set(rows.map((r) => r.backend_upload_id));
}

/**
 * Sweeps every fs backend once: measures crash leftovers and removes those older than `olderThanMs` that
 * no multipart upload in the database references. The upload ids are read BEFORE the directories are
 * listed, so an upload created meanwhile is young and kept by the age rule. Never throws; a backend that
 * fails (unavailable) is logged and skipped.
 */
export async function sweepFsLeftovers(
  db: Db,
  backends: readonly FsBackend[],
  olderThanMs: number,
  log: Logger,
): Promise<Map<string, LeftoverReport>> {
  const out = new Map<string, LeftoverReport>();
  for (const b of backends) {
    try {
      const activeUploads = await uploadIds(db, b.name);
      const r = await b.sweepLeftovers({ olderThanMs, activeUploads });
      out.set(b.name, r);
      if (r.tmpFiles + r.orphanUploads > 0) {
        log.info('fs backend crash leftovers', { backend: b.name, ...r, olderThanMs });
      }
    } catch (err) {
      log.warn('fs leftover sweep failed', { backend: b.name, err });
    }
  }
  return out;
}

/**
 * Sweeps at once and then every `everyMs` until stopped (stop() waits for a sweep in progress). A plain
 * per-instance interval is right here: a sweep is idempotent and each instance may see the same directory.
 */
export function startFsSweeps(
  db: Db,
  backends: readonly FsBackend[],
  opts: { olderThanMs: number; everyMs: number },
  log: Logger,
): { stop(): Promise<void> } {
  if (backends.length === 0) return { stop: async () => {} };
  let current: Promise<unknown> = sweepFsLeftovers(db, backends, opts.olderThanMs, log);
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped) return;
    current = current.then(() => (stopped ? undefined : sweepFsLeftovers(db, backends, opts.olderThanMs, log)));
  }, opts.everyMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}
