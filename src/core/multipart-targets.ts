import type { PhysicalMeta } from '../backends/backend.js';
import type { Queryable } from '../meta/db.js';
import * as bq from '../meta/queries/backends.js';
import * as mq from '../meta/queries/multipart.js';
import { run } from '../meta/run.js';
import { CoreError } from './errors.js';
import { nextTarget, rankForMultipart, zoneKey } from './placement.js';
import { replicaPlan, type WriteDeps } from './writes.js';

/**
 * The targets of a multipart upload. A replicated bucket's upload streams every part to the native
 * multipart upload of each of its targets (distinct backends, distinct zones first); the first target is
 * the upload row itself, the others are rows of multipart_replicas. See docs/data-model.md.
 */

/** S3's minimum size of every part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** One backend holding a native multipart upload of the object. */
export interface Target {
  backend: string;
  /** The backend's own upload id. */
  nativeId: string;
}

/** What storing one part produced on the targets. */
export interface StoredPart {
  /** The part's MD5 (what the client sees). */
  etag: string;
  /** The first target's ETag of the part. */
  backend_etag: string;
  checksum_value: string | null;
  /** The other targets' ETags of the part, by backend. */
  others: ReadonlyMap<string, string>;
  /** Targets that failed the part: they leave the upload. */
  failed: readonly string[];
}

/** The upload's targets: its own backend first, then the others in name order. */
export async function uploadTargets(q: Queryable, u: mq.UploadRow): Promise<Target[]> {
  const { rows } = await run<mq.ReplicaRow>(q, mq.selectReplicas(u.upload_id));
  return [{ backend: u.backend, nativeId: u.backend_upload_id }, ...rows.map((r) => ({ backend: r.backend, nativeId: r.backend_upload_id }))];
}

/** The copies a write to `bucket` must store before it is acknowledged. */
export async function writeQuorumOf(deps: WriteDeps, bucket: string): Promise<number> {
  return (await replicaPlan(deps, deps.db, bucket)).quorum;
}

/**
 * Starts the native uploads of a new multipart upload: as many targets as the bucket wants copies, among
 * the active backends with the most free room (the total size is unknown), distinct zones first. A backend
 * that refuses is replaced by the next one. Fewer targets than the write quorum: the native uploads made
 * are aborted and the request fails (507 when no backend has room, 503 when backends refused).
 */
export async function createTargets(deps: WriteDeps, bucket: string, pkey: string, meta: PhysicalMeta): Promise<Target[]> {
  const [{ rows }, plan] = await Promise.all([run<bq.BackendRow>(deps.db, bq.selectBackends()), replicaPlan(deps, deps.db, bucket)]);
  const roomy = rankForMultipart(rows, deps.backends.names, MIN_PART_SIZE);
  // A backend whose circuit breaker is open takes no new upload.
  const candidates = roomy.filter((n) => deps.backends.writable(n));
  if (candidates.length < plan.quorum) {
    throw new CoreError(
      candidates.length < roomy.length ? 'ServiceUnavailable' : 'InsufficientStorage',
      candidates.length === 0
        ? 'no backend has room for a multipart upload'
        : `only ${candidates.length} backends have room for a multipart upload; it needs ${plan.quorum}`,
    );
  }
  const zones = new Map(rows.map((r) => [r.name, r.zone ?? undefined]));
  const zoneOf = (n: string) => zones.get(n);
  const created: Target[] = [];
  const tried = new Set<string>();
  let last: unknown;
  while (created.length < plan.replicas) {
    const chosen = new Set(created.map((t) => zoneKey(t.backend, zoneOf(t.backend))));
    const batch: string[] = [];
    while (created.length + batch.length < plan.replicas) {
      const n = nextTarget(candidates, tried, chosen, zoneOf);
      if (n === undefined) break;
      tried.add(n);
      chosen.add(zoneKey(n, zoneOf(n)));
      batch.push(n);
    }
    if (batch.length === 0) break;
    const results = await Promise.allSettled(
      batch.map((n) => {
        const b = deps.backends.get(n);
        return b ? b.createMultipart(pkey, meta) : Promise.reject(new Error(`backend ${n} is not configured`));
      }),
    );
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') created.push({ backend: batch[i]!, nativeId: r.value });
      else {
        last = r.reason;
        deps.log.warn('backend refused a multipart upload; trying the next', { backend: batch[i], err: r.reason });
      }
    });
  }
  if (created.length < plan.quorum) {
    await abortTargets(deps, pkey, created);
    throw new CoreError('ServiceUnavailable', 'not enough backends accepted the multipart upload', { cause: last });
  }
  return created;
}

/** Aborts native uploads that no row records (best effort: providers expire incomplete uploads too). */
export async function abortTargets(deps: WriteDeps, pkey: string, targets: readonly Target[]): Promise<void> {
  await Promise.all(targets.map((t) => deps.backends.get(t.backend)?.abortMultipart(pkey, t.nativeId).catch(() => {})));
}
