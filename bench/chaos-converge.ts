/**
 * Convergence after the faults: once the load stopped and every fault was undone, the deployment must
 * settle by itself — no write left pending, no multipart upload left completing, the task queue drained
 * (nothing queued or active, nothing dead), and then the quota ledger exact (counters = rows, the check
 * of test/harness/ledger.ts) and no byte on any backend that no row or task accounts for; every live
 * version holds exactly its replica count of live copies (repair and surplus retirement ran), and
 * `fsck` (src/core/fsck.ts, what `s3-orchestrator fsck` runs) over the database and every backend finds
 * nothing: no orphan, no missing or wrong-size copy, no version below its replicas, no counter drift.
 */
import { hasFindings, runFsck, type FsckReport } from '../src/core/fsck.js';
import type { Db } from '../src/meta/db.js';
import { openPostgres } from '../src/meta/engine-pg.js';
import { assertLedger, assertNoStrayBytes } from '../test/harness/ledger.js';
import type { ChaosEnv } from './chaos-env.js';

export interface Convergence {
  ok: boolean;
  /** Work that is not done yet by design, and when it will be (tasks claimed by a killed instance). */
  deferred: string[];
  /** How long the queue took to drain after the quiet phase. */
  waitedMs: number;
  problems: string[];
  /** Live versions, and those whose live copy count differs from their replicas at the end. */
  replicas: { versions: number; wrong: number; waitedMs: number };
  /** The fsck report (grace period 0: the load has stopped), undefined when it could not run. */
  fsck?: FsckReport;
  left: { pendingVersions: number; uploads: number; completing: number; queued: number; active: number; dead: number; held: number; heldUntil: number };
}

/** Singleton tasks that re-queue themselves for their next pass forever (the scrubs): never "left over". */
const PERIODIC = `'scrub', 'scrub-deep'`;

async function leftovers(db: Db): Promise<Convergence['left']> {
  const { rows } = await db.query<Convergence['left']>(
    `SELECT (SELECT count(*) FROM object_versions WHERE state = 'pending')::int8 AS "pendingVersions",
            (SELECT count(*) FROM multipart_uploads)::int8 AS uploads,
            (SELECT count(*) FROM multipart_uploads WHERE state = 'completing')::int8 AS completing,
            (SELECT count(*) FROM tasks WHERE state = 'queued' AND kind NOT IN (${PERIODIC}))::int8 AS queued,
            (SELECT count(*) FROM tasks WHERE state = 'active')::int8 AS active,
            (SELECT count(*) FROM tasks WHERE state = 'dead')::int8 AS dead,
            (SELECT count(*) FROM tasks WHERE state = 'active' AND lease_until > now() + interval '20 seconds')::int8 AS held,
            coalesce((SELECT extract(epoch FROM max(lease_until) - now()) FROM tasks WHERE state = 'active'), 0)::float8 AS "heldUntil"`,
  );
  return rows[0]!;
}

/**
 * Waits (up to `timeoutMs`) for the queue to drain, then checks the ledger and the backends.
 *
 * A task claimed by an instance that was then SIGKILLed, or whose outcome its worker could not record
 * because the database was unreachable, stays `active` until its lease expires (5 minutes,
 * docs/tasks.md) and is claimed again then: that is the queue's contract, not a failure. Such claims (a
 * lease still more than 20 s away, which no task of this load needs) are reported as deferred, unless
 * `waitLeases` asks to wait them out too; an active task whose lease has expired is a failure.
 */
export async function checkConvergence(env: ChaosEnv, timeoutMs: number, waitLeases = false): Promise<Convergence> {
  const { url, schema } = env.db.connection();
  const db = await openPostgres(url, { schema, poolSize: 2 });
  const started = Date.now();
  const problems: string[] = [];
  try {
    let left = await leftovers(db);
    const busy = () => left.pendingVersions + left.completing + left.queued + left.active - (waitLeases ? 0 : left.held) > 0;
    while (busy() && Date.now() - started < timeoutMs) {
      await new Promise((r) => setTimeout(r, 500));
      left = await leftovers(db);
    }
    const waitedMs = Date.now() - started;
    const deferred: string[] = [];
    if (left.held && !waitLeases) {
      deferred.push(
        `${left.held} tasks still under a claim whose worker died or could not record the outcome (database unreachable): claimable again when the lease expires (within ${Math.ceil(left.heldUntil)} s)`,
      );
      left.active -= left.held;
    }
    if (left.pendingVersions) problems.push(`${left.pendingVersions} versions still pending after ${waitedMs} ms`);
    if (left.completing) problems.push(`${left.completing} multipart uploads still completing`);
    if (left.uploads - left.completing) problems.push(`${left.uploads - left.completing} multipart uploads left (the run aborted its own)`);
    if (left.queued + left.active) problems.push(`task queue not drained: ${left.queued} queued, ${left.active} active`);
    if (left.dead) {
      const { rows } = await db.query<{ kind: string; last_error: string }>(`SELECT kind, last_error FROM tasks WHERE state = 'dead' LIMIT 5`);
      problems.push(`${left.dead} dead tasks, e.g. ${rows.map((r) => `${r.kind}: ${r.last_error}`).join('; ')}`);
    }
    try {
      await assertLedger(db, 'chaos ledger');
    } catch (err) {
      problems.push(`ledger: ${err instanceof Error ? err.message : String(err)}`);
    }
    const replicas = await replicaCounts(db, env.replicas, started + timeoutMs, deferred, problems);
    const backends = env.backends();
    let fsck: FsckReport | undefined;
    try {
      await assertNoStrayBytes(db, backends, 'chaos');
    } catch (err) {
      problems.push(`stray bytes: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      fsck = await runFsck(db, backends, { defaultReplicas: env.replicas, graceMs: 0, examples: 3 });
      const r = fsck;
      for (const b of r.backends) if (b.error) problems.push(`fsck could not check ${b.name}: ${b.error}`);
      if (hasFindings(r)) {
        problems.push(
          `fsck: ${r.orphans.count} orphans (${r.orphans.bytes} B), ${r.missing.count} missing and ${r.wrongSize.count} wrong-size copies, ` +
            `${r.underReplicated.count} versions below their replicas, ${r.backendCounters.count + r.bucketCounters.count} drifted counters; e.g. ` +
            JSON.stringify([...r.orphans.examples, ...r.missing.examples, ...r.wrongSize.examples, ...r.underReplicated.examples, ...r.backendCounters.examples, ...r.bucketCounters.examples].slice(0, 4)),
        );
      }
      if (r.repairing && !left.held) problems.push(`fsck: ${r.repairing} versions below their replicas with a repair still queued`);
    } catch (err) {
      problems.push(`fsck failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await Promise.all(backends.map((b) => b.close()));
    }
    return { ok: problems.length === 0, deferred, waitedMs, problems, replicas, ...(fsck ? { fsck } : {}), left };
  } finally {
    await db.close();
  }
}

/**
 * Polls (until `until`) for every live version to hold exactly its replica count of live copies. Versions
 * whose repair or move is claimed by a dead worker (lease not expired) are deferred, not failures.
 */
async function replicaCounts(db: Db, defaultReplicas: number, until: number, deferred: string[], problems: string[]): Promise<Convergence['replicas']> {
  const started = Date.now();
  const count = async () =>
    (
      await db.query<{ versions: number; wrong: number; held: number; example: string | null }>(
        `WITH u AS (
           SELECT v.version_id, v.bucket, v.key, coalesce(b.replicas, $1)::int AS replicas,
                  (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'live')::int AS live
           FROM object_versions v JOIN buckets b ON b.name = v.bucket WHERE v.state = 'live')
         SELECT count(*)::int8 AS versions, count(*) FILTER (WHERE live <> replicas)::int8 AS wrong,
                count(*) FILTER (WHERE live <> replicas AND EXISTS (
                  SELECT 1 FROM tasks t WHERE t.kind IN ('repair-version', 'copy-version') AND t.state = 'active'
                    AND t.lease_until > now() + interval '20 seconds' AND t.payload->>'versionId' = u.version_id))::int8 AS held,
                min(CASE WHEN live <> replicas THEN key || ' ' || version_id || ': ' || live || ' of ' || replicas END) AS example
         FROM u`,
        [defaultReplicas],
      )
    ).rows[0]!;
  let c = await count();
  while (c.wrong > c.held && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    c = await count();
  }
  if (c.held) deferred.push(`${c.held} versions not at their replica count yet: their repair is claimed by a dead worker (lease not expired)`);
  if (c.wrong > c.held) problems.push(`${c.wrong - c.held} of ${c.versions} live versions do not hold their replica count of live copies (e.g. ${c.example})`);
  return { versions: Number(c.versions), wrong: Number(c.wrong), waitedMs: Date.now() - started };
}
