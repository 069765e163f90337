/**
 * Degraded reads: GET and HEAD of existing objects while the metadata database is unavailable, answered
 * from the backends alone through the physical layout (backends/layout.ts):
 *
 * 1. every backend lists `logicalPrefix(bucket, key)` at once, each within a bounded time;
 * 2. the newest generation found wins (version ids sort by creation time); its copies are all the entries
 *    of that version id, repair and move copies (`<versionId>.<hex>`) included;
 * 3. the metadata stored with the physical object (PhysicalMeta: content headers, user metadata, the ETag
 *    when it was known, part sizes) gives the answer's headers; a single-part object whose ETag was not
 *    stored has it recomputed from its bytes (up to {@link DegradedOptions.md5LimitBytes});
 * 4. the bytes stream with the normal failover between the generation's copies (core/read.ts).
 *
 * What this cannot know (docs/reliability.md, "When the metadata database is down"): whether the newest
 * generation was ever published (a write of another instance still pending, or aborted, when the database
 * went away wins over the last acknowledged one), whether another instance deleted the key (its bytes stay
 * until the cleanup runs, which needs the database), tags and stored checksums. What this instance did
 * itself is remembered for a while: the generations its writes produced without an acknowledgement are
 * skipped ({@link DegradedReader.guardWrite}), and the keys it deleted stay deleted
 * ({@link DegradedReader.noteDeleted}).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Backend, BackendListEntry, PhysicalMeta } from '../backends/backend.js';
import { logicalPrefix, versionIdOf } from '../backends/layout.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BackendRegistry } from './backends.js';
import { checkReadConditions, resolveRange } from './conditions.js';
import { CoreError } from './errors.js';
import { openVersion, type ReadableCopy } from './read.js';
import type { GetObjectResult, ObjectVersion, RangeSpec, ReadConditions } from './types.js';
import type { WriteRequest } from './writes.js';

/** One physical object found under a key's prefix. */
export interface FoundCopy {
  backend: string;
  physicalKey: string;
  size: number;
  /** When the backend last modified it (ms), if it says. */
  modifiedMs?: number;
}

/** The newest generation of a key on the backends, and where its copies are. */
export interface FoundGeneration {
  versionId: string;
  copies: FoundCopy[];
}

/** What each backend's listing of the key's prefix gave (or why it gave nothing). */
export interface PrefixListing {
  backend: string;
  entries?: readonly BackendListEntry[];
  error?: unknown;
}

/** Suffix of metadata sidecars, which share the prefix of the object they describe. */
const SIDECAR_SUFFIX = '.meta.json';

/**
 * The newest generation among the listings of one key's prefix: the greatest version id (ids begin with
 * their creation time in ms, so the greatest is the newest), with every entry of that id as its copies.
 * Entries that are not copies (sidecars, names without a version id, keys under a deeper path) are ignored.
 */
export function newestGeneration(
  prefix: string,
  listings: readonly PrefixListing[],
  skip: (versionId: string) => boolean = () => false,
): FoundGeneration | undefined {
  let best: FoundGeneration | undefined;
  for (const l of listings) {
    for (const e of l.entries ?? []) {
      if (!e.key.startsWith(prefix) || e.key.endsWith(SIDECAR_SUFFIX)) continue;
      const rest = e.key.slice(prefix.length);
      if (rest.includes('/')) continue;
      const versionId = versionIdOf(e.key);
      if (!versionId || skip(versionId)) continue;
      // Backends that report a modification time give it as `modifiedMs` (not all do).
      const modifiedMs = (e as BackendListEntry & { modifiedMs?: number }).modifiedMs;
      const copy: FoundCopy = { backend: l.backend, physicalKey: e.key, size: e.size, ...(modifiedMs !== undefined ? { modifiedMs } : {}) };
      if (!best || versionId > best.versionId) best = { versionId, copies: [copy] };
      else if (versionId === best.versionId) best.copies.push(copy);
    }
  }
  return best;
}

/** Milliseconds since the epoch at which a version id was created (its first 12 hex digits). */
export function versionTime(versionId: string): number {
  return parseInt(versionId.slice(0, 12), 16);
}

/** Tuning of {@link DegradedReader}. */
export interface DegradedOptions {
  backends: BackendRegistry;
  log: Logger;
  metrics?: Metrics;
  /** Longest time for all backends to list a key's prefix, and for the metadata of the chosen copy (ms, default 3000). */
  locateTimeoutMs?: number;
  /** A single-part object without a stored ETag has it recomputed from its bytes up to this size (default 32 MiB). */
  md5LimitBytes?: number;
  /** How long a delete made by this instance, or a generation it wrote without acknowledgement, is remembered (ms, default 1 hour). */
  rememberDeletesMs?: number;
}

/** Part sizes of versions built here (partNumber requests). */
const PART_SIZES = new WeakMap<ObjectVersion, readonly number[] | null>();

/**
 * For a version answered in degraded mode: its part sizes (null when they are not known), or undefined
 * when the version came from the database.
 */
export function degradedPartSizes(v: ObjectVersion): readonly number[] | null | undefined {
  return PART_SIZES.get(v);
}

/** At most this many pages of a prefix per backend (a key has a handful of generations at any time). */
const MAX_PAGES = 10;
const MAX_REMEMBERED = 100_000;
const MAX_ETAGS = 10_000;

/** Answers GET/HEAD from the backends alone; see the module comment. */
export class DegradedReader {
  readonly #o: Required<Omit<DegradedOptions, 'metrics'>> & { metrics?: Metrics };
  /** `bucket/key` → when this instance deleted it. */
  readonly #deleted = new Map<string, number>();
  /** Generations this instance produced and did not see acknowledged: version id → when (see guardWrite). */
  readonly #unconfirmed = new Map<string, number>();
  /** Physical key → ETag recomputed from its bytes (bytes of a physical key never change). */
  readonly #etags = new Map<string, string>();

  constructor(o: DegradedOptions) {
    this.#o = {
      locateTimeoutMs: 3_000,
      md5LimitBytes: 32 * 1024 * 1024,
      rememberDeletesMs: 60 * 60_000,
      ...o,
    };
  }

  /**
   * Remembers keys this instance deleted (committed): degraded reads answer 404 for generations created
   * before, until this instance learns that the key is live again (its own write of it is acknowledged, or a
   * read from the database that began after the delete finds it).
   */
  noteDeleted(bucket: string, keys: readonly string[]): void {
    for (const key of keys) this.#remember(this.#deleted, `${bucket}/${key}`);
  }

  /**
   * Runs a write (`run(req)`), remembering every generation its `produce` makes until the write is
   * acknowledged: the bytes of a write still running, or of one that failed after they landed (its commit
   * refused, or lost, when the database went away), are not the version to answer. A generation whose
   * commit did happen after all is cleared by the next read of it from the database ({@link noteLive}).
   */
  async guardWrite(run: (req: WriteRequest) => Promise<ObjectVersion>, req: WriteRequest): Promise<ObjectVersion> {
    const guarded: WriteRequest = {
      ...req,
      produce: (backend: Backend, key: string, meta: PhysicalMeta, lost: AbortSignal) => {
        this.#remember(this.#unconfirmed, meta.versionId);
        return req.produce(backend, key, meta, lost);
      },
    };
    const v = await run(guarded);
    this.#unconfirmed.delete(v.versionId);
    // Acknowledged after the delete was: the key is live again (a write staged before the delete can commit after it).
    this.#deleted.delete(`${v.bucket}/${v.key}`);
    return v;
  }

  /**
   * Runs a multipart completion whose generation is `versionId` (when known), remembered as unacknowledged
   * like a write's ({@link guardWrite}): its assembled bytes are not answered before the completion is.
   */
  async guardCompletion(versionId: string | undefined, run: () => Promise<ObjectVersion>): Promise<ObjectVersion> {
    if (versionId !== undefined) this.#remember(this.#unconfirmed, versionId);
    const v = await run();
    this.#unconfirmed.delete(v.versionId);
    this.#deleted.delete(`${v.bucket}/${v.key}`);
    return v;
  }

  /**
   * A version the database says is live, read by a statement that began at `readStartedAt` (ms): it is not
   * unconfirmed, and its key is not deleted if the read began after the delete was remembered.
   */
  noteLive(v: ObjectVersion, readStartedAt: number): void {
    if (this.#unconfirmed.size > 0) this.#unconfirmed.delete(v.versionId);
    if (this.#deleted.size === 0) return;
    const id = `${v.bucket}/${v.key}`;
    const at = this.#deleted.get(id);
    if (at !== undefined && at < readStartedAt) this.#deleted.delete(id);
  }

  /** Adds `id` to a time-ordered memory, dropping entries too old or too many. */
  #remember(map: Map<string, number>, id: string): void {
    const now = Date.now();
    map.delete(id);
    map.set(id, now);
    for (const [old, at] of map) {
      if (map.size <= MAX_REMEMBERED && now - at < this.#o.rememberDeletesMs) break;
      map.delete(old);
    }
  }

  async headObject(bucket: string, key: string, cond?: ReadConditions): Promise<ObjectVersion> {
    const found = await this.#find(bucket, key, 'HeadObject');
    checkReadConditions(found.version, cond);
    this.#count('HeadObject', 'served');
    return found.version;
  }

  async getObject(
    bucket: string,
    key: string,
    opts: { range?: RangeSpec; conditions?: ReadConditions; signal?: AbortSignal; stallMs?: number } = {},
  ): Promise<GetObjectResult> {
    const { version, copies } = await this.#find(bucket, key, 'GetObject');
    checkReadConditions(version, opts.conditions);
    const range = resolveRange(opts.range, version.size);
    if (version.size === 0) {
      this.#count('GetObject', 'served');
      return { version, body: Readable.from([]) };
    }
    const body = await openVersion({
      copies: this.#readable(copies, range),
      range: range ?? { start: 0, end: version.size - 1 },
      stallMs: opts.stallMs ?? 30_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
      log: this.#o.log,
      what: `${bucket}/${key}`,
    }).catch((err: unknown) => {
      this.#count('GetObject', 'unavailable');
      throw err;
    });
    this.#count('GetObject', 'served');
    return range ? { version, range, body } : { version, body };
  }

  #count(op: string, outcome: 'served' | 'not_found' | 'unavailable'): void {
    this.#o.metrics?.degradedReads.inc({ op, outcome });
  }

  /** The version to answer with and its copies (the ones whose size agrees), or NoSuchKey / ServiceUnavailable. */
  async #find(bucket: string, key: string, op: string): Promise<{ version: ObjectVersion; copies: FoundCopy[] }> {
    try {
      return await this.#locate(bucket, key);
    } catch (err) {
      this.#count(op, err instanceof CoreError && err.code === 'NoSuchKey' ? 'not_found' : 'unavailable');
      throw err;
    }
  }

  async #locate(bucket: string, key: string): Promise<{ version: ObjectVersion; copies: FoundCopy[] }> {
    const prefix = logicalPrefix(bucket, key);
    const deadline = Date.now() + this.#o.locateTimeoutMs;
    const listings = await Promise.all(this.#o.backends.all().map((b) => this.#list(b.name, prefix, deadline)));
    const failed = listings.filter((l) => l.error !== undefined);
    const found = newestGeneration(prefix, listings, (id) => this.#unconfirmed.has(id));
    const deletedAt = this.#deleted.get(`${bucket}/${key}`);
    if (!found || (deletedAt !== undefined && versionTime(found.versionId) <= deletedAt)) {
      // Without an answer from every backend, the object may be on one that did not answer.
      if (failed.length > 0) {
        throw new CoreError('ServiceUnavailable', `the metadata database is unavailable and ${failed.map((l) => l.backend).join(', ')} did not answer`, {
          cause: failed[0]!.error,
        });
      }
      throw new CoreError('NoSuchKey', key);
    }
    if (failed.length > 0) {
      this.#o.log.warn('degraded read without every backend: a newer generation may be missed', { bucket, key, missing: failed.map((l) => l.backend) });
    }
    const ordered = this.#o.backends.availableFirst(found.copies.map((c) => c.backend));
    const copies = [...found.copies].sort((a, b) => ordered.indexOf(a.backend) - ordered.indexOf(b.backend));
    let last: unknown;
    // The metadata gets its own time: the listing may have used all of its own waiting for a silent backend.
    const headDeadline = Date.now() + this.#o.locateTimeoutMs;
    for (const copy of copies) {
      const backend = this.#o.backends.get(copy.backend);
      if (!backend) continue;
      try {
        const head = await withDeadline(backend.head(copy.physicalKey), headDeadline, `head of ${copy.physicalKey} on ${copy.backend}`);
        if (!head) continue;
        const meta = head.meta;
        // A foreign object, or (in theory) another key whose hash shares the prefix.
        if (meta && (meta.bucket !== bucket || meta.key !== key || meta.versionId !== found.versionId)) continue;
        const same = copies.filter((c) => c.size === head.size);
        const version = await this.#version(bucket, key, found.versionId, head.size, meta, copy, same);
        return { version, copies: same };
      } catch (err) {
        last = err;
        this.#o.log.warn('degraded read: copy metadata unreadable, trying the next copy', { backend: copy.backend, physicalKey: copy.physicalKey, err });
      }
    }
    throw new CoreError('ServiceUnavailable', `the metadata database is unavailable and no copy of ${bucket}/${key} could be read`, { cause: last });
  }

  async #list(backend: string, prefix: string, deadline: number): Promise<PrefixListing> {
    const b = this.#o.backends.get(backend);
    if (!b) return { backend, entries: [] };
    try {
      const entries: BackendListEntry[] = [];
      let startAfter: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = await withDeadline(b.list(prefix, startAfter !== undefined ? { startAfter } : {}), deadline, `list of ${prefix} on ${backend}`);
        entries.push(...res.entries);
        if (!res.truncated || res.entries.length === 0) break;
        startAfter = res.entries[res.entries.length - 1]!.key;
      }
      return { backend, entries };
    } catch (err) {
      this.#o.log.warn('degraded read: backend listing failed', { backend, prefix, err });
      return { backend, error: err };
    }
  }

  /** The S3-visible version from what the backends store; see the module comment for what is missing. */
  async #version(
    bucket: string,
    key: string,
    versionId: string,
    size: number,
    meta: PhysicalMeta | undefined,
    copy: FoundCopy,
    copies: FoundCopy[],
  ): Promise<ObjectVersion> {
    const extra = (meta ?? {}) as { userMeta?: Record<string, string>; partSizes?: number[] };
    const partSizes = extra.partSizes && extra.partSizes.length > 0 ? extra.partSizes : undefined;
    const etag = meta?.etag ?? (await this.#recomputedEtag(copy, copies, size, partSizes));
    const multipartParts = partSizes?.length ?? partsOfEtag(etag);
    const v: ObjectVersion = {
      bucket,
      key,
      versionId,
      size,
      etag: etag ?? '',
      userMeta: { ...(extra.userMeta ?? {}) },
      tagCount: 0,
      lastModified: new Date(copy.modifiedMs !== undefined ? Math.floor(copy.modifiedMs) : versionTime(versionId)),
      ...(multipartParts !== undefined ? { partsCount: multipartParts } : {}),
      ...pickHeaders(meta),
    };
    // Part sizes: stored ones; a single-part object is its one part; a multipart one without them is unknown.
    PART_SIZES.set(v, partSizes ?? (etag !== undefined && multipartParts === undefined ? [size] : null));
    return v;
  }

  /**
   * The MD5 of a single-part object whose ETag was not stored (a plain PUT), read from a copy when it is small
   * enough; undefined for multipart objects (their ETag is not the MD5 of the bytes) and big ones.
   */
  async #recomputedEtag(copy: FoundCopy, copies: FoundCopy[], size: number, partSizes: number[] | undefined): Promise<string | undefined> {
    if (partSizes !== undefined || size > this.#o.md5LimitBytes) return undefined;
    const cached = this.#etags.get(copy.physicalKey);
    if (cached) return cached;
    let etag: string;
    if (size === 0) etag = createHash('md5').digest('hex');
    else {
      const hash = createHash('md5');
      const body = await openVersion({
        copies: this.#readable(copies.length > 0 ? copies : [copy], undefined),
        range: { start: 0, end: size - 1 },
        stallMs: this.#o.locateTimeoutMs,
        log: this.#o.log,
        what: copy.physicalKey,
      });
      for await (const chunk of body) hash.update(chunk as Buffer);
      etag = hash.digest('hex');
    }
    if (this.#etags.size >= MAX_ETAGS) this.#etags.delete(this.#etags.keys().next().value!);
    this.#etags.set(copy.physicalKey, etag);
    return etag;
  }

  #readable(copies: readonly FoundCopy[], range: { start: number; end: number } | undefined): ReadableCopy[] {
    return copies.map((c) => ({
      describe: { backend: c.backend, physicalKey: c.physicalKey },
      open: (r, signal) => {
        const backend = this.#o.backends.get(c.backend);
        if (!backend) return Promise.reject(new Error(`backend ${c.backend} is not configured`));
        const whole = !range && r.start === 0;
        return backend.get(c.physicalKey, whole ? undefined : r, signal);
      },
    }));
  }
}

/** The part count of a multipart ETag (`<md5>-<n>`), or undefined. */
function partsOfEtag(etag: string | undefined): number | undefined {
  const m = etag === undefined ? null : /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  return m ? Number(m[1]) : undefined;
}

function pickHeaders(meta: PhysicalMeta | undefined): Partial<ObjectVersion> {
  if (!meta) return {};
  const out: Partial<ObjectVersion> = {};
  if (meta.contentType !== undefined) out.contentType = meta.contentType;
  if (meta.contentEncoding !== undefined) out.contentEncoding = meta.contentEncoding;
  if (meta.contentDisposition !== undefined) out.contentDisposition = meta.contentDisposition;
  if (meta.contentLanguage !== undefined) out.contentLanguage = meta.contentLanguage;
  if (meta.cacheControl !== undefined) out.cacheControl = meta.cacheControl;
  if (meta.expires !== undefined) out.expires = meta.expires;
  return out;
}

/** `p`, or a rejection once `deadline` (ms since the epoch) passes; `p` is left to settle on its own. */
function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) {
    p.catch(() => {});
    return Promise.reject(new Error(`${what}: no answer in time`));
  }
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      p.catch(() => {});
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}
