import { BackendError, type Backend, type PhysicalMeta } from '../backends/backend.js';
import { physicalKey, newVersionId } from '../backends/layout.js';
import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as bq from '../meta/queries/backends.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { BackendRegistry } from './backends.js';
import { checkWriteConditions } from './conditions.js';
import { abandonStaged, publishStaged, readVersion, retireLive, stageCopy, type StagedCopy } from './copies.js';
import { CoreError } from './errors.js';
import type { Clock } from './tasks.js';
import { rankBackends, type PlacementStrategy } from './placement.js';
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

/**
 * The write state machine: stage (pending row + reservation) → produce bytes → commit (publish, retire
 * the previous version into the task queue) — or abort (drop the pending row, queue the partial bytes
 * for deletion). An acknowledged write is committed; an unacknowledged one leaves nothing live.
 *
 * Fencing: the janitor may take a write whose heartbeat went stale for abandoned. The writer notices at
 * its next heartbeat (the pending row is gone) and stops producing; its commit cannot publish a row that is
 * no longer pending; and its abort queues one more deletion of its key for bytes that may have landed
 * after the janitor's deletion ran.
 */
export async function writeVersion(deps: WriteDeps, req: WriteRequest): Promise<ObjectVersion> {
  const tried = new Set<string>();
  for (;;) {
    const staged = await stage(deps, req, tried);
    tried.add(staged.backend);
    const backend = deps.backends.get(staged.backend)!;
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
    try {
      await req.produce(backend, staged.physicalKey, meta, lost.signal);
      if (lost.signal.aborted) throw lost.signal.reason;
      const fields = req.finalize();
      return await commit(deps, staged, fields, req.conditions);
    } catch (err) {
      const outcome = await abandonStaged(deps.db, staged, 'abort').catch((abortErr: unknown) => {
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
      if (outcome === 'dropped' && req.retryable(err) && deps.backends.names.some((n) => !tried.has(n))) {
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
  let ranked = deps.backends.availableFirst(rankBackends(rows, deps.backends.names, deps.strategy, req.size, exclude));
  if (req.prefer?.length) {
    const preferred = ranked.filter((n) => req.prefer!.includes(n));
    ranked = [...preferred, ...ranked.filter((n) => !req.prefer!.includes(n))];
  }
  for (const name of ranked) {
    const staged = { versionId, bucket: req.bucket, key: req.key, size: req.size, backend: name, physicalKey: pkey };
    if (await stageCopy(deps.db, staged)) return staged;
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
      checkWriteConditions(live.rows[0] ? rowToVersion(live.rows[0]) : undefined, conditions);
    }
    await retireLive(q, staged.bucket, [staged.key], 'overwrite', deps.cleanupDelayMs);
    const published = await publishStaged(q, staged.versionId, fields);
    if (!published) {
      // The janitor took the write for abandoned (its heartbeat went stale) and queued its bytes for deletion.
      throw new CoreError('ServiceUnavailable', 'the write was abandoned before it could commit');
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
