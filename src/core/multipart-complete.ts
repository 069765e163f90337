import { createHash } from 'node:crypto';
import { BackendError, type PhysicalMeta } from '../backends/backend.js';
import { run } from '../meta/run.js';
import * as mq from '../meta/queries/multipart.js';
import * as oq from '../meta/queries/objects.js';
import { checkWriteConditions } from './conditions.js';
import {
  dropUpload,
  dropUploadReplicas,
  enqueueRepairTask,
  lockBackendRows,
  publishAssembled,
  publishUploadReplicas,
  readVersion,
  retireLive,
  versionState,
} from './copies.js';
import { combineCrcBase64 } from './crc-combine.js';
import { CoreError } from './errors.js';
import { rowHeaders, rowToVersion } from './rows.js';
import { createHasher } from './hashing.js';
import { systemClock } from './tasks.js';
import type { ChecksumAlgorithm, CompleteMultipartInput, ObjectVersion, StoredChecksum } from './types.js';
import { replicaPlan, type WriteDeps } from './writes.js';
import { MIN_PART_SIZE, uploadTargets, type Target } from './multipart-targets.js';

export { MIN_PART_SIZE };

/**
 * CompleteMultipartUpload, recoverable at every step:
 * 1. validate the part list against the stored parts;
 * 2. claim the upload (`completing`, with a heartbeat in `completing_since`) — a completion whose completer
 *    died (no heartbeat for `staleMs`) is taken over by a retried Complete, or rolled back by the sweeper;
 * 3. ask the backend to assemble the parts (a takeover finds the object already assembled: the provider
 *    no longer knows the upload, but the physical key holds exactly `size` bytes);
 * 4. publish in one transaction (retire the previous version, insert the live version and copy, settle
 *    the reservation, drop the upload row). A lost COMMIT reply is resolved by re-reading the version.
 * A repeated Complete of an upload that did complete answers with the version it produced, as S3 does.
 */
export async function completeUpload(deps: WriteDeps, input: CompleteMultipartInput): Promise<ObjectVersion> {
  const clock = deps.clock ?? systemClock;
  const found = await run<mq.UploadRow>(deps.db, mq.selectUpload(input.uploadId, input.bucket, input.key));
  const u = found.rows[0];
  if (!u) return completedBefore(deps, input);
  if (input.parts.length === 0) throw new CoreError('InvalidRequest', 'You must specify at least one part');
  const listed = await validateParts(deps, u, input);
  const checksum = await multipartChecksum(u, listed);
  const size = listed.reduce((n, p) => n + p.size, 0);
  const etag = createHash('md5').update(Buffer.concat(listed.map((p) => Buffer.from(p.etag, 'hex')))).digest('hex') + `-${listed.length}`;

  const claimed = await run(deps.db, mq.beginCompleting(u.upload_id, deps.staleMs, clock.skewMs()));
  if (claimed.rowCount === 0) {
    const again = await run<mq.UploadRow>(deps.db, mq.selectUpload(input.uploadId, input.bucket, input.key));
    if (!again.rows[0]) return completedBefore(deps, input);
    throw new CoreError('OperationAborted', 'this multipart upload is being completed by another request');
  }
  const beat = setInterval(() => {
    run(deps.db, mq.heartbeatCompleting(u.upload_id, clock.skewMs())).catch((err: unknown) =>
      deps.log.warn('completion heartbeat failed', { uploadId: u.upload_id, err }),
    );
  }, deps.heartbeatMs);
  beat.unref();
  let assembled: string[];
  try {
    assembled = await assembleAll(deps, u, listed, size, etag);
  } catch (err) {
    clearInterval(beat);
    await run(deps.db, mq.endCompleting(u.upload_id)).catch(() => {});
    if (err instanceof BackendError) {
      throw new CoreError('ServiceUnavailable', `backend ${err.backend} could not complete the upload: ${err.message}`, { cause: err });
    }
    throw err;
  }
  clearInterval(beat);
  const fields = {
    etag, userMeta: u.user_meta, tags: u.tags, partsCount: listed.length, partSizes: listed.map((p) => p.size),
    ...rowHeaders(u),
    ...(checksum ? { checksum } : {}),
  };
  try {
    return await deps.db.tx(async (q) => {
      await run(q, oq.lockKey(u.bucket, u.key));
      await lockBackendRows(q, [u.backend, ...assembled]);
      const live = await run<oq.VersionRow>(q, oq.selectLive(u.bucket, u.key, true));
      checkWriteConditions(live.rows[0] ? rowToVersion(live.rows[0]) : undefined, input.conditions);
      if (live.rows[0]) await retireLive(q, u.bucket, [u.key], 'overwrite', deps.cleanupDelayMs);
      const v = await publishAssembled(
        q,
        { versionId: u.version_id, bucket: u.bucket, key: u.key, size, uploadId: u.upload_id, backend: u.backend, physicalKey: u.physical_key },
        fields,
      );
      // Rolled back by the sweeper meanwhile (this completer looked dead): its bytes are queued for deletion.
      if (!v) throw new CoreError('NoSuchUpload', input.uploadId);
      const ids = { uploadId: u.upload_id, versionId: u.version_id, physicalKey: u.physical_key, size };
      const copies = 1 + (await publishUploadReplicas(q, ids, assembled)).length;
      // Targets that did not assemble the object (or left the upload) are given up through the outbox.
      await dropUploadReplicas(q, ids, null, 'complete-failed');
      if (copies < (await replicaPlan(deps, q, u.bucket)).replicas) await enqueueRepairTask(q, u.version_id, 'multipart', deps.clock);
      return v;
    });
  } catch (err) {
    return settleFailedPublish(deps, u, err);
  }
}

/** After the publishing transaction failed: find out whether it committed, else give the bytes up. */
async function settleFailedPublish(deps: WriteDeps, u: mq.UploadRow, err: unknown): Promise<ObjectVersion> {
  if (err instanceof CoreError) {
    // A known outcome (the transaction rolled back): the assembled object will not be published.
    if (err.code !== 'NoSuchUpload') {
      await deps.db.tx((q) => dropUpload(q, u.upload_id, ['completing'], 'complete-failed')).catch((e: unknown) =>
        deps.log.error('failed completion not rolled back (the sweeper will)', { uploadId: u.upload_id, err: e }),
      );
    }
    throw err;
  }
  const state = await versionState(deps.db, u.version_id).catch(() => 'unknown' as const);
  if (state === 'live') {
    const v = await readVersion(deps.db, u.version_id).catch(() => undefined);
    if (v) return v;
  }
  if (state === 'gone') {
    // Rolled back: the upload stays completing until a retried Complete takes it over (the object is
    // assembled) or the sweeper gives it up.
    await run(deps.db, mq.endCompleting(u.upload_id)).catch(() => {});
  }
  throw new CoreError('ServiceUnavailable', 'the outcome of the completion could not be confirmed; retry it', { cause: err });
}

/** A Complete for an upload id that is no longer in progress: the version it produced, or NoSuchUpload. */
async function completedBefore(deps: WriteDeps, input: CompleteMultipartInput): Promise<ObjectVersion> {
  const { rows } = await run<{ version_id: string }>(deps.db, mq.selectCompletedVersion(input.bucket, input.key, input.uploadId));
  const v = rows[0] ? await readVersion(deps.db, rows[0].version_id) : undefined;
  if (!v) throw new CoreError('NoSuchUpload', input.uploadId);
  return v;
}

async function validateParts(deps: WriteDeps, u: mq.UploadRow, input: CompleteMultipartInput): Promise<mq.PartRow[]> {
  const stored = new Map<number, mq.PartRow>();
  for (const p of (await run<mq.PartRow>(deps.db, mq.selectParts(u.upload_id))).rows) stored.set(p.part_number, p);
  const listed: mq.PartRow[] = [];
  input.parts.forEach((p, i) => {
    if (i > 0 && p.partNumber <= input.parts[i - 1]!.partNumber) throw new CoreError('InvalidPartOrder');
    const s = stored.get(p.partNumber);
    if (!s || s.etag !== p.etag.replace(/^"(.*)"$/, '$1')) throw new CoreError('InvalidPart', `part ${p.partNumber}`);
    if (p.checksum !== undefined && s.checksum_value !== p.checksum) throw new CoreError('InvalidPart', `checksum of part ${p.partNumber}`);
    listed.push(s);
  });
  listed.slice(0, -1).forEach((p) => {
    if (p.size < MIN_PART_SIZE) throw new CoreError('EntityTooSmall', `part ${p.part_number} is ${p.size} bytes`);
  });
  return listed;
}

/**
 * Asks every target to assemble the parts, at once. The upload's own backend must succeed; the other
 * targets that did are returned (at least the write quorum in all, else the completion fails and can be
 * retried). A completion taken over finds objects already assembled.
 */
async function assembleAll(deps: WriteDeps, u: mq.UploadRow, listed: readonly mq.PartRow[], size: number, etag: string): Promise<string[]> {
  // Stored with the object, so a rebuild from the backends recovers the multipart ETag and the parts.
  const meta: PhysicalMeta = {
    ...rowHeaders(u), userMeta: u.user_meta, bucket: u.bucket, key: u.key, versionId: u.version_id, etag, partSizes: listed.map((p) => p.size),
  };
  const targets = await uploadTargets(deps.db, u);
  const etags = new Map<string, Map<number, string>>();
  for (const r of (await run<{ part_number: number; backend: string; backend_etag: string }>(deps.db, mq.selectPartReplicas(u.upload_id))).rows) {
    const m = etags.get(r.backend) ?? new Map<number, string>();
    m.set(r.part_number, r.backend_etag);
    etags.set(r.backend, m);
  }
  const results = await Promise.allSettled(
    targets.map((t, i) => {
      const parts = listed.map((p) => ({ partNumber: p.part_number, etag: i === 0 ? p.backend_etag : etags.get(t.backend)?.get(p.part_number) }));
      if (parts.some((p) => p.etag === undefined)) return Promise.reject(new Error(`backend ${t.backend} is missing parts`));
      return assemble(deps, u, t, parts as { partNumber: number; etag: string }[], size, meta);
    }),
  );
  if (results[0]!.status === 'rejected') throw results[0]!.reason;
  const ok = targets.slice(1).filter((_, i) => results[i + 1]!.status === 'fulfilled').map((t) => t.backend);
  results.slice(1).forEach((r, i) => {
    if (r.status === 'rejected') deps.log.warn('a target could not assemble a replicated multipart upload', { backend: targets[i + 1]!.backend, uploadId: u.upload_id, err: r.reason });
  });
  const quorum = (await replicaPlan(deps, deps.db, u.bucket)).quorum;
  if (1 + ok.length < quorum) {
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    throw failed.reason;
  }
  return ok;
}

/** Asks one target to assemble the parts; a completion taken over finds the object already assembled. */
async function assemble(
  deps: WriteDeps,
  u: mq.UploadRow,
  t: Target,
  parts: readonly { partNumber: number; etag: string }[],
  size: number,
  meta: PhysicalMeta,
): Promise<void> {
  const backend = deps.backends.get(t.backend);
  if (!backend) throw new CoreError('ServiceUnavailable', `backend ${t.backend} is not configured`);
  try {
    await backend.completeMultipart(u.physical_key, t.nativeId, parts, meta);
  } catch (err) {
    if (!(err instanceof BackendError) || err.kind !== 'NotFound') throw err;
    const head = await backend.head(u.physical_key).catch(() => undefined);
    if (head?.size !== size) throw err;
    deps.log.warn('multipart upload was already assembled (completion taken over)', { uploadId: u.upload_id, backend: t.backend });
  }
}

/** The object checksum S3 reports for a completed multipart upload created with a checksum algorithm. */
async function multipartChecksum(u: mq.UploadRow, parts: readonly mq.PartRow[]): Promise<StoredChecksum | undefined> {
  if (!u.checksum_algorithm) return undefined;
  const algorithm = u.checksum_algorithm as ChecksumAlgorithm;
  const missing = parts.find((p) => !p.checksum_value);
  if (missing) {
    throw new CoreError('InvalidRequest', `The upload was created using a ${algorithm.toLowerCase()} checksum. The complete request must include the checksum for each part. It was missing for part ${missing.part_number} in the request.`);
  }
  if (u.checksum_type === 'FULL_OBJECT') {
    return { algorithm, type: 'FULL_OBJECT', value: combineCrcBase64(algorithm, parts.map((p) => ({ checksum: p.checksum_value!, size: p.size }))) };
  }
  const h = createHasher(algorithm);
  for (const p of parts) h.update(Buffer.from(p.checksum_value!, 'base64'));
  return { algorithm, type: 'COMPOSITE', value: `${(await h.digest()).toString('base64')}-${parts.length}` };
}
