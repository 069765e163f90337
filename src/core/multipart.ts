import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { Backend } from '../backends/backend.js';
import { newVersionId, physicalKey } from '../backends/layout.js';
import type { Queryable } from '../meta/db.js';
import * as bq from '../meta/queries/backends.js';
import * as mq from '../meta/queries/multipart.js';
import { checkReadConditions } from './conditions.js';
import { dropUpload, dropUploadReplicas } from './copies.js';
import { FanOut } from './fanout.js';
import { abortTargets, createTargets, uploadTargets, writeQuorumOf, type StoredPart, type Target } from './multipart-targets.js';
import { isCombinable } from './crc-combine.js';
import { completeUpload, MIN_PART_SIZE } from './multipart-complete.js';
import { CoreError } from './errors.js';
import { createHasher } from './hashing.js';
import { bodyEnded } from './replay.js';
import type { CoreObjectStore } from './objects.js';
import type {
  ChecksumAlgorithm,
  CompleteMultipartInput,
  CreateMultipartInput,
  ListUploadsResult,
  MultipartStore,
  ObjectVersion,
  PartInfo,
  UploadInfo,
  UploadPartCopyInput,
  UploadPartInput,
} from './types.js';
import { run } from '../meta/run.js';
import { fromBackendError, type WriteDeps } from './writes.js';

export { MIN_PART_SIZE };
/** S3's maximum part size. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

function toUploadInfo(u: mq.UploadRow): UploadInfo {
  return {
    uploadId: u.upload_id,
    bucket: u.bucket,
    key: u.key,
    initiated: u.initiated_at,
    ...(u.checksum_algorithm ? { checksumAlgorithm: u.checksum_algorithm as ChecksumAlgorithm } : {}),
    ...(u.checksum_type ? { checksumType: u.checksum_type as 'FULL_OBJECT' | 'COMPOSITE' } : {}),
  };
}

function toPartInfo(p: mq.PartRow): PartInfo {
  return {
    partNumber: p.part_number,
    size: p.size,
    etag: p.etag,
    lastModified: p.created_at,
    ...(p.checksum_value ? { checksum: p.checksum_value } : {}),
  };
}

/**
 * Native multipart uploads. The backend is chosen at creation (a multipart upload lives on one backend);
 * each part reserves its size on that backend before a byte is sent, so concurrent uploads cannot overshoot
 * a quota, and a part that does not fit fails with InsufficientStorage while the upload stays usable and
 * abortable. Completion asks the backend to assemble the parts: no byte passes through here again.
 */
export class CoreMultipartStore implements MultipartStore {
  readonly #deps: WriteDeps;
  readonly #objects: CoreObjectStore;

  constructor(deps: WriteDeps, objects: CoreObjectStore) {
    this.#deps = deps;
    this.#objects = objects;
  }

  #backend(name: string): Backend {
    const b = this.#deps.backends.get(name);
    if (!b) throw new CoreError('ServiceUnavailable', `backend ${name} is not configured`);
    return b;
  }

  async #upload(q: Queryable, bucket: string, key: string, uploadId: string, lock = false): Promise<mq.UploadRow> {
    const { rows } = await run<mq.UploadRow>(q, mq.selectUpload(uploadId, bucket, key, lock));
    if (!rows[0]) throw new CoreError('NoSuchUpload', uploadId);
    return rows[0];
  }

  async getUpload(bucket: string, key: string, uploadId: string): Promise<UploadInfo> {
    return toUploadInfo(await this.#upload(this.#deps.db, bucket, key, uploadId));
  }

  async createMultipartUpload(input: CreateMultipartInput): Promise<UploadInfo> {
    await this.#objects.requireBucket(input.bucket);
    const versionId = newVersionId();
    const uploadId = newVersionId();
    const pkey = physicalKey(input.bucket, input.key, versionId);
    const checksumType = input.checksumAlgorithm
      ? (input.checksumType ?? (input.checksumAlgorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE'))
      : undefined;
    if (checksumType === 'FULL_OBJECT' && !isCombinable(input.checksumAlgorithm!)) {
      throw new CoreError('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${input.checksumAlgorithm} checksum algorithm.`);
    }
    const meta = { ...input.headers, userMeta: input.userMeta, bucket: input.bucket, key: input.key, versionId };
    const targets = await createTargets(this.#deps, input.bucket, pkey, meta);
    const [first, ...others] = targets;
    const h = input.headers;
    const inserted = await this.#deps.db
      .tx(async (q) => {
        const row = await run<{ initiated_at: Date }>(
          q,
          mq.insertUpload({
            upload_id: uploadId, bucket: input.bucket, key: input.key, version_id: versionId, backend: first!.backend,
            physical_key: pkey, backend_upload_id: first!.nativeId,
            content_type: h.contentType ?? null, content_encoding: h.contentEncoding ?? null,
            content_disposition: h.contentDisposition ?? null, content_language: h.contentLanguage ?? null,
            cache_control: h.cacheControl ?? null, expires: h.expires ?? null,
            user_meta: input.userMeta, tags: input.tags ?? {},
            checksum_algorithm: input.checksumAlgorithm ?? null, checksum_type: checksumType ?? null,
          }),
        );
        for (const t of others) await run(q, mq.insertReplica(uploadId, t.backend, t.nativeId));
        return row;
      })
      .catch(async (err: unknown) => {
        await abortTargets(this.#deps, pkey, targets);
        throw err;
      });
    return {
      uploadId, bucket: input.bucket, key: input.key, initiated: inserted.rows[0]!.initiated_at,
      ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm } : {}),
      ...(checksumType ? { checksumType } : {}),
    };
  }

  /**
   * Reserves a part's bytes on every target of the upload (its backend and the other targets of a
   * replicated upload) and on the upload rows, atomically: a part that does not fit anywhere fails with
   * 507 and reserves nothing. Returns the upload and its targets.
   */
  async #reservePart(bucket: string, key: string, uploadId: string, size: number): Promise<{ u: mq.UploadRow; targets: Target[] }> {
    return this.#deps.db.tx(async (q) => {
      const u = await this.#upload(q, bucket, key, uploadId, true);
      if (u.state !== 'active') throw new CoreError('NoSuchUpload', uploadId);
      const targets = await uploadTargets(q, u);
      // In name order, like every change of several backends' counters (no deadlocks).
      for (const t of [...targets].sort((a, b) => (a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : 0))) {
        if ((await run(q, bq.reserve(t.backend, size))).rowCount === 0) {
          throw new CoreError('InsufficientStorage', `backend ${t.backend}, which holds this multipart upload, has no room for ${size} more bytes`);
        }
      }
      await run(q, mq.addUploadReservation(uploadId, size));
      for (const t of targets.slice(1)) await run(q, mq.addReplicaReservation(uploadId, t.backend, size));
      return { u, targets };
    });
  }

  /** Records a stored part; releases the reservation of the part it replaces. On failure releases its own. */
  async #recordPart(u: mq.UploadRow, part: Omit<mq.PartRow, 'created_at'>, others: ReadonlyMap<string, string>): Promise<PartInfo> {
    return this.#deps.db.tx(async (q) => {
      const cur = await run<mq.UploadRow>(q, mq.selectUpload(u.upload_id, u.bucket, u.key, true));
      if (cur.rows[0]?.state !== 'active') throw new CoreError('NoSuchUpload', u.upload_id);
      const old = await run<mq.PartRow>(q, mq.selectPart(u.upload_id, part.part_number));
      if (old.rows[0]) await this.#release(q, u, old.rows[0].size);
      const { rows } = await run<mq.PartRow>(q, mq.upsertPart(u.upload_id, part));
      // Only targets still part of the upload (one dropped meanwhile had its reservation settled).
      for (const t of (await uploadTargets(q, u)).slice(1)) {
        const etag = others.get(t.backend);
        if (etag === undefined) throw new CoreError('ServiceUnavailable', `backend ${t.backend} did not store part ${part.part_number}`);
        await run(q, mq.upsertPartReplica(u.upload_id, part.part_number, t.backend, etag));
      }
      return toPartInfo(rows[0]!);
    });
  }

  /** Releases `size` reserved bytes on every target still holding a reservation for this upload. */
  async #release(q: Queryable, u: mq.UploadRow, size: number): Promise<void> {
    const still = await run(q, mq.addUploadReservation(u.upload_id, -size));
    // If the upload was aborted or completed meanwhile, its whole reservation was settled there.
    if (still.rowCount > 0) await run(q, bq.releaseReservation(u.backend, size));
    for (const t of (await uploadTargets(q, u)).slice(1)) {
      if ((await run(q, mq.addReplicaReservation(u.upload_id, t.backend, -size))).rowCount > 0) {
        await run(q, bq.releaseReservation(t.backend, size));
      }
    }
  }

  async #withPartReservation(
    input: { bucket: string; key: string; uploadId: string; partNumber: number },
    size: number,
    store: (u: mq.UploadRow, targets: readonly Target[]) => Promise<StoredPart>,
  ): Promise<PartInfo> {
    if (!Number.isInteger(input.partNumber) || input.partNumber < 1 || input.partNumber > 10_000) {
      throw new CoreError('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
    }
    if (size > MAX_PART_SIZE) throw new CoreError('InvalidArgument', 'Part size exceeds the 5 GiB maximum');
    const { u, targets } = await this.#reservePart(input.bucket, input.key, input.uploadId, size);
    let stored: StoredPart;
    try {
      stored = await store(u, targets);
    } catch (err) {
      await this.#deps.db.tx((q) => this.#release(q, u, size)).catch((e: unknown) => this.#deps.log.error('part reservation not released', { err: e }));
      throw fromBackendError(err);
    }
    if (stored.failed.length > 0) {
      // Targets that failed this part leave the upload (it goes on with the others; repair adds copies later).
      await this.#deps.db.tx((q) => dropUploadReplicas(q, { uploadId: u.upload_id, physicalKey: u.physical_key }, stored.failed, 'replica-failed'));
    }
    const { etag, backend_etag, checksum_value } = stored;
    return this.#recordPart(u, { etag, backend_etag, checksum_value, part_number: input.partNumber, size }, stored.others);
  }

  /**
   * Streams one part to every target at once (one read of the body, paced by the slowest target). The
   * first target must store it; another target that fails is reported in `failed` when the upload keeps
   * enough targets for the write quorum, else the part fails.
   */
  async #fanPart(u: mq.UploadRow, targets: readonly Target[], partNumber: number, body: Readable, size: number, signal?: AbortSignal) {
    const fan = new FanOut(body, 0);
    const results = await Promise.allSettled(
      targets.map(async (t) => {
        const branch = fan.branch();
        try {
          return await this.#backend(t.backend).uploadPart(u.physical_key, t.nativeId, partNumber, branch, size, signal);
        } catch (err) {
          branch.destroy();
          throw err;
        }
      }),
    );
    const first = results[0]!;
    if (first.status === 'rejected') throw first.reason;
    const others = new Map<string, string>();
    const failed: string[] = [];
    results.slice(1).forEach((r, i) => {
      const t = targets[i + 1]!;
      if (r.status === 'fulfilled') others.set(t.backend, r.value);
      else {
        failed.push(t.backend);
        this.#deps.log.warn('a target of a replicated multipart upload failed a part; it leaves the upload', { backend: t.backend, uploadId: u.upload_id, err: r.reason });
      }
    });
    if (failed.length > 0 && targets.length - failed.length < (await writeQuorumOf(this.#deps, u.bucket))) {
      const r = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
      throw r.reason;
    }
    return { backendEtag: first.value, others, failed };
  }

  async uploadPart(input: UploadPartInput): Promise<PartInfo> {
    return this.#withPartReservation(input, input.size, async (u, targets) => {
      const fanned = await this.#fanPart(u, targets, input.partNumber, input.body, input.size, input.signal);
      await bodyEnded(input.body);
      const d = input.digests();
      if (u.checksum_algorithm && d.checksum && d.checksum.algorithm !== u.checksum_algorithm) {
        throw new CoreError('InvalidRequest', `Checksum Type mismatch occurred, expected checksum Type: ${u.checksum_algorithm.toLowerCase()}, actual checksum Type: ${d.checksum.algorithm.toLowerCase()}`);
      }
      return { etag: d.md5, backend_etag: fanned.backendEtag, checksum_value: d.checksum?.value ?? null, others: fanned.others, failed: fanned.failed };
    });
  }

  async uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo> {
    const { version: src, copies } = await this.#objects.locate(input.srcBucket, input.srcKey);
    checkReadConditions(src, input.sourceConditions);
    const range = input.range ?? { start: 0, end: src.size - 1 };
    if (range.start < 0 || range.end >= src.size || range.end < range.start) {
      throw new CoreError('InvalidArgument', `Range specified is not valid for source object of size: ${src.size}`);
    }
    const size = range.end - range.start + 1;
    return this.#withPartReservation(input, size, async (u, targets) => {
      const backend = this.#backend(u.backend);
      const local = copies.find((c) => c.backend === backend.name);
      if (targets.length === 1 && local && u.checksum_algorithm === null) {
        const etag = await backend.uploadPartCopy(u.physical_key, u.backend_upload_id, input.partNumber, local.physicalKey, range);
        // Providers answer the MD5 of the copied bytes; anything else is streamed below to compute it.
        if (/^[0-9a-f]{32}$/.test(etag)) return { etag, backend_etag: etag, checksum_value: null, others: new Map(), failed: [] };
      }
      const md5 = createHash('md5');
      const sum = u.checksum_algorithm ? createHasher(u.checksum_algorithm as ChecksumAlgorithm) : undefined;
      const source = await this.#objects.openRange(src, range, input.signal);
      const body = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          md5.update(chunk);
          sum?.update(chunk);
          cb(null, chunk);
        },
      });
      // pipeline destroys both ends if either fails (a backend giving up stops the source read).
      pipeline(source, body, () => {});
      const fanned = await this.#fanPart(u, targets, input.partNumber, body, size, input.signal);
      return {
        etag: md5.digest('hex'),
        backend_etag: fanned.backendEtag,
        checksum_value: sum ? (await sum.digest()).toString('base64') : null,
        others: fanned.others,
        failed: fanned.failed,
      };
    });
  }

  async completeMultipartUpload(input: CompleteMultipartInput): Promise<ObjectVersion> {
    // The generation the upload becomes: degraded reads must not answer its assembled bytes before the
    // completion is acknowledged (core/degraded.ts). A failed look-up fails the completion's own anyway.
    const pending = await run<mq.UploadRow>(this.#deps.db, mq.selectUpload(input.uploadId, input.bucket, input.key)).then(
      (r) => r.rows[0]?.version_id,
      () => undefined,
    );
    return this.#objects.guardCompletion(pending, () => completeUpload(this.#deps, input));
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.#deps.db.tx(async (q) => {
      const u = await this.#upload(q, bucket, key, uploadId, true);
      if (u.state !== 'active') throw new CoreError('OperationAborted', 'this multipart upload is being completed');
      await dropUpload(q, u.upload_id, ['active'], 'abort');
    });
  }

  async listParts(bucket: string, key: string, uploadId: string, opts: { maxParts: number; partNumberMarker?: number }) {
    const u = await this.#upload(this.#deps.db, bucket, key, uploadId);
    const { rows } = await run<mq.PartRow>(this.#deps.db, mq.selectParts(uploadId, opts.partNumberMarker ?? 0, opts.maxParts + 1));
    const isTruncated = rows.length > opts.maxParts;
    const parts = rows.slice(0, opts.maxParts).map(toPartInfo);
    return {
      upload: toUploadInfo(u),
      parts,
      isTruncated,
      ...(isTruncated ? { nextPartNumberMarker: parts[parts.length - 1]!.partNumber } : {}),
    };
  }

  async listMultipartUploads(
    bucket: string,
    opts: { prefix: string; delimiter?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads: number },
  ): Promise<ListUploadsResult> {
    await this.#objects.requireBucket(bucket);
    const out: ListUploadsResult = { uploads: [], commonPrefixes: [], isTruncated: false };
    // Without an upload-id marker, S3 starts after every upload of key-marker.
    let afterKey = opts.keyMarker ?? '';
    let afterUpload = opts.keyMarker !== undefined && opts.uploadIdMarker === undefined ? '\u{10FFFF}' : (opts.uploadIdMarker ?? '');
    let count = 0;
    for (;;) {
      const { rows } = await run<mq.UploadRow>(this.#deps.db, mq.selectUploadsPage(bucket, opts.prefix, afterKey, afterUpload, 1000));
      for (const u of rows) {
        afterKey = u.key;
        afterUpload = u.upload_id;
        const rest = u.key.slice(opts.prefix.length);
        const cut = opts.delimiter ? rest.indexOf(opts.delimiter) : -1;
        const cp = cut >= 0 ? opts.prefix + rest.slice(0, cut + opts.delimiter!.length) : undefined;
        if (cp !== undefined && (out.commonPrefixes.at(-1) === cp || (opts.keyMarker !== undefined && cp <= opts.keyMarker))) continue;
        if (count === opts.maxUploads) {
          out.isTruncated = true;
          return out;
        }
        count++;
        if (cp !== undefined) {
          out.commonPrefixes.push(cp);
          out.nextKeyMarker = cp;
          delete out.nextUploadIdMarker;
        } else {
          out.uploads.push(toUploadInfo(u));
          out.nextKeyMarker = u.key;
          out.nextUploadIdMarker = u.upload_id;
        }
      }
      if (rows.length < 1000) return out;
    }
  }
}
