/**
 * Repair: brings one version to its bucket's replica count, and replica convergence: finds the versions of
 * a bucket that need it.
 *
 * `repair-version` (a singleton per version) looks at the version's copies and decides, in its completing
 * transaction under the key lock (fenced by the lease):
 * - pending copies whose task died are dropped (their reservation settled, their deletion queued);
 * - fewer good (live) copies than wanted → `copy-version` tasks that add the missing ones (as many as
 *   there are eligible backends; adds already queued or running count as coming);
 * - as many good copies as wanted → bad copies are retired through the outbox;
 * - more good copies than wanted (and no add under way) → the surplus is retired through the outbox,
 *   bad copies first, then copies on backends that take no new copies (draining, read-only, removed,
 *   unconfigured), then copies sharing a zone with a kept one, then by read priority and placement order.
 *   The last good copy is never retired (a surplus needs at least `want` ≥ 1 good copies kept).
 * - no good copy at all → each bad copy is verified again (size and ETag); one that verifies becomes live
 *   again (a NotFound that was transient); if none does the version is unreadable and is logged.
 *
 * `converge-replicas` (a singleton per bucket) pages the bucket's live versions in key order (one page
 * per run, continuing with a new task in the completing transaction, so it resumes where it stopped) and
 * queues `repair-version` for each version whose live copy count differs from the wanted one or that has
 * a bad copy. When the bucket's replica count changes during the walk, the walk starts over.
 */
import type { Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as rq from '../meta/queries/replication.js';
import type { BackendRegistry } from './backends.js';
import { dropPendingCopies, restoreBadCopy, retireCopies } from './copies.js';
import { enqueueAddCopy, loadReplicas, lockReplicas, rankDestinations, type ReplicationDeps } from './replicate.js';
import { zoneKey } from './placement.js';
import { enqueueTask, type Clock, type TaskEffect, type TaskHandler } from './tasks.js';
import { BytesCheck, expectedBytes } from './verify.js';
import { BackendError } from '../backends/backend.js';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Versions examined per run of `converge-replicas`. */
export const CONVERGE_PAGE = 500;

/** Payload of a `repair-version` task. */
export interface RepairPayload {
  versionId: string;
  reason: string;
}

/**
 * Chooses which good copies to keep (best first, distinct zones preferred) and returns the others: the
 * copies to retire so that `want` remain. Never returns all of them (`want` ≥ 1).
 */
export function surplusCopies(
  good: readonly rq.ReplicaRow[],
  want: number,
  backends: readonly rq.ReplicaBackendRow[],
  registry: BackendRegistry,
): string[] {
  const keepN = Math.max(1, want);
  if (good.length <= keepN) return [];
  const row = (n: string) => backends.find((b) => b.name === n);
  const pos = (n: string) => {
    const i = registry.names.indexOf(n);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  const takesCopies = (n: string) => row(n)?.state === 'active' && registry.get(n) !== undefined;
  const ranked = [...good].sort(
    (a, b) =>
      Number(takesCopies(b.backend)) - Number(takesCopies(a.backend)) ||
      (row(a.backend)?.read_priority ?? 0) - (row(b.backend)?.read_priority ?? 0) ||
      pos(a.backend) - pos(b.backend),
  );
  const zone = (n: string) => zoneKey(n, row(n)?.zone);
  const keep: string[] = [];
  const zones = new Set<string>();
  for (const c of ranked) {
    if (keep.length < keepN && !zones.has(zone(c.backend))) {
      keep.push(c.backend);
      zones.add(zone(c.backend));
    }
  }
  for (const c of ranked) if (keep.length < keepN && !keep.includes(c.backend)) keep.push(c.backend);
  return ranked.filter((c) => !keep.includes(c.backend)).map((c) => c.backend);
}

/** Re-reads a whole copy and checks it; 'ok', 'bad' (missing, wrong size or ETag) or 'unreachable'. */
export async function verifyCopy(
  registry: BackendRegistry,
  copy: { backend: string; physicalKey: string },
  want: ReturnType<typeof expectedBytes>,
  pace?: { throttle(): import('node:stream').Transform; limited: boolean },
): Promise<{ outcome: 'ok' | 'bad' | 'unreachable'; detail?: string }> {
  const backend = registry.get(copy.backend);
  if (!backend) return { outcome: 'unreachable', detail: 'backend not configured' };
  try {
    const head = await backend.head(copy.physicalKey);
    if (!head) return { outcome: 'bad', detail: 'missing' };
    if (head.size !== want.size) return { outcome: 'bad', detail: `size ${head.size}, expected ${want.size}` };
    if (want.size === 0) return { outcome: 'ok' };
    const check = new BytesCheck(want);
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const body = await backend.get(copy.physicalKey);
    if (pace?.limited) await pipeline(body, pace.throttle(), check, sink);
    else await pipeline(body, check, sink);
    const wrong = check.mismatch();
    return wrong ? { outcome: 'bad', detail: wrong } : { outcome: 'ok' };
  } catch (err) {
    if (err instanceof BackendError && err.kind === 'NotFound') return { outcome: 'bad', detail: 'missing' };
    return { outcome: 'unreachable', detail: err instanceof Error ? err.message : String(err) };
  }
}

/** The `repair-version` task (see the module comment). */
export function repairVersionHandler(deps: ReplicationDeps): TaskHandler {
  return {
    kind: 'repair-version',
    async run(task): Promise<TaskEffect | void> {
      const p = task.payload as unknown as RepairPayload;
      const r = await loadReplicas(deps.db, p.versionId, deps.replicas);
      if (!r) return;
      // With no good copy left, a bad copy that verifies again (a transient NotFound) is all there is.
      const restorable: string[] = [];
      if (!r.copies.some((c) => c.state === 'live')) {
        const want = expectedBytes(r.version.size, r.version.etag, r.partSizes);
        let unreachable = false;
        for (const c of r.copies.filter((x) => x.state === 'bad')) {
          const v = await verifyCopy(deps.backends, { backend: c.backend, physicalKey: c.physical_key }, want, deps.bandwidth);
          if (v.outcome === 'ok') restorable.push(c.backend);
          if (v.outcome === 'unreachable') unreachable = true;
        }
        if (restorable.length === 0) {
          if (unreachable) throw new Error(`no good copy of ${r.version.bucket}/${r.version.key} and a bad one could not be re-verified; retrying`);
          deps.log.error('no copy of this version verifies; it cannot be read or repaired (its copies are kept)', {
            bucket: r.version.bucket,
            key: r.version.key,
            versionId: r.version.versionId,
          });
          deps.metrics?.repairCopies.inc({ kind: 'add', outcome: 'unrecoverable' });
          return;
        }
      }
      return (q) => settle(q, deps, p.versionId, restorable);
    },
  };
}

/** The decisions of a repair, under the key lock in the completing transaction. */
async function settle(q: Queryable, deps: ReplicationDeps, versionId: string, restorable: readonly string[]): Promise<void> {
  const r = await lockReplicas(q, versionId, deps.replicas);
  if (!r) return;
  for (const b of restorable) {
    if (await restoreBadCopy(q, versionId, b)) {
      const c = r.copies.find((x) => x.backend === b)!;
      c.state = 'live';
      deps.log.warn('a bad copy verified again and is live again', { versionId, backend: b });
    }
  }
  const orphans = r.copies.filter((c) => c.state === 'pending' && !c.owned).map((c) => c.backend);
  await dropPendingCopies(q, versionId, orphans, 'orphan-copy');
  const good = r.copies.filter((c) => c.state === 'live');
  const bad = r.copies.filter((c) => c.state === 'bad').map((c) => c.backend);
  if (good.length === 0) return;
  const coming = (await run<{ n: number }>(q, rq.inflightAdds(versionId))).rows[0]?.n ?? 0;
  const { rows: backends } = await run<rq.ReplicaBackendRow>(q, rq.selectReplicaBackends());
  const missing = r.want - good.length - coming;
  if (missing > 0) {
    const present = r.copies.filter((c) => !orphans.includes(c.backend));
    const eligible = rankDestinations(backends, present, r.version.size, deps.backends, deps.strategy).length;
    const adds = Math.min(missing, eligible);
    for (let i = 0; i < adds; i++) await enqueueAddCopy(q, versionId, deps.clock);
    if (adds > 0) deps.log.info('repair: adding copies', { versionId, want: r.want, good: good.length, adds });
    if (adds < missing) {
      deps.log.warn('not enough eligible backends for the wanted replica count', { versionId, want: r.want, good: good.length, eligible });
    }
  }
  if (good.length >= r.want && bad.length > 0) {
    const gone = await retireCopies(q, versionId, bad, 'bad-copy', deps.cleanupDelayMs);
    if (gone.length > 0) deps.log.info('repair: retiring bad copies', { versionId, backends: gone });
    deps.metrics?.repairRetired.inc({ reason: 'bad' }, gone.length);
  }
  if (good.length > r.want && coming === 0) {
    const surplus = surplusCopies(good, r.want, backends, deps.backends);
    const gone = await retireCopies(q, versionId, surplus, 'surplus-copy', deps.cleanupDelayMs);
    if (gone.length > 0) deps.log.info('repair: retiring surplus copies', { versionId, want: r.want, backends: gone });
    deps.metrics?.repairRetired.inc({ reason: 'surplus' }, gone.length);
  }
}

/** Payload of a `converge-replicas` task. */
export interface ConvergePayload {
  bucket: string;
  /** The last key examined (keyset cursor); absent at the start of a walk. */
  after?: string;
  /** The replica count the walk converges to (a change restarts the walk). */
  want?: number;
}

/** Queues the convergence of a bucket's versions to its replica count (a singleton per bucket), in the caller's transaction. */
export function enqueueReplicaConvergence(q: Queryable, bucket: string, clock?: Clock): Promise<number | undefined> {
  return enqueueTask(q, 'converge-replicas', { bucket } satisfies ConvergePayload, { singletonKey: `converge:${bucket}` }, clock);
}

/** The `converge-replicas` task (see the module comment). */
export function convergeReplicasHandler(deps: ReplicationDeps, pageSize = CONVERGE_PAGE): TaskHandler {
  return {
    kind: 'converge-replicas',
    async run(task): Promise<TaskEffect | void> {
      const p = task.payload as unknown as ConvergePayload;
      const { rows: page } = await run<rq.ConvergeRow>(deps.db, rq.convergePage(p.bucket, p.after ?? null, pageSize));
      return async (q) => {
        const want = (await run<{ want: number }>(q, rq.bucketReplicas(p.bucket, deps.replicas))).rows[0]?.want;
        if (want === undefined) return;
        const skew = deps.clock?.skewMs() ?? 0;
        const again = (payload: ConvergePayload) =>
          enqueueTask(q, 'converge-replicas', payload, { singletonKey: `converge:${p.bucket}` }, deps.clock);
        if (p.want !== undefined && p.want !== want) {
          await again({ bucket: p.bucket, want });
          return;
        }
        const ids = page.filter((v) => v.live !== want || v.bad > 0).map((v) => v.version_id);
        if (ids.length > 0) await run(q, rq.enqueuePerVersion('repair-version', 'repair:', ids, { reason: 'converge' }, skew));
        if (page.length === pageSize) await again({ bucket: p.bucket, after: page.at(-1)!.key, want });
      };
    },
  };
}

/**
 * Queues a convergence for every bucket whose wanted replica count differs from the one last converged to
 * (kept in `settings` as `replicas:<bucket>`; a bucket never converged counts as 1, what every version had
 * before replication). Runs at start-up and periodically, so a change of `placement.replicas`, of a
 * bucket's `replicas` in the config file or through the admin API converges whichever instance made it.
 * Returns the buckets queued.
 */
export async function convergeChangedBuckets(deps: Pick<ReplicationDeps, 'db' | 'replicas' | 'clock'>): Promise<string[]> {
  return deps.db.tx(async (q) => {
    const { rows } = await run<{ name: string; want: number; last: string | null }>(q, rq.replicaTargets(deps.replicas));
    const changed = rows.filter((r) => Number(r.last ?? '1') !== r.want);
    for (const r of changed) {
      await enqueueReplicaConvergence(q, r.name, deps.clock);
      await run(q, rq.upsertSetting(`replicas:${r.name}`, String(r.want)));
    }
    return changed.map((r) => r.name);
  });
}
