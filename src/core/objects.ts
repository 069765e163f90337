import { Readable } from 'node:stream';
import { BackendError } from '../backends/backend.js';
import * as oq from '../meta/queries/objects.js';
import type { BackendRegistry } from './backends.js';
import { checkReadConditions, checkWriteConditions, resolveRange } from './conditions.js';
import { DegradedReader, degradedPartSizes } from './degraded.js';
import { CoreError, isDbUnavailable } from './errors.js';
import { rowToCopy, rowToVersion } from './rows.js';
import { lockKeys, markCopyBad, retireLive } from './copies.js';
import { listObjects } from './list.js';
import { openVersion, type ReadableCopy } from './read.js';
import { bodyEnded } from './replay.js';
import { FanOut } from './fanout.js';
import type {
  CopyLocation,
  CopyObjectInput,
  DeleteOutcome,
  GetObjectResult,
  ListInput,
  ListResult,
  ObjectStore,
  ObjectVersion,
  PutObjectInput,
  RangeSpec,
  ReadConditions,
  TenantDirectory,
} from './types.js';
import { run } from '../meta/run.js';
import { writeVersion, type WriteDeps } from './writes.js';

/** Bytes of a body kept so a write can move to another backend if the first fails early. */
const REPLAY_LIMIT = 256 * 1024;
/** A copy silent this long while bytes are wanted is abandoned for the next (S3 passes its own, from idle_timeout). */
const DEFAULT_STALL_MS = 30_000;

/** The object operations, over the metadata database and the backends. */
export class CoreObjectStore implements ObjectStore {
  readonly #deps: WriteDeps;
  readonly #tenants: TenantDirectory;
  /** Answers GET/HEAD from the backends while the database is unavailable (core/degraded.ts). */
  readonly #degraded: DegradedReader;

  constructor(deps: WriteDeps, tenants: TenantDirectory, degraded?: DegradedReader) {
    this.#deps = deps;
    this.#tenants = tenants;
    this.#degraded = degraded ?? new DegradedReader({ backends: deps.backends, log: deps.log });
  }

  get #backends(): BackendRegistry {
    return this.#deps.backends;
  }

  /** Throws NoSuchBucket unless the bucket exists. */
  async requireBucket(bucket: string): Promise<void> {
    if (!(await this.#tenants.getBucket(bucket))) throw new CoreError('NoSuchBucket', bucket);
  }

  async #live(bucket: string, key: string): Promise<ObjectVersion | undefined> {
    const { rows } = await run<oq.VersionRow>(this.#deps.db, oq.selectLive(bucket, key));
    return rows[0] ? rowToVersion(rows[0]) : undefined;
  }

  async #requireLive(bucket: string, key: string): Promise<ObjectVersion> {
    const v = await this.#live(bucket, key);
    if (v) return v;
    await this.requireBucket(bucket);
    throw new CoreError('NoSuchKey', key);
  }

  async #copies(versionId: string): Promise<CopyLocation[]> {
    const { rows } = await run<oq.CopyRow>(this.#deps.db, oq.selectCopies(versionId));
    return rows.map(rowToCopy);
  }

  async headObject(bucket: string, key: string, cond?: ReadConditions): Promise<ObjectVersion> {
    const started = Date.now();
    let v: ObjectVersion;
    try {
      v = await this.#requireLive(bucket, key);
    } catch (err) {
      if (!isDbUnavailable(err)) throw err;
      await this.requireBucket(bucket);
      return this.#degraded.headObject(bucket, key, cond);
    }
    this.#degraded.noteLive(v, started);
    checkReadConditions(v, cond);
    return v;
  }

  async getObject(
    bucket: string,
    key: string,
    opts: { range?: RangeSpec; conditions?: ReadConditions; signal?: AbortSignal; stallMs?: number } = {},
  ): Promise<GetObjectResult> {
    const started = Date.now();
    let rows: (oq.VersionRow & { copies: oq.CopyRow[] })[];
    try {
      ({ rows } = await run<oq.VersionRow & { copies: oq.CopyRow[] }>(this.#deps.db, oq.selectLiveWithCopies(bucket, key)));
    } catch (err) {
      if (!isDbUnavailable(err)) throw err;
      await this.requireBucket(bucket);
      return this.#degraded.getObject(bucket, key, opts);
    }
    if (!rows[0]) {
      await this.requireBucket(bucket);
      throw new CoreError('NoSuchKey', key);
    }
    const version = rowToVersion(rows[0]);
    this.#degraded.noteLive(version, started);
    checkReadConditions(version, opts.conditions);
    const range = resolveRange(opts.range, version.size);
    if (version.size === 0) return { version, body: Readable.from([]) };
    const body = await this.#openCopy(version, range, opts.signal, rows[0].copies.map(rowToCopy), opts.stallMs);
    return range ? { version, range, body } : { version, body };
  }

  /** Runs a multipart completion of generation `versionId` so that degraded reads wait for its acknowledgement. */
  guardCompletion(versionId: string | undefined, complete: () => Promise<ObjectVersion>): Promise<ObjectVersion> {
    return this.#degraded.guardCompletion(versionId, complete);
  }

  /** Streams an inclusive range of a version from its copies, with failover (UploadPartCopy). */
  openRange(version: ObjectVersion, range: { start: number; end: number }, signal?: AbortSignal): Promise<Readable> {
    return this.#openCopy(version, range, signal);
  }

  /**
   * Streams a version (or a range of it) from its copies in order, resolving once the first bytes are in
   * hand: a copy that is missing, whose backend is down, or that fails, ends early or stalls before or
   * while streaming is replaced by the next copy at the first byte not yet delivered (core/read.ts).
   */
  async #openCopy(
    version: ObjectVersion,
    range: { start: number; end: number } | undefined,
    signal?: AbortSignal,
    copies?: CopyLocation[],
    stallMs = DEFAULT_STALL_MS,
  ): Promise<Readable> {
    const all = copies ?? (await this.#copies(version.versionId));
    // Breaker closed first, then read_priority, then latency; copies on open backends are still tried last.
    const order = this.#backends.readOrder(all.map((c) => c.backend));
    const sorted = [...all].sort((a, b) => order.indexOf(a.backend) - order.indexOf(b.backend));
    const readable: ReadableCopy[] = sorted.map((copy) => ({
      describe: { backend: copy.backend, physicalKey: copy.physicalKey },
      open: (r, sig) => {
        const backend = this.#backends.get(copy.backend);
        if (!backend) return Promise.reject(new Error(`backend ${copy.backend} is not configured`));
        // The whole object without a Range header while nothing was read yet (what most providers serve best).
        const whole = !range && r.start === 0;
        return backend.get(copy.physicalKey, whole ? undefined : r, sig);
      },
      bad: (reason) => this.#markBad(version, copy.backend, reason),
    }));
    return openVersion({
      copies: readable,
      range: range ?? { start: 0, end: version.size - 1 },
      stallMs,
      ...(signal ? { signal } : {}),
      log: this.#deps.log,
      what: `${version.bucket}/${version.key}`,
    });
  }

  /**
   * A copy proved bad while being read: marked so (never read again; repair queued) in the background —
   * the read goes on from the next copy. A copy retired meanwhile (an overwrite) is not touched.
   */
  #markBad(version: ObjectVersion, backend: string, reason: string): void {
    this.#deps.log.error('copy is bad; marking it for repair', { bucket: version.bucket, key: version.key, versionId: version.versionId, backend, reason });
    this.#deps.db.tx((q) => markCopyBad(q, version.versionId, backend, reason)).catch((err: unknown) =>
      this.#deps.log.warn('could not mark a bad copy (scrub will find it)', { versionId: version.versionId, backend, err }),
    );
  }

  async putObject(input: PutObjectInput): Promise<ObjectVersion> {
    await this.requireBucket(input.bucket);
    // Fail fast before reading the body; the check is repeated under the key lock at commit.
    if (input.conditions) checkWriteConditions(await this.#live(input.bucket, input.key), input.conditions);
    const fan = new FanOut(input.body, REPLAY_LIMIT);
    let ended: Promise<void> | undefined;
    return this.#degraded.guardWrite((r) => writeVersion(this.#deps, r), {
      bucket: input.bucket,
      key: input.key,
      size: input.size,
      ...(input.conditions ? { conditions: input.conditions } : {}),
      meta: { ...input.headers, userMeta: input.userMeta },
      produce: async (backend, pkey, meta, lost) => {
        const body = fan.branch();
        try {
          await backend.put(pkey, body, input.size, meta, anySignal(input.signal, lost));
        } catch (err) {
          body.destroy(); // leave the fan-out: the other destinations go on without it
          throw err;
        }
        // The first destination to finish has taken every byte from the body: only now is it verified.
        ended ??= bodyEnded(input.body);
        await ended;
      },
      retryable: (err) =>
        err instanceof BackendError &&
        err.kind !== 'Aborted' &&
        fan.replayable &&
        !input.signal?.aborted,
      finalize: () => {
        const d = input.digests();
        return {
          ...input.headers,
          etag: d.md5,
          userMeta: input.userMeta,
          tags: input.tags ?? {},
          ...(d.checksum ? { checksum: d.checksum } : {}),
        };
      },
    });
  }

  async copyObject(input: CopyObjectInput): Promise<ObjectVersion> {
    const src = await this.#requireLive(input.srcBucket, input.srcKey);
    checkReadConditions(src, input.sourceConditions);
    await this.requireBucket(input.dstBucket);
    if (input.srcBucket === input.dstBucket && input.srcKey === input.dstKey && input.metadataDirective === 'COPY') {
      throw new CoreError(
        'InvalidRequest',
        'This copy request is illegal because it is trying to copy an object to itself without changing the ' +
          "object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    if (input.conditions) checkWriteConditions(await this.#live(input.dstBucket, input.dstKey), input.conditions);
    const copies = await this.#copies(src.versionId);
    const headers =
      input.metadataDirective === 'COPY'
        ? pickHeaders(src)
        : input.headers;
    const userMeta = input.metadataDirective === 'COPY' ? src.userMeta : input.userMeta;
    const tags = input.taggingDirective === 'REPLACE' ? (input.tags ?? {}) : await this.#tags(input.srcBucket, input.srcKey);
    const partSizes = await this.#partSizes(src);
    return this.#degraded.guardWrite((r) => writeVersion(this.#deps, r), {
      bucket: input.dstBucket,
      key: input.dstKey,
      size: src.size,
      ...(input.conditions ? { conditions: input.conditions } : {}),
      prefer: copies.map((c) => c.backend),
      meta: { ...headers, etag: src.etag, userMeta, ...(src.partsCount ? { partSizes } : {}) },
      produce: async (backend, pkey, meta, lost) => {
        const local = copies.find((c) => c.backend === backend.name);
        if (local) return backend.copy(local.physicalKey, pkey, meta);
        const signal = anySignal(input.signal, lost);
        const body = src.size === 0 ? Readable.from([]) : await this.#openCopy(src, undefined, signal);
        return backend.put(pkey, body, src.size, meta, signal);
      },
      retryable: (err) => err instanceof BackendError && err.kind !== 'Aborted' && !input.signal?.aborted,
      finalize: () => ({
        ...headers,
        etag: src.etag,
        userMeta,
        tags,
        ...(src.partsCount ? { partsCount: src.partsCount, partSizes } : {}),
        ...(src.checksum ? { checksum: src.checksum } : {}),
      }),
    });
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.requireBucket(bucket);
    await this.#retire(bucket, [key]);
  }

  async deleteObjects(bucket: string, keys: string[]): Promise<DeleteOutcome[]> {
    await this.requireBucket(bucket);
    const unique = [...new Set(keys)];
    await this.#retire(bucket, unique);
    return keys.map((key) => ({ key }));
  }

  /** Retires the live versions of keys in one transaction, taking the key locks in one statement, in a fixed order. */
  async #retire(bucket: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#deps.db.tx(async (q) => {
      const sorted = await lockKeys(q, bucket, keys);
      await retireLive(q, bucket, sorted, 'delete', this.#deps.cleanupDelayMs);
    });
    // Only a delete known to have committed: one of unknown outcome (its COMMIT reply lost) must not look
    // done while the database is down and undone once it is back.
    this.#degraded.noteDeleted(bucket, keys);
  }

  async listObjects(input: ListInput): Promise<ListResult> {
    await this.requireBucket(input.bucket);
    return listObjects(this.#deps.db, input);
  }

  /**
   * The byte range of part `partNumber` of a version (GET/HEAD ?partNumber). A single-part object has one
   * part, the whole object; a part the object does not have is InvalidPartNumber.
   */
  async partRange(version: ObjectVersion, partNumber: number): Promise<{ start: number; end: number }> {
    const degraded = degradedPartSizes(version);
    if (degraded === null) throw new CoreError('ServiceUnavailable', 'the metadata database is unavailable and the part sizes of this object are not stored with it');
    const sizes = degraded ? [...degraded] : await this.#partSizes(version);
    if (partNumber < 1 || partNumber > sizes.length || version.size === 0) throw new CoreError('InvalidPartNumber', String(partNumber));
    const start = sizes.slice(0, partNumber - 1).reduce((a, b) => a + b, 0);
    return { start, end: start + sizes[partNumber - 1]! - 1 };
  }

  async #partSizes(version: ObjectVersion): Promise<number[]> {
    if (!version.partsCount) return [version.size];
    const { rows } = await run<{ part_sizes: number[] | null }>(this.#deps.db, oq.selectPartSizes(version.versionId));
    return rows[0]?.part_sizes ?? [version.size];
  }

  async #tags(bucket: string, key: string): Promise<Record<string, string>> {
    const { rows } = await run<{ tags: Record<string, string> }>(this.#deps.db, oq.selectTags(bucket, key));
    if (!rows[0]) throw new CoreError('NoSuchKey', key);
    return rows[0].tags;
  }

  async getTagging(bucket: string, key: string): Promise<Record<string, string>> {
    await this.#requireLive(bucket, key);
    return this.#tags(bucket, key);
  }

  async putTagging(bucket: string, key: string, tags: Record<string, string>): Promise<void> {
    const { rowCount } = await run(this.#deps.db, oq.updateTags(bucket, key, tags));
    if (rowCount === 0) await this.#requireLive(bucket, key);
  }

  async deleteTagging(bucket: string, key: string): Promise<void> {
    await this.putTagging(bucket, key, {});
  }

  async locate(bucket: string, key: string): Promise<{ version: ObjectVersion; copies: CopyLocation[] }> {
    const version = await this.#requireLive(bucket, key);
    return { version, copies: await this.#copies(version.versionId) };
  }
}

/** A signal that aborts when either does (the request's, or the write's lost claim). */
function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

function pickHeaders(v: ObjectVersion) {
  const { contentType, contentEncoding, contentDisposition, contentLanguage, cacheControl, expires } = v;
  return Object.fromEntries(
    Object.entries({ contentType, contentEncoding, contentDisposition, contentLanguage, cacheControl, expires }).filter(
      ([, val]) => val !== undefined,
    ),
  );
}
