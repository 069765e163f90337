import { BackendError, type Backend, type PhysicalMeta } from '../backends/backend.js';
import { physicalKey, newVersionId } from '../backends/layout.js';
import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as bq from '../meta/queries/backends.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { BackendRegistry } from './backends.js';
import { checkWriteConditions } from './conditions.js';
import {
  abandonStaged,
  bucketReplicas,
  dropPendingCopies,
  enqueueRepairTask,
  lockBackendRows,
  publishStaged,
  readVersion,
  retireLive,
  stageCopy,
  stageExtraCopy,
  stageReplicated,
  type StagedCopy,
} from './copies.js';
import { CoreError } from './errors.js';
import type { Clock } from './tasks.js';
import { nextTarget, rankBackends, spreadZones, zoneKey, type PlacementStrategy } from './placement.js';
import { rowToVersion, type VersionFields } from './rows.js';
import type { ObjectVersion, WriteConditions } from './types.js';

/** What the write path needs from the rest of core. */
export interface WriteDeps {
  db: Db;
  backends: BackendRegistry;
  strategy: PlacementStrategy;
  /** Delay before the bytes of an overwritten or deleted version are removed (lets in-flight reads finish). */
  cleanupDelayMs: number;
  /** How often a streaming write (or a multipart completion) refreshes its heartbeat. */
  heartbeatMs: number;
  /** A write or completion whose heartbeat is older than this is taken for abandoned (`workers.stale_write_timeout`). */
  staleMs: number;
  /** `placement.replicas`: copies a version of a bucket without its own count wants (default 1). */
  replicas?: number;
  /** `placement.write_quorum`: copies that must be stored before a write is acknowledged (default: all). */
  writeQuorum?: number;
  /** The clock leases and heartbeats are judged by (tests move it). */
  clock?: Clock;
  log: Logger;
}

/** A write that holds a pending version row and a quota reservation on one backend. */
export type StagedWrite = StagedCopy;

export type { VersionFields } from './rows.js';

/** One write of one logical version, as driven by {@link writeVersion}. */
export interface WriteRequest {
  bucket: string;
  key: string;
  size: number;
  conditions?: WriteConditions;
  /** Backends to try first when they have room (copy: where the source already is). */
  prefer?: readonly string[];
  /** Metadata stored beside the bytes (rebuild information). */
  meta: Omit<PhysicalMeta, 'bucket' | 'key' | 'versionId'>;
  /**
   * Stores the bytes on `backend` under `key`; throws on failure. `lost` aborts when the write was taken
   * for abandoned (stop writing then).
   */
  produce(backend: Backend, key: string, meta: PhysicalMeta, lost: AbortSignal): Promise<void>;
  /** Whether a failed `produce` may be retried on the next backend. */
  retryable(err: unknown): boolean;
  /** The fields to publish, called once the bytes are stored (may throw, e.g. a digest mismatch). */
  finalize(): VersionFields;
}

/** A version being written: its pending row, and the backends holding its pending copies. */
interface Staged {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  physicalKey: string;
  /** Backends of the copies staged at the start, in the order chosen. */
  copies: string[];
  /** Every backend a copy was staged on (the first ones and replacements), for abort. */
  tried: Set<string>;
  /** Candidates for replacements, best first. */
  ranked: string[];
  zoneOf: (name: string) => string | undefined;
  replicas: number;
  quorum: number;
}

/**
 * The write state machine: stage (pending row + one reservation per copy) → produce the bytes on every
 * chosen backend at once → commit (publish, retire the previous version into the task queue) — or abort
 * (drop the pending row, queue the partial bytes for deletion). An acknowledged write is committed; an
 * unacknowledged one leaves nothing live.
 *
 * Replication: a version wants `replicas` copies on distinct backends (distinct zones when it can); the
 * write is acknowledged once `quorum` of them are durable. A destination that fails is dropped while the
 * others go on; while the body can still be replayed from its first byte (see FanOut / ReplayableSource),
 * it is replaced by the next eligible backend. Copies that failed or were never made are dropped in the
 * publishing transaction, which also queues a `repair-version` task to make them later.
 *
 * Fencing: the janitor may take a write whose heartbeat went stale for abandoned. The writer notices at
 * its next heartbeat (the pending row is gone) and stops producing; its commit cannot publish a row that is
 * no longer pending; and its abort queues one more deletion of its keys for bytes that may have landed
 * after the janitor's deletion ran.
 */
export async function writeVersion(deps: WriteDeps, req: WriteRequest): Promise<ObjectVersion> {
  const staged = await stage(deps, req);
  const meta: PhysicalMeta = { ...req.meta, bucket: req.bucket, key: req.key, versionId: staged.versionId };
  const lost = new AbortController();
  const beat = setInterval(() => {
    run(deps.db, oq.heartbeat(staged.versionId)).then(
      (r) => {
        if (r.rowCount === 0 && !lost.signal.aborted) {
          deps.log.error('write was taken for abandoned while streaming; stopping it', { versionId: staged.versionId });
          lost.abort(new CoreError('ServiceUnavailable', 'the write was abandoned before it could commit'));
        }
      },
      (err: unknown) => deps.log.warn('heartbeat failed', { versionId: staged.versionId, err }),
    );
  }, deps.heartbeatMs);
  beat.unref();
  const failed: string[] = [];
  const errors: unknown[] = [];
  /** Produces one copy, moving to a replacement backend while the body can be replayed; the backend that holds it. */
  const slot = async (first: string): Promise<string | undefined> => {
    let name: string | undefined = first;
    let again = true;
    while (name !== undefined) {
      try {
        await req.produce(deps.backends.get(name)!, staged.physicalKey, meta, lost.signal);
        if (lost.signal.aborted) throw lost.signal.reason;
        return name;
      } catch (err) {
        // A kept-alive connection the provider had just closed: the same backend once more, from byte 0.
        if (again && !lost.signal.aborted && connectionDropped(err) && req.retryable(err)) {
          again = false;
          deps.log.warn('backend connection dropped before the write was acknowledged; retrying it once', { backend: name, err });
          continue;
        }
        again = true;
        failed.push(name);
        errors.push(err);
        if (lost.signal.aborted || !req.retryable(err)) return undefined;
        const next = await stageReplacement(deps, staged, failed);
        if (next) deps.log.warn('backend failed before the write was acknowledged; trying the next one', { backend: name, next, err });
        name = next;
      }
    }
    return undefined;
  };
  try {
    const done = (await Promise.all(staged.copies.map(slot))).filter((n): n is string => n !== undefined);
    if (lost.signal.aborted) throw lost.signal.reason;
    if (done.length < staged.quorum) {
      if (done.length === 0) throw errors[0];
      throw new CoreError(
        'ServiceUnavailable',
        `only ${done.length} of the ${staged.quorum} copies the write needs could be stored`,
        { cause: errors[0] },
      );
    }
    const fields = req.finalize();
    return await commit(deps, staged, fields, req.conditions, failed, done.length);
  } catch (err) {
    const copies = [...staged.tried].map((backend) => ({ backend, physicalKey: staged.physicalKey }));
    const outcome = await abandonStaged(deps.db, staged.versionId, copies, 'abort').catch((abortErr: unknown) => {
      // The janitor aborts the pending row once its heartbeat is stale; nothing is lost.
      deps.log.error('abort of failed write did not commit', { versionId: staged.versionId, err: abortErr });
      return 'unknown' as const;
    });
    if (outcome === 'live') {
      // The commit did happen (its reply was lost): the write is acknowledged with what was published.
      const v = await readVersion(deps.db, staged.versionId).catch(() => undefined);
      if (v) return v;
    }
    if (outcome === 'unknown' && !(err instanceof CoreError)) {
      throw new CoreError('ServiceUnavailable', 'the outcome of the write could not be confirmed; retry it', { cause: err });
    }
    throw fromBackendError(err);
  } finally {
    clearInterval(beat);
  }
}

/**
 * How many copies a new version of `bucket` wants (its own count, else `placement.replicas`) and how many
 * must be stored before the write is acknowledged (`placement.write_quorum`, capped at that count).
 */
export async function replicaPlan(deps: WriteDeps, q: Queryable, bucket: string): Promise<{ replicas: number; quorum: number }> {
  const replicas = (await bucketReplicas(q, bucket, deps.replicas ?? 1)) ?? deps.replicas ?? 1;
  return { replicas, quorum: Math.min(deps.writeQuorum ?? replicas, replicas) };
}

/**
 * Chooses the backends of a new version and reserves quota on each: the pending version and its pending
 * copies. One statement when the bucket wants one copy; otherwise one transaction that stages the copies
 * one backend at a time (distinct backends, distinct zones first) and gives up — 507, nothing written —
 * when fewer than the write quorum have room. The ranking reads counters that may be a moment old; each
 * reservation is atomic and re-checks the quota, so a stale ranking costs a retry, never an overshoot.
 */
async function stage(deps: WriteDeps, req: WriteRequest): Promise<Staged> {
  const versionId = newVersionId();
  const pkey = physicalKey(req.bucket, req.key, versionId);
  const [{ rows }, { replicas, quorum }] = await Promise.all([
    run<bq.BackendRow>(deps.db, bq.selectBackends()),
    replicaPlan(deps, deps.db, req.bucket),
  ]);
  // A backend whose circuit breaker is open takes no new copy: its copies would only be made by repair.
  const roomy = rankBackends(rows, deps.backends.names, deps.strategy, req.size);
  const open = roomy.filter((n) => !deps.backends.writable(n));
  let ranked = roomy.filter((n) => deps.backends.writable(n));
  if (req.prefer?.length) {
    const preferred = ranked.filter((n) => req.prefer!.includes(n));
    ranked = [...preferred, ...ranked.filter((n) => !req.prefer!.includes(n))];
  }
  const zones = new Map(rows.map((r) => [r.name, r.zone ?? undefined]));
  const staged: Staged = {
    versionId,
    bucket: req.bucket,
    key: req.key,
    size: req.size,
    physicalKey: pkey,
    copies: [],
    tried: new Set(),
    ranked,
    zoneOf: (n) => zones.get(n),
    replicas,
    quorum,
  };
  const first = { versionId, bucket: req.bucket, key: req.key, size: req.size, physicalKey: pkey };
  if (replicas === 1) {
    for (const backend of ranked) {
      if (await stageCopy(deps.db, { ...first, backend })) {
        staged.copies.push(backend);
        staged.tried.add(backend);
        return staged;
      }
    }
    throw noRoom(req.size, 0, 1, open);
  }
  // One statement: the first `replicas` backends with room, spread over zones, or nothing below the quorum.
  staged.ranked = spreadZones(ranked, staged.zoneOf);
  staged.copies = await stageReplicated(deps.db, first, staged.ranked, replicas, quorum);
  if (staged.copies.length === 0) throw noRoom(req.size, ranked.length < quorum ? ranked.length : 0, quorum, open);
  for (const c of staged.copies) staged.tried.add(c);
  return staged;
}

/** A reused connection the provider closed (reset, broken pipe, "socket hang up"): worth one more try. */
function connectionDropped(err: unknown): boolean {
  if (!(err instanceof BackendError) || err.kind !== 'Unavailable') return false;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up|ECONNRESET|EPIPE/.test(err.message);
}

/**
 * Why fewer backends than a write needs could take it: 503 when backends with room were left out because
 * their circuit breaker is open (the condition passes), else 507 (nothing fits).
 */
function noRoom(size: number, got: number, needed: number, open: readonly string[]): CoreError {
  const have = got === 0 ? 'no backend has' : `only ${got} backend${got === 1 ? '' : 's'} have`;
  const need = `the write needs ${needed} cop${needed === 1 ? 'y' : 'ies'} on distinct backends`;
  if (open.length > 0) {
    return new CoreError('ServiceUnavailable', `${have} room for ${size} bytes and a working connection (${open.join(', ')} unavailable); ${need}`);
  }
  return new CoreError('InsufficientStorage', `${have} room for ${size} bytes; ${need}`);
}

/**
 * Stages a copy on the next eligible backend, replacing a destination that failed while the body can
 * still be replayed; undefined when no backend is left that has room.
 */
async function stageReplacement(deps: WriteDeps, staged: Staged, failed: readonly string[]): Promise<string | undefined> {
  const chosenZones = new Set(
    [...staged.tried].filter((n) => !failed.includes(n)).map((n) => zoneKey(n, staged.zoneOf(n))),
  );
  for (;;) {
    const backend = nextTarget(staged.ranked, staged.tried, chosenZones, staged.zoneOf);
    if (backend === undefined) return undefined;
    staged.tried.add(backend);
    const c = { versionId: staged.versionId, size: staged.size, physicalKey: staged.physicalKey, backend };
    if (await stageExtraCopy(deps.db, c)) return backend;
  }
}

/**
 * Publishes a staged write in one transaction: retires the key's previous live version (the outbox), drops
 * the copies that failed, publishes the version and its stored copies, and — when fewer copies than the
 * bucket wants were stored — queues the repair that makes the missing ones.
 */
async function commit(
  deps: WriteDeps,
  staged: Staged,
  fields: VersionFields,
  conditions: WriteConditions | undefined,
  failed: readonly string[],
  stored: number,
): Promise<ObjectVersion> {
  return deps.db.tx(async (q) => {
    await run(q, oq.lockKey(staged.bucket, staged.key));
    await lockBackendRows(q, staged.tried);
    if (conditions) {
      const live = await run<oq.VersionRow>(q, oq.selectLive(staged.bucket, staged.key, true));
      checkWriteConditions(live.rows[0] ? rowToVersion(live.rows[0]) : undefined, conditions);
    }
    await retireLive(q, staged.bucket, [staged.key], 'overwrite', deps.cleanupDelayMs);
    await dropPendingCopies(q, staged.versionId, failed, 'abort');
    const published = await publishStaged(q, staged.versionId, fields);
    if (!published) {
      // The janitor took the write for abandoned (its heartbeat went stale) and queued its bytes for deletion.
      throw new CoreError('ServiceUnavailable', 'the write was abandoned before it could commit');
    }
    if (stored < staged.replicas) {
      await enqueueRepairTask(q, staged.versionId, 'write-quorum', deps.clock);
    }
    return published;
  });
}

/**
 * Maps a backend failure to a domain error: a write the caller aborted (client gone, body cut short or
 * failing verification — the S3 layer reports the body's own error in that case) is IncompleteBody, and
 * anything else means the backend is unavailable.
 */
export function fromBackendError(err: unknown): unknown {
  if (!(err instanceof BackendError)) return err;
  if (err.kind === 'Aborted') {
    return new CoreError('IncompleteBody', 'the request body ended before it was complete', { cause: err });
  }
  return new CoreError('ServiceUnavailable', `backend ${err.backend} failed: ${err.message}`, { cause: err });
}
