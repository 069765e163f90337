import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as cq from '../meta/queries/copies.js';
import * as oq from '../meta/queries/objects.js';
import type { Logger } from '../log.js';
import type { BackendRegistry } from './backends.js';
import type { TaskEffect, TaskHandler } from './tasks.js';
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
 * Abandons a staged write. Only a PENDING version is dropped (its reservation becomes used bytes, released
 * by the delete-copy task queued for its key); a version that is live is left alone — its commit did
 * happen. When the version is gone (the janitor took the write for abandoned while it was still
 * streaming), the bytes this writer stored may have landed after the janitor's deletion ran, so one more
 * deletion of the key is queued that releases nothing (the janitor's task carries the counters).
 * Returns what it found.
 */
export async function abandonStaged(
  db: Db,
  staged: Pick<StagedCopy, 'versionId' | 'backend' | 'physicalKey'>,
  reason: string,
): Promise<'dropped' | 'live' | 'late'> {
  return db.tx(async (q) => {
    const dropped = await run(q, cq.dropPending(staged.versionId, reason));
    if (dropped.rowCount > 0) return 'dropped';
    if ((await versionState(q, staged.versionId)) === 'live') return 'live';
    await run(q, cq.queueUncountedDelete(staged.backend, staged.physicalKey, `${reason}-late-bytes`, 0));
    return 'late';
  });
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
