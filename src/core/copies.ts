import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as cq from '../meta/queries/copies.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { BackendRegistry } from './backends.js';
import { enqueueTask, type Clock, type TaskEffect, type TaskHandler } from './tasks.js';
import { rowToVersion, toPublishRow, type VersionFields } from './rows.js';
import type { ObjectVersion } from './types.js';

/**
 * The copy layer: the only code that creates, publishes, retires or deletes physical copies and changes the
 * quota counters that follow them. Every function runs in the caller's transaction (or one statement) and
 * queues the physical work it implies as a task in that same transaction, so a metadata change and the
 * promise to clean up after it commit together. The ledger it keeps (see meta/queries/copies.ts) is
 * checked after every integration test by test/harness/ledger.ts.
 */

/** A write that holds a pending version, its pending copy and a reservation on one backend. */
export interface StagedCopy {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  backend: string;
  physicalKey: string;
}

export type { VersionFields };

/** Reserves room on `staged.backend` and inserts the pending version and copy; false when it has no room. */
export async function stageCopy(q: Queryable, staged: StagedCopy): Promise<boolean> {
  return (await run(q, cq.stageWrite(staged))).rowCount > 0;
}

/** Makes a staged version live (its copies, counters and bucket delta with it); undefined when it is no longer pending. */
export async function publishStaged(q: Queryable, versionId: string, fields: VersionFields): Promise<ObjectVersion | undefined> {
  const { rows } = await run<oq.VersionRow>(q, cq.publishWrite(versionId, toPublishRow(fields)));
  return rows[0] ? rowToVersion(rows[0]) : undefined;
}

/**
 * What became of a version whose outcome a caller does not know (a COMMIT whose reply was lost, a
 * transaction that failed in an unknown place): 'live', 'pending' or 'gone'.
 */
export async function versionState(q: Queryable, versionId: string): Promise<'live' | 'pending' | 'gone'> {
  const { rows } = await run<{ state: 'live' | 'pending' }>(q, cq.versionState(versionId));
  return rows[0]?.state ?? 'gone';
}

/** Re-reads a version by id (after an unknown commit outcome resolved to live). */
export async function readVersion(q: Queryable, versionId: string): Promise<ObjectVersion | undefined> {
  const { rows } = await run<oq.VersionRow>(q, cq.selectLiveVersion(versionId));
  return rows[0] ? rowToVersion(rows[0]) : undefined;
}

/**
 * Locks backend rows in name order (the order every multi-backend counter change follows: no deadlocks).
 * Call first in a transaction that will change the counters of several backends.
 */
export async function lockBackendRows(q: Queryable, backends: Iterable<string>): Promise<void> {
  const names = [...new Set(backends)].sort();
  if (names.length > 1) await run(q, cq.lockBackendRows(names));
}

/**
 * Abandons a staged write. Only a PENDING version is dropped (each copy's reservation becomes used bytes,
 * released by the delete-copy task queued for its key); a version that is live is left alone — its commit
 * did happen. When the version is gone (the janitor took the write for abandoned while it was still
 * streaming), the bytes this writer stored may have landed after the janitor's deletion ran, so one more
 * deletion of each key is queued that releases nothing (the janitor's tasks carry the counters).
 * Returns what it found.
 */
export async function abandonStaged(
  db: Db,
  versionId: string,
  copies: readonly Pick<StagedCopy, 'backend' | 'physicalKey'>[],
  reason: string,
): Promise<'dropped' | 'live' | 'late'> {
  return db.tx(async (q) => {
    await lockBackendRows(q, copies.map((c) => c.backend));
    const dropped = await run(q, cq.dropPending(versionId, reason));
    if (dropped.rowCount > 0) return 'dropped';
    if ((await versionState(q, versionId)) === 'live') return 'live';
    for (const c of copies) await run(q, cq.queueUncountedDelete(c.backend, c.physicalKey, `${reason}-late-bytes`, 0));
    return 'late';
  });
}

/**
 * Stages a replicated write in one statement: the first `count` active backends of `ranked` with room each
 * reserve `size` and get a pending copy, with the pending version — only if at least `quorum` have room.
 * Returns the backends chosen, in `ranked` order (empty: nothing changed).
 */
export async function stageReplicated(
  q: Queryable,
  staged: Omit<StagedCopy, 'backend'>,
  ranked: readonly string[],
  count: number,
  quorum: number,
): Promise<string[]> {
  const { rows } = await run<{ backend: string }>(q, cq.stageReplicated({ ...staged, ranked, count, quorum }));
  return rows.map((r) => r.backend);
}

/**
 * Stages one more copy of a version still being written, on `backend` (reservation + pending copy in one
 * statement); false when the backend has no room or the version is no longer pending.
 */
export async function stageExtraCopy(q: Queryable, c: Omit<StagedCopy, 'bucket' | 'key'>): Promise<boolean> {
  return (await run(q, cq.stageExtraCopy(c))).rowCount > 0;
}

/** Drops the pending copies of a version on `backends` (failed destinations), queueing their deletion. */
export async function dropPendingCopies(q: Queryable, versionId: string, backends: readonly string[], reason: string): Promise<void> {
  if (backends.length > 0) await run(q, cq.dropPendingCopies(versionId, backends, reason));
}

/** The replica count wanted for `bucket` (its own, else `fallback`); undefined for an unknown bucket. */
export async function bucketReplicas(q: Queryable, bucket: string, fallback: number): Promise<number | undefined> {
  return (await run<{ replicas: number }>(q, cq.bucketReplicas(bucket, fallback))).rows[0]?.replicas;
}

/** Drops a pending version inside an open transaction (the janitor drops many in one). */
export async function dropPendingIn(q: Queryable, versionId: string, reason: string): Promise<void> {
  await run(q, cq.dropPending(versionId, reason));
}

/** Takes the advisory locks of several keys in one statement, in one fixed order (no deadlocks). */
export async function lockKeys(q: Queryable, bucket: string, keys: readonly string[]): Promise<string[]> {
  const sorted = [...new Set(keys)].sort();
  if (sorted.length > 0) await run(q, oq.lockKeys(bucket, sorted));
  return sorted;
}

/**
 * Retires the live versions of `keys` (overwrite or delete): their rows go, a delete-copy task per copy is
 * queued to run after `delayMs` (reads that already started can finish). Callers hold the key locks.
 * Returns the keys that had a live version.
 */
export async function retireLive(q: Queryable, bucket: string, keys: readonly string[], reason: string, delayMs: number): Promise<string[]> {
  const { rows } = await run<{ key: string }>(q, cq.retireLive(bucket, keys, reason, delayMs));
  return rows.map((r) => r.key);
}

/** Publishes an object assembled by a backend from a completing multipart upload; undefined if the upload is no longer completing. */
export async function publishAssembled(
  q: Queryable,
  id: { versionId: string; bucket: string; key: string; size: number; uploadId: string; backend: string; physicalKey: string },
  fields: VersionFields,
): Promise<ObjectVersion | undefined> {
  const { rows } = await run<oq.VersionRow>(q, cq.publishAssembled(id, toPublishRow(fields)));
  return rows[0] ? rowToVersion(rows[0]) : undefined;
}

/**
 * Drops a multipart upload in one of `states`: the native upload is aborted and its physical key (which
 * may hold the assembled object) deleted by a task, which then releases the upload's reservation. Returns
 * false when no such upload was there.
 */
export async function dropUpload(q: Queryable, uploadId: string, states: readonly string[], reason: string): Promise<boolean> {
  return (await run(q, cq.dropUpload(uploadId, states, reason))).rowCount > 0;
}

/**
 * Drops targets of a replicated multipart upload (all of them when `backends` is null): their native
 * uploads are aborted and keys deleted by tasks, which then release their reservations. Returns the
 * targets dropped.
 */
export async function dropUploadReplicas(
  q: Queryable,
  upload: { uploadId: string; physicalKey: string },
  backends: readonly string[] | null,
  reason: string,
): Promise<string[]> {
  const { rows } = await run<{ backend: string }>(q, cq.dropUploadReplicas(upload.uploadId, upload.physicalKey, backends, reason));
  return rows.map((r) => r.backend);
}

/**
 * Publishes the other targets of a completed upload that assembled the object as live copies of the
 * version (called in the transaction that published it from its first target). Returns those published.
 */
export async function publishUploadReplicas(
  q: Queryable,
  upload: { uploadId: string; versionId: string; physicalKey: string; size: number },
  backends: readonly string[],
): Promise<string[]> {
  if (backends.length === 0) return [];
  const { rows } = await run<{ backend: string }>(
    q,
    cq.publishUploadReplicas(upload.uploadId, upload.versionId, upload.physicalKey, upload.size, backends),
  );
  return rows.map((r) => r.backend);
}

/** Folds up to `limit` per-bucket counter deltas into bucket_stats. Returns how many deltas were folded. */
export async function foldBucketStats(db: Db, limit = 10_000): Promise<number> {
  return (await run<{ folded: number }>(db, cq.foldBucketDeltas(limit))).rows[0]?.folded ?? 0;
}

/** Payload of a delete-copy task. */
export interface DeleteCopyPayload {
  backend: string;
  physicalKey: string;
  /** Set when the native multipart upload must be aborted first. */
  uploadId?: string;
  releaseBytes: number;
  releaseObjects: number;
  reason: string;
}

/**
 * The delete-copy task: deletes exactly the named physical key (aborting its native upload first when it
 * has one), then — in the completing transaction, only while the lease is held — releases the bytes and
 * objects it carried. A key still referenced by a copy row is never deleted (defence in depth: generation-
 * unique keys make that impossible by design); the task then completes without releasing anything.
 */
export function deleteCopyHandler(db: Db, backends: BackendRegistry, log: Logger): TaskHandler {
  return {
    kind: 'delete-copy',
    async run(task): Promise<TaskEffect | void> {
      const p = task.payload as unknown as DeleteCopyPayload;
      const backend = backends.get(p.backend);
      if (!backend) throw new Error(`backend ${p.backend} is not configured`);
      const referenced = await run(db, cq.physicalKeyReferenced(p.backend, p.physicalKey));
      if (referenced.rowCount > 0) {
        log.error('delete-copy task names a key that live metadata references; keeping the bytes', {
          task: task.id,
          backend: p.backend,
          physicalKey: p.physicalKey,
        });
        return;
      }
      if (p.uploadId) await backend.abortMultipart(p.physicalKey, p.uploadId);
      await backend.delete(p.physicalKey);
      if (p.releaseBytes === 0 && p.releaseObjects === 0) return;
      return async (q) => {
        await run(q, cq.releaseDeleted(p.backend, p.releaseBytes, p.releaseObjects));
      };
    },
  };
}

// ---- Replication: copies added to and retired from live versions (copy-version, repair, scrub). ----

/** A copy of a live version being made by a task: the reservation and the pending row it owns. */
export interface ReservedCopy {
  versionId: string;
  backend: string;
  physicalKey: string;
  size: number;
  taskId: number;
}

/** Reserves room on an active backend and inserts the pending copy `c` owns; false when it is not active or has no room. */
export async function reserveCopy(q: Queryable, c: ReservedCopy): Promise<boolean> {
  return (await run(q, cq.reserveCopy(c))).rowCount > 0;
}

/**
 * Publishes the pending copy task `taskId` made (reservation → used bytes and one object). False when the
 * copy is gone (its version was overwritten or deleted meanwhile: the retirement queued its deletion); the
 * caller then queues the deletion of bytes it may have stored after that ran ({@link queueLateBytes}).
 */
export async function publishCopy(q: Queryable, versionId: string, backend: string, taskId: number): Promise<boolean> {
  return (await run(q, cq.publishCopy(versionId, backend, taskId))).rowCount > 0;
}

/** One more deletion of a key whose row is gone, releasing nothing (bytes that may have landed late). */
export async function queueLateBytes(q: Queryable, backend: string, physicalKey: string, reason: string): Promise<void> {
  await run(q, cq.queueUncountedDelete(backend, physicalKey, reason, 0));
}

/**
 * Retires the live or bad copies of a version on `backends` through the outbox (rows go, delete-copy tasks
 * queued after `delayMs` carry the bytes and objects). The caller keeps at least one good copy. Returns the
 * backends whose copy was retired.
 */
export async function retireCopies(q: Queryable, versionId: string, backends: readonly string[], reason: string, delayMs: number): Promise<string[]> {
  if (backends.length === 0) return [];
  const { rows } = await run<{ backend: string }>(q, cq.retireCopies(versionId, backends, reason, delayMs));
  return rows.map((r) => r.backend);
}

/**
 * Marks a live copy bad (it answered NotFound, had the wrong size or failed verification): reads never use
 * it again, it stays counted until repair retires it, and a `repair-version` task is queued (a singleton per
 * version). Returns false when the copy was not live (already bad, gone, or pending).
 */
export async function markCopyBad(q: Queryable, versionId: string, backend: string, reason: string): Promise<boolean> {
  const marked = (await run(q, cq.markBad(versionId, backend, reason))).rowCount > 0;
  if (marked) await enqueueRepairTask(q, versionId, `bad-copy: ${reason}`);
  return marked;
}

/** A bad copy that verified again becomes live. False when it was not bad. */
export async function restoreBadCopy(q: Queryable, versionId: string, backend: string): Promise<boolean> {
  return (await run(q, cq.restoreBad(versionId, backend))).rowCount > 0;
}

/** Records that scrub verified these live copies now. */
export async function markCopiesVerified(q: Queryable, copies: readonly { versionId: string; backend: string }[]): Promise<void> {
  if (copies.length === 0) return;
  await run(q, cq.markVerified(copies.map((c) => c.versionId), copies.map((c) => c.backend)));
}

/** Queues the `repair-version` task of a version (at most one queued or running per version). */
export async function enqueueRepairTask(q: Queryable, versionId: string, reason: string, clock?: Clock): Promise<number | undefined> {
  return enqueueTask(q, 'repair-version', { versionId, reason }, { singletonKey: `repair:${versionId}` }, clock);
}
