/**
 * The copy-version primitive: one more copy of a live version on another backend, optionally retiring the
 * copy on a backend it replaces (a move). Repair, drains and replica convergence are built on it.
 *
 * Three steps, each safe to crash in:
 * 1. (one transaction, under the key's advisory lock) load the live version and its copies, choose the
 *    destination, reserve its quota and insert a PENDING copy owned by this task (`task_id`) under a new
 *    generation-unique key ({@link copyKey}). A pending copy a previous attempt of this task left is reused,
 *    never reserved twice; pending copies whose task died are dropped (their deletion queued).
 * 2. (no transaction) stream the bytes from a good copy (read failover across the version's live copies)
 *    to the destination, paced by the shared bandwidth limit, checking size and ETag (verify.ts).
 * 3. (the completing transaction, only while the lease is held, under the key lock) publish the copy live
 *    and retire the replaced copy through the outbox — or, if the version was overwritten or deleted
 *    meanwhile (its retirement already queued the pending copy's deletion), queue one more deletion of the
 *    key for bytes that may have landed after that ran.
 * The key lock is what every retirement of a version takes, so a retirement always sees the pending copy
 * and settles its reservation (meta/queries/copies.ts retireLive).
 */
import { Readable } from 'node:stream';
import { BackendError, type Backend, type PhysicalMeta } from '../backends/backend.js';
import { copyKey } from '../backends/layout.js';
import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as rq from '../meta/queries/replication.js';
import type { BackendRow } from '../meta/queries/backends.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BackendRegistry } from './backends.js';
import {
  dropPendingCopies,
  enqueueRepairTask,
  lockKeys,
  publishCopy,
  queueLateBytes,
  reserveCopy,
  retireCopies,
  type ReservedCopy,
} from './copies.js';
import { CoreError } from './errors.js';
import { rankBackends, zoneKey, type PlacementStrategy } from './placement.js';
import { openVersion, type ReadableCopy } from './read.js';
import { rowToVersion } from './rows.js';
import { enqueueTask, type Clock, type Task, type TaskContext, type TaskEffect, type TaskHandler } from './tasks.js';
import { Bandwidth, BytesCheck, expectedBytes } from './verify.js';
import type { ObjectVersion } from './types.js';

/** What replication (copy-version, repair, convergence) needs from the rest of core. */
export interface ReplicationDeps {
  db: Db;
  backends: BackendRegistry;
  log: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** `placement.replicas`: copies wanted for a bucket without its own `replicas`. */
  replicas: number;
  strategy: PlacementStrategy;
  /** Delay before the bytes of a retired copy are deleted (reads that started may finish). */
  cleanupDelayMs: number;
  /** Shared limit on the bytes copy-version streams (`workers.repair_bandwidth`). */
  bandwidth: Bandwidth;
  /** A source copy silent this long is abandoned for the next. */
  stallMs?: number;
}

/** Payload of a `copy-version` task. */
export interface CopyVersionPayload {
  versionId: string;
  /** The destination backend; chosen by placement when absent. */
  to?: string;
  /** A backend whose copy is retired once the new copy is live (a move). */
  retire?: string;
  /** The job (drain, rebalance) the task belongs to. */
  jobId?: number;
}

/** A live version with its copies, as replication sees it. */
export interface VersionReplicas {
  version: ObjectVersion;
  partSizes: number[] | null;
  want: number;
  copies: rq.ReplicaRow[];
}

/** Reads a live version, the replica count its bucket wants and all its copies; undefined when it is not live. */
export async function loadReplicas(q: Queryable, versionId: string, defaultReplicas: number): Promise<VersionReplicas | undefined> {
  const r = (await run<rq.VersionReplicasRow>(q, rq.versionReplicas(versionId, defaultReplicas))).rows[0];
  if (!r) return undefined;
  return { version: rowToVersion(r), partSizes: r.part_sizes, want: r.want, copies: r.copies };
}

/** Loads the version under its key lock (every retirement of the version takes the same lock). */
export async function lockReplicas(q: Queryable, versionId: string, defaultReplicas: number): Promise<VersionReplicas | undefined> {
  const first = await loadReplicas(q, versionId, defaultReplicas);
  if (!first) return undefined;
  await lockKeys(q, first.version.bucket, [first.version.key]);
  return loadReplicas(q, versionId, defaultReplicas);
}

/** Zone of a backend for placement: its label, or its own name when it has none (every backend its own zone). */
function zoneOf(rows: readonly rq.ReplicaBackendRow[], name: string): string {
  return zoneKey(name, rows.find((r) => r.name === name)?.zone);
}

/**
 * Orders the backends that may take a new copy of a version, best first: active, configured on this
 * instance, with room, holding no live or pending copy of it; zones not used by its good copies first,
 * then placement order; backends holding a bad copy (which would be replaced) last; healthy ones first.
 */
export function rankDestinations(
  rows: readonly rq.ReplicaBackendRow[],
  copies: readonly rq.ReplicaRow[],
  size: number,
  registry: BackendRegistry,
  strategy: PlacementStrategy,
): string[] {
  const holding = new Set(copies.filter((c) => c.state !== 'bad').map((c) => c.backend));
  const bad = new Set(copies.filter((c) => c.state === 'bad').map((c) => c.backend));
  const zones = new Set(copies.filter((c) => c.state === 'live').map((c) => zoneOf(rows, c.backend)));
  const ranked = rankBackends(rows as unknown as BackendRow[], registry.names, strategy, size, holding);
  const group = (n: string) => (bad.has(n) ? 2 : zones.has(zoneOf(rows, n)) ? 1 : 0);
  const byGroup = [0, 1, 2].flatMap((g) => ranked.filter((n) => group(n) === g));
  return registry.availableFirst(byGroup);
}

/** What step 1 decided. */
type Plan =
  | { kind: 'gone' }
  /** The destination already holds a live copy: only the retirement is left. */
  | { kind: 'present'; version: ObjectVersion; to: string }
  /** A move whose source copy is not needed (enough good copies elsewhere): only the retirement. */
  | { kind: 'surplus' }
  | { kind: 'copy'; r: VersionReplicas; dest: ReservedCopy; sources: rq.ReplicaRow[] };

/** Whether the version keeps as many good copies as it wants (at least one) without the copy on `backend`. */
function enoughWithout(r: VersionReplicas, backend: string): boolean {
  return r.copies.filter((c) => c.state === 'live' && c.backend !== backend).length >= Math.max(1, r.want);
}

/** Step 1, in one transaction. */
async function prepare(q: Queryable, deps: ReplicationDeps, task: Task, p: CopyVersionPayload): Promise<Plan> {
  const r = await lockReplicas(q, p.versionId, deps.replicas);
  if (!r) return { kind: 'gone' };
  const { version, copies } = r;
  const orphans = copies.filter((c) => c.state === 'pending' && c.task_id !== task.id && !c.owned).map((c) => c.backend);
  await dropPendingCopies(q, version.versionId, orphans, 'orphan-copy');
  const live = copies.filter((c) => c.state === 'live');
  let mine = copies.find((c) => c.state === 'pending' && c.task_id === task.id);
  // The previous attempt's destination failed: choose again (when another backend can take the copy).
  const avoid = p.to ? undefined : await failedDestination(q, task.id);
  if (mine && avoid === mine.backend) {
    const { rows } = await run<rq.ReplicaBackendRow>(q, rq.selectReplicaBackends());
    const others = rankDestinations(rows, copies.filter((c) => c.backend !== mine!.backend && !orphans.includes(c.backend)), version.size, deps.backends, deps.strategy);
    if (others.some((n) => n !== avoid)) {
      await dropPendingCopies(q, version.versionId, [mine.backend], 'copy-destination-failed');
      mine = undefined;
    }
  }
  if (mine) {
    const dest = { versionId: version.versionId, backend: mine.backend, physicalKey: mine.physical_key, size: mine.size, taskId: task.id };
    return { kind: 'copy', r, dest, sources: live };
  }
  if (live.length === 0) throw new CoreError('ServiceUnavailable', `no good copy of ${version.bucket}/${version.key} to copy from`);
  if (p.retire && !p.to && enoughWithout(r, p.retire)) return { kind: 'surplus' };
  const newCopy = (backend: string): ReservedCopy => ({
    versionId: version.versionId,
    backend,
    physicalKey: copyKey(version.bucket, version.key, version.versionId),
    size: version.size,
    taskId: task.id,
  });
  let candidates: string[];
  if (p.to) {
    const there = copies.find((c) => c.backend === p.to && !orphans.includes(c.backend));
    if (there?.state === 'live') return { kind: 'present', version, to: p.to };
    if (there?.state === 'pending') throw new Error(`another task is already copying ${version.versionId} to ${p.to}`);
    if (!deps.backends.get(p.to)) throw new CoreError('InvalidArgument', `backend ${p.to} is not configured on this instance`);
    candidates = [p.to];
  } else {
    const { rows } = await run<rq.ReplicaBackendRow>(q, rq.selectReplicaBackends());
    const present = copies.filter((c) => !orphans.includes(c.backend) && !(c.backend === avoid && c.state === 'pending'));
    const ranked = rankDestinations(rows, present, version.size, deps.backends, deps.strategy);
    // The backend that just failed goes last.
    candidates = [...ranked.filter((n) => n !== avoid), ...ranked.filter((n) => n === avoid)];
  }
  for (const backend of candidates) {
    // A bad copy occupies (version, backend): it is retired (outbox) to make room for the good one.
    if (copies.some((c) => c.backend === backend && c.state === 'bad')) {
      await retireCopies(q, version.versionId, [backend], 'replaced-bad', deps.cleanupDelayMs);
    }
    const dest = newCopy(backend);
    if (await reserveCopy(q, dest)) return { kind: 'copy', r, dest, sources: live };
  }
  // Nothing committed: a retired bad copy comes back with the rollback.
  throw new CoreError(
    'InsufficientStorage',
    p.to ? `backend ${p.to} is not active or has no room for ${version.size} bytes` : `no eligible backend has room for another copy of ${version.versionId}`,
  );
}

/** The destination the previous attempt of this task reported as failed (see {@link transfer}). */
async function failedDestination(q: Queryable, taskId: number): Promise<string | undefined> {
  const { rows } = await run<{ progress: { avoid?: unknown } | null }>(q, rq.taskProgress(taskId));
  const avoid = rows[0]?.progress?.avoid;
  return typeof avoid === 'string' ? avoid : undefined;
}

/** Step 2: streams the version from its good copies to the reserved destination, checking what was written. */
async function transfer(deps: ReplicationDeps, task: Task, ctx: TaskContext, r: VersionReplicas, dest: ReservedCopy, sources: rq.ReplicaRow[]): Promise<void> {
  const { version } = r;
  const backend = deps.backends.get(dest.backend);
  if (!backend) throw new Error(`backend ${dest.backend} is not configured on this instance`);
  if (sources.length === 0) throw new CoreError('ServiceUnavailable', `no good copy of ${version.bucket}/${version.key} to copy from`);
  // Healthy backends first; each attempt starts from a different copy (a corrupt source is not retried first).
  const order = deps.backends.availableFirst(sources.map((s) => s.backend));
  const shift = (task.attempts - 1) % order.length;
  const rotated = [...order.slice(shift), ...order.slice(0, shift)].map((n) => sources.find((s) => s.backend === n)!);
  const lost = new AbortController();
  const check = new BytesCheck(expectedBytes(version.size, version.etag, r.partSizes));
  const beat = setInterval(() => {
    void ctx.heartbeat({ bytes: check.seen, of: version.size }).then(
      (held) => {
        if (!held) lost.abort(new Error('the task lost its lease'));
      },
      () => {},
    );
  }, 10_000);
  beat.unref();
  try {
    const meta: PhysicalMeta = {
      bucket: version.bucket,
      key: version.key,
      versionId: version.versionId,
      etag: version.etag,
      ...pickHeaders(version),
      // Stored with the bytes, so a rebuild from the backends recovers them from any copy.
      userMeta: version.userMeta,
      ...(r.partSizes ? { partSizes: r.partSizes } : {}),
    };
    if (await copyServerSide(deps, version.size, rotated, backend, dest.physicalKey, meta)) return;
    let body: Readable = Readable.from([]);
    if (version.size > 0) {
      const readable: ReadableCopy[] = rotated.map((c) => ({
        describe: { backend: c.backend, physicalKey: c.physical_key },
        open: (range, signal) => {
          const b = deps.backends.get(c.backend);
          if (!b) return Promise.reject(new Error(`backend ${c.backend} is not configured`));
          return b.get(c.physical_key, range.start === 0 ? undefined : range, signal);
        },
      }));
      body = await openVersion({
        copies: readable,
        range: { start: 0, end: version.size - 1 },
        stallMs: deps.stallMs ?? 30_000,
        signal: lost.signal,
        log: deps.log,
        what: `${version.bucket}/${version.key}`,
      });
    }
    const paced = deps.bandwidth.limited ? body.pipe(deps.bandwidth.throttle()) : body;
    if (paced !== body) body.on('error', (err) => paced.destroy(err));
    paced.on('error', (err) => check.destroy(err));
    paced.pipe(check);
    try {
      await backend.put(dest.physicalKey, check, version.size, meta, lost.signal);
    } catch (err) {
      // The destination itself failed: the next attempt chooses another one when it can.
      if (err instanceof BackendError && err.backend === dest.backend && err.kind !== 'Aborted') {
        await ctx.heartbeat({ avoid: dest.backend }).catch(() => false);
      }
      throw err;
    }
    const wrong = check.mismatch();
    if (wrong) throw new Error(`copy of ${version.bucket}/${version.key} to ${dest.backend} does not verify: ${wrong}`);
    deps.metrics?.repairBytes.inc(version.size);
  } finally {
    clearInterval(beat);
  }
}

/**
 * Copies the version provider-side when a source copy is in a bucket of the same provider account and
 * endpoint as the destination (two backends that are buckets of one account): no byte passes through the
 * orchestrator, and the result is checked by its size. False when no source qualifies or the provider
 * refused (the caller then streams).
 */
async function copyServerSide(
  deps: ReplicationDeps,
  size: number,
  sources: readonly rq.ReplicaRow[],
  dest: Backend,
  dstKey: string,
  meta: PhysicalMeta,
): Promise<boolean> {
  if (!dest.copyFrom) return false;
  for (const s of sources) {
    const src = deps.backends.get(s.backend)?.copySource?.(s.physical_key);
    if (!src) continue;
    try {
      if (!(await dest.copyFrom(src, dstKey, meta, size))) continue;
      const head = await dest.head(dstKey);
      if (head?.size === size) {
        deps.metrics?.repairBytes.inc(size);
        return true;
      }
      deps.log.warn('server-side copy has the wrong size; streaming instead', { from: s.backend, to: dest.name, size: head?.size, want: size });
    } catch (err) {
      deps.log.warn('server-side copy failed; streaming instead', { from: s.backend, to: dest.name, err });
    }
  }
  return false;
}

function pickHeaders(v: ObjectVersion): Partial<PhysicalMeta> {
  const out: Partial<PhysicalMeta> = {};
  if (v.contentType !== undefined) out.contentType = v.contentType;
  if (v.contentEncoding !== undefined) out.contentEncoding = v.contentEncoding;
  if (v.contentDisposition !== undefined) out.contentDisposition = v.contentDisposition;
  if (v.contentLanguage !== undefined) out.contentLanguage = v.contentLanguage;
  if (v.cacheControl !== undefined) out.cacheControl = v.cacheControl;
  if (v.expires !== undefined) out.expires = v.expires;
  return out;
}

/** The `copy-version` task (see the module comment). */
export function copyVersionHandler(deps: ReplicationDeps): TaskHandler {
  return {
    kind: 'copy-version',
    async run(task, ctx): Promise<TaskEffect | void> {
      const p = task.payload as unknown as CopyVersionPayload;
      const kind = p.retire ? 'move' : 'add';
      const plan = await deps.db.tx((q) => prepare(q, deps, task, p));
      if (plan.kind === 'gone') return;
      if (plan.kind === 'surplus') {
        return async (q) => {
          // Still true under the key lock? (A copy may have gone meanwhile: then the next attempt copies.)
          const now = await lockReplicas(q, p.versionId, deps.replicas);
          if (!now) return;
          if (!enoughWithout(now, p.retire!)) throw new Error('the copy became needed; moving it instead');
          const gone = await retireCopies(q, p.versionId, [p.retire!], 'move', deps.cleanupDelayMs);
          if (gone.length) deps.metrics?.repairRetired.inc({ reason: 'surplus' });
        };
      }
      if (plan.kind === 'present') {
        if (!p.retire || p.retire === plan.to) return;
        return async (q) => {
          // Retire only while the destination's copy is still live (under the key lock).
          const now = await lockReplicas(q, p.versionId, deps.replicas);
          if (!now?.copies.some((c) => c.backend === plan.to && c.state === 'live')) return;
          const gone = await retireCopies(q, p.versionId, [p.retire!], 'move', deps.cleanupDelayMs);
          if (gone.length) deps.metrics?.repairRetired.inc({ reason: 'move' });
        };
      }
      const { r, dest, sources } = plan;
      try {
        await transfer(deps, task, ctx, r, dest, sources);
      } catch (err) {
        deps.metrics?.repairCopies.inc({ kind, outcome: 'failed' });
        throw err;
      }
      return async (q) => {
        await lockKeys(q, r.version.bucket, [r.version.key]);
        if (!(await publishCopy(q, dest.versionId, dest.backend, task.id))) {
          await queueLateBytes(q, dest.backend, dest.physicalKey, 'copy-late-bytes');
          deps.metrics?.repairCopies.inc({ kind, outcome: 'dropped' });
          return;
        }
        deps.metrics?.repairCopies.inc({ kind, outcome: 'published' });
        if (p.retire && p.retire !== dest.backend) {
          const gone = await retireCopies(q, dest.versionId, [p.retire], 'move', deps.cleanupDelayMs);
          if (gone.length) deps.metrics?.repairRetired.inc({ reason: 'move' });
        }
        // Bad copies are retired by repair once enough good ones exist, and a surplus once no add is under
        // way: this copy may be the one it waited for.
        const now = await loadReplicas(q, dest.versionId, deps.replicas);
        const live = now?.copies.filter((c) => c.state === 'live').length ?? 0;
        if (now && (now.copies.some((c) => c.state === 'bad') || live > now.want)) {
          await enqueueRepairTask(q, dest.versionId, 'copy-published', deps.clock);
        }
      };
    },
  };
}

/**
 * Queues the move of a version's copy off `from` (to `to`, else wherever placement says), in the caller's
 * transaction. One move per (version, source) at a time. Returns the task id (undefined when one is
 * already queued or running).
 */
export function enqueueMove(
  q: Queryable,
  m: { versionId: string; from: string; to?: string; jobId?: number },
  clock?: Clock,
): Promise<number | undefined> {
  const payload: CopyVersionPayload = { versionId: m.versionId, retire: m.from };
  if (m.to !== undefined) payload.to = m.to;
  if (m.jobId !== undefined) payload.jobId = m.jobId;
  return enqueueTask(q, 'copy-version', payload, { singletonKey: `move:${m.versionId}:${m.from}`, ...(m.jobId !== undefined ? { jobId: m.jobId } : {}) }, clock);
}

/** Queues one more copy of a version (placement chooses where), in the caller's transaction. */
export function enqueueAddCopy(q: Queryable, versionId: string, clock?: Clock): Promise<number | undefined> {
  return enqueueTask(q, 'copy-version', { versionId } satisfies CopyVersionPayload, {}, clock);
}

/** Queues the repair of a version (a singleton per version), in the caller's transaction. */
export function enqueueRepair(q: Queryable, versionId: string, reason: string, clock?: Clock): Promise<number | undefined> {
  return enqueueRepairTask(q, versionId, reason, clock);
}
