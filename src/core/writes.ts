import { BackendError, type Backend, type PhysicalMeta } from '../backends/backend.js';
import { physicalKey, newVersionId } from '../backends/layout.js';
import type { Db, Queryable } from '../meta/db.js';
import * as bq from '../meta/queries/backends.js';
import * as jq from '../meta/queries/jobs.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { BackendRegistry } from './backends.js';
import { checkWriteConditions } from './conditions.js';
import { CoreError } from './errors.js';
import { rankBackends, type PlacementStrategy } from './placement.js';
import type { ObjectVersion, WriteConditions } from './types.js';

/** What the write path needs from the rest of core. */
export interface WriteDeps {
  db: Db;
  backends: BackendRegistry;
  strategy: PlacementStrategy;
  /** Delay before the bytes of an overwritten or deleted version are removed (lets in-flight reads finish). */
  cleanupDelayMs: number;
  /** How often a streaming write refreshes its heartbeat. */
  heartbeatMs: number;
  log: Logger;
}

/** A write that holds a pending version row and a quota reservation on one backend. */
export interface StagedWrite {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  backend: string;
  physicalKey: string;
}

/** The fields of the version that are known only after the bytes are stored. */
export type VersionFields = oq.PublishFields;

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
  /** Stores the bytes on `backend` under `key`; throws on failure. */
  produce(backend: Backend, key: string, meta: PhysicalMeta): Promise<void>;
  /** Whether a failed `produce` may be retried on the next backend. */
  retryable(err: unknown): boolean;
  /** The fields to publish, called once the bytes are stored (may throw, e.g. a digest mismatch). */
  finalize(): VersionFields;
}

/**
 * The write state machine: stage (pending row + reservation) → produce bytes → commit (publish, retire
 * the previous version into the cleanup queue) — or abort (drop the pending row, queue the partial bytes
 * for deletion). An acknowledged write is committed; an unacknowledged one leaves nothing live.
 */
export async function writeVersion(deps: WriteDeps, req: WriteRequest): Promise<ObjectVersion> {
  const tried = new Set<string>();
  for (;;) {
    const staged = await stage(deps, req, tried);
    tried.add(staged.backend);
    const backend = deps.backends.get(staged.backend)!;
    const meta: PhysicalMeta = { ...req.meta, bucket: req.bucket, key: req.key, versionId: staged.versionId };
    const beat = setInterval(() => {
      run(deps.db, oq.heartbeat(staged.versionId)).catch((err: unknown) => {
        deps.log.warn('heartbeat failed', { versionId: staged.versionId, err });
      });
    }, deps.heartbeatMs);
    beat.unref();
    try {
      await req.produce(backend, staged.physicalKey, meta);
      const fields = req.finalize();
      return await commit(deps, staged, fields, req.conditions);
    } catch (err) {
      await abort(deps, staged, 'abort').catch((abortErr: unknown) => {
        // The janitor aborts the pending row once its heartbeat is stale; nothing is lost.
        deps.log.error('abort of failed write did not commit', { versionId: staged.versionId, err: abortErr });
      });
      if (req.retryable(err) && deps.backends.names.some((n) => !tried.has(n))) {
        deps.log.warn('backend failed before the write was acknowledged; trying the next one', {
          backend: staged.backend,
          err,
        });
        continue;
      }
      throw fromBackendError(err);
    } finally {
      clearInterval(beat);
    }
  }
}

/**
 * Reserves quota on the best backend with room and inserts the pending version, one statement per
 * candidate. The ranking reads backend counters that may be a moment old; the reservation itself is atomic
 * and re-checks the quota, so a stale ranking can only cost a retry on the next candidate, never overshoot.
 */
async function stage(deps: WriteDeps, req: WriteRequest, exclude: ReadonlySet<string>): Promise<StagedWrite> {
  const versionId = newVersionId();
  const pkey = physicalKey(req.bucket, req.key, versionId);
  const { rows } = await run<bq.BackendRow>(deps.db, bq.selectBackends());
  let ranked = rankBackends(rows, deps.backends.names, deps.strategy, req.size, exclude);
  if (req.prefer?.length) {
    const preferred = ranked.filter((n) => req.prefer!.includes(n));
    ranked = [...preferred, ...ranked.filter((n) => !req.prefer!.includes(n))];
  }
  for (const name of ranked) {
    const staged = { versionId, bucket: req.bucket, key: req.key, size: req.size, backend: name, physicalKey: pkey };
    const got = await run(deps.db, oq.stageWrite(staged));
    if (got.rowCount > 0) return staged;
  }
  throw new CoreError(
    exclude.size ? 'ServiceUnavailable' : 'InsufficientStorage',
    exclude.size ? 'every backend with room failed' : `no backend has room for ${req.size} bytes`,
  );
}

/** Publishes a staged write, retiring the key's previous live version (the outbox) in the same transaction. */
async function commit(
  deps: WriteDeps,
  staged: StagedWrite,
  fields: VersionFields,
  conditions: WriteConditions | undefined,
): Promise<ObjectVersion> {
  return deps.db.tx(async (q) => {
    await run(q, oq.lockKey(staged.bucket, staged.key));
    if (conditions) {
      const live = await run<oq.VersionRow>(q, oq.selectLive(staged.bucket, staged.key, true));
      checkWriteConditions(live.rows[0] ? oq.rowToVersion(live.rows[0]) : undefined, conditions);
    }
    await run(q, oq.retireLive(staged.bucket, [staged.key], 'overwrite', deps.cleanupDelayMs));
    const published = await run<oq.VersionRow>(q, oq.publishWrite(staged.versionId, fields));
    if (published.rowCount === 0) {
      // The janitor took the write for abandoned (its heartbeat went stale) and queued its bytes for deletion.
      throw new CoreError('ServiceUnavailable', 'the write was abandoned before it could commit');
    }
    return oq.rowToVersion(published.rows[0]!);
  });
}

/**
 * Drops a pending version and queues the deletion of whatever bytes its copies may have left. Its
 * reservations become used bytes that the cleanup job releases when the bytes are gone.
 */
export async function abort(deps: Pick<WriteDeps, 'db'>, staged: Pick<StagedWrite, 'versionId'>, reason: string): Promise<void> {
  await deps.db.tx((q) => abortIn(q, staged.versionId, reason));
}

/** {@link abort} inside an open transaction (the janitor aborts many in one). */
export async function abortIn(q: Queryable, versionId: string, reason: string): Promise<void> {
  const { rows } = await run<oq.CopyRow>(q, oq.dropVersion(versionId));
  for (const c of rows) {
    await run(q, bq.abandonReservation(c.backend, c.size));
    await run(
      q,
      jq.enqueueCleanup({ backend: c.backend, physicalKey: c.physical_key, releaseBytes: c.size, releaseObjects: 0, reason, delayMs: 0 }),
    );
  }
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

/** Runs one parameterised statement. */
export function run<R = Record<string, unknown>>(q: Queryable, sql: { text: string; values: readonly unknown[] }) {
  return q.query<R>(sql.text, sql.values);
}
