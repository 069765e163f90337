import assert from 'node:assert/strict';
import { BackendError, type Backend } from '../../src/backends/backend.js';
import type { Queryable } from '../../src/meta/db.js';

/**
 * The quota ledger, recomputed from the rows (see src/meta/queries/copies.ts). For every backend:
 *   used_bytes     = Σ size of live and bad copies + Σ releaseBytes of delete-copy tasks (any state)
 *   object_count   = number of live and bad copies + Σ releaseObjects of those tasks
 * (a bad copy's bytes may still exist: it stays counted until the delete-copy task that retires it ran)
 *   reserved_bytes = Σ size of pending copies + Σ reserved_bytes of its multipart uploads and upload targets
 * and for every bucket: its counters (folded + unfolded deltas) = count and Σ size of its live versions.
 * Call {@link assertLedger} at the end of every integration test file, beside {@link assertNoStrayBytes}.
 */
export async function assertLedger(db: Queryable, label = 'ledger'): Promise<void> {
  const { rows } = await db.query<{
    name: string;
    used_bytes: number;
    object_count: number;
    reserved_bytes: number;
    want_used: number;
    want_objects: number;
    want_reserved: number;
  }>(
    `SELECT b.name, b.used_bytes, b.object_count, b.reserved_bytes,
       (coalesce((SELECT sum(size) FROM object_copies c WHERE c.backend = b.name AND c.state IN ('live', 'bad')), 0)
        + coalesce((SELECT sum((payload->>'releaseBytes')::int8) FROM tasks t WHERE t.kind = 'delete-copy' AND t.payload->>'backend' = b.name), 0))::int8 AS want_used,
       (coalesce((SELECT count(*) FROM object_copies c WHERE c.backend = b.name AND c.state IN ('live', 'bad')), 0)
        + coalesce((SELECT sum((payload->>'releaseObjects')::int8) FROM tasks t WHERE t.kind = 'delete-copy' AND t.payload->>'backend' = b.name), 0))::int8 AS want_objects,
       (coalesce((SELECT sum(size) FROM object_copies c WHERE c.backend = b.name AND c.state = 'pending'), 0)
        + coalesce((SELECT sum(reserved_bytes) FROM multipart_uploads u WHERE u.backend = b.name), 0)
        + coalesce((SELECT sum(reserved_bytes) FROM multipart_replicas r WHERE r.backend = b.name), 0))::int8 AS want_reserved
     FROM backends b ORDER BY b.name`,
  );
  for (const r of rows) {
    assert.deepEqual(
      { used: r.used_bytes, objects: r.object_count, reserved: r.reserved_bytes },
      { used: r.want_used, objects: r.want_objects, reserved: r.want_reserved },
      `${label}: counters of backend ${r.name} differ from its copies, queued deletions and reservations`,
    );
  }
  const buckets = await db.query<{ name: string; objects: number; bytes: number; want_objects: number; want_bytes: number }>(
    `SELECT b.name,
       (coalesce(s.object_count, 0) + coalesce((SELECT sum(objects) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS objects,
       (coalesce(s.total_bytes, 0) + coalesce((SELECT sum(bytes) FROM bucket_stat_deltas d WHERE d.bucket = b.name), 0))::int8 AS bytes,
       (SELECT count(*) FROM object_versions v WHERE v.bucket = b.name AND v.state = 'live')::int8 AS want_objects,
       (SELECT coalesce(sum(size), 0) FROM object_versions v WHERE v.bucket = b.name AND v.state = 'live')::int8 AS want_bytes
     FROM buckets b LEFT JOIN bucket_stats s ON s.bucket = b.name ORDER BY b.name`,
  );
  for (const r of buckets.rows) {
    assert.deepEqual(
      { objects: r.objects, bytes: r.bytes },
      { objects: r.want_objects, bytes: r.want_bytes },
      `${label}: counters of bucket ${r.name} differ from its live versions`,
    );
  }
}

/**
 * Every object a backend holds is accounted for: named by a copy row, or by a delete-copy task that will
 * remove it (an orphan is never left uncounted). Lists each backend in full (test backends are small).
 */
export async function assertNoStrayBytes(db: Queryable, backends: readonly Backend[], label = 'stray bytes'): Promise<void> {
  for (const b of backends) {
    const known = new Set<string>();
    const copies = await db.query<{ physical_key: string }>(`SELECT physical_key FROM object_copies WHERE backend = $1`, [b.name]);
    for (const c of copies.rows) known.add(c.physical_key);
    const tasks = await db.query<{ k: string }>(
      `SELECT payload->>'physicalKey' AS k FROM tasks WHERE kind = 'delete-copy' AND payload->>'backend' = $1`,
      [b.name],
    );
    for (const t of tasks.rows) known.add(t.k);
    // Objects assembled in place by a multipart upload still in progress are not strays either.
    const uploads = await db.query<{ physical_key: string }>(
      `SELECT physical_key FROM multipart_uploads WHERE backend = $1
       UNION ALL SELECT u.physical_key FROM multipart_replicas r JOIN multipart_uploads u USING (upload_id) WHERE r.backend = $1`,
      [b.name],
    );
    for (const u of uploads.rows) known.add(u.physical_key);
    const stray: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      // A backend a test made unreachable (a dead port) has nothing to list.
      const page = await b.list('', { ...(startAfter ? { startAfter } : {}), limit: 1000 }).catch((err: unknown) => {
        if (err instanceof BackendError && err.kind === 'Unavailable') return { entries: [], truncated: false };
        throw err;
      });
      for (const e of page.entries) if (!known.has(e.key)) stray.push(e.key);
      if (!page.truncated || page.entries.length === 0) break;
      startAfter = page.entries.at(-1)!.key;
    }
    assert.deepEqual(stray, [], `${label}: backend ${b.name} holds objects no metadata accounts for`);
  }
}
