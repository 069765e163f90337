import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream, type Dirent } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FsBackendConfig } from '../config/types.js';
import { BackendError, type Backend, type BackendListEntry, type ByteRange, type PhysicalMeta } from './backend.js';
import { byteCompare, fsyncPath, ignoreMissing, mapFsError, MISSING, normalEtag, treeUsage, writeDurable } from './fs-util.js';
import { callerCaused, ExactLength, Md5Tap } from './stream-util.js';

export { mapFsError } from './fs-util.js';

/** Suffix of the file holding an object's {@link PhysicalMeta}, next to the data file. */
export const SIDECAR_SUFFIX = '.meta.json';
/** Directory under the root for in-flight writes; on the same filesystem so rename is atomic. */
export const TMP_DIR = '.tmp';
/**
 * Directory under the root holding multipart uploads in progress: `.mpu/<uploadId>/meta.json` (the key and
 * its {@link PhysicalMeta}) and one file per part, named by its number.
 */
export const MPU_DIR = '.mpu';
/**
 * The identity file at the root: `{ "backend": name, "id": random, "created": ISO time }`, written once at
 * first use. Writes (and deletes) are refused while it is missing or names another identity, so an
 * unmounted disk is never silently replaced by an empty directory on the filesystem beneath it.
 */
export const IDENTITY_FILE = '.s3o-backend.json';
const HIGH_WATER_MARK = 256 * 1024;
/** Reads and writes while assembling parts: fewer, larger syscalls for what may be gigabytes of copying. */
const ASSEMBLY_HIGH_WATER_MARK = 4 * 1024 * 1024;
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,64}$/;
const MAX_PART_NUMBER = 10_000;
const DEFAULT_LIST_LIMIT = 1000;
/** What the backend knows, from outside, about its directory's identity (see {@link FsBackend.expectIdentity}). */
export interface IdentityExpectation {
  /** The identity id recorded at first use (the metadata database keeps it). */
  id?: string;
  /** The backend is known to hold objects: an empty or missing root is then never a first use. */
  hasData?: boolean;
}

/** What {@link FsBackend.sweepLeftovers} found (sizes in bytes). */
export interface LeftoverReport {
  /** Temp files of writes in progress or dead, and their bytes. */
  tmpFiles: number;
  tmpBytes: number;
  /** Multipart upload directories that no upload in progress references, and their bytes. */
  orphanUploads: number;
  orphanUploadBytes: number;
  /** What was removed (leftovers older than the safe age). */
  removedFiles: number;
  removedUploads: number;
  removedBytes: number;
}

/**
 * A backend on a local directory. Data lives at `<root>/<key>`, its {@link PhysicalMeta} at
 * `<root>/<key>.meta.json`. Every write goes to `<root>/.tmp/` first and is renamed into place after fsync,
 * so a crash never leaves a partial object under a live name.
 *
 * Multipart uploads live in `<root>/.mpu/<uploadId>/` (see {@link MPU_DIR}); parts are written like objects
 * (temp, fsync, rename), and completing streams them into a new temp file that is published like a put.
 * Completion therefore copies the bytes once: O(object size) in time, O(1) in memory.
 */
export class FsBackend implements Backend {
  readonly type = 'fs' as const;
  readonly name: string;
  /** Absolute root directory. */
  readonly root: string;
  private readonly tmpDir: string;
  private readonly mpuDir: string;
  private readonly identityPath: string;
  /** The identity this backend writes under, once established by check() or the first write. */
  #identity: string | undefined;
  #expect: IdentityExpectation = {};
  /** Temp files this process is writing right now: never leftovers, whatever their age. */
  readonly #activeTemps = new Set<string>();

  constructor(cfg: FsBackendConfig) {
    this.name = cfg.name;
    this.root = path.resolve(cfg.path);
    this.tmpDir = path.join(this.root, TMP_DIR);
    this.mpuDir = path.join(this.root, MPU_DIR);
    this.identityPath = path.join(this.root, IDENTITY_FILE);
  }

  /** The identity id, once established (after check() or a first write). */
  get identity(): string | undefined {
    return this.#identity;
  }

  /**
   * Tells the backend what is known about its directory before check(): the identity recorded at first use
   * and whether it holds objects. With either, a missing root or identity file is an outage (a disk not
   * mounted), never a first use: nothing is created.
   */
  expectIdentity(expect: IdentityExpectation): void {
    this.#expect = { ...expect };
    this.#identity = undefined;
  }

  private unavailable(message: string, cause?: unknown): BackendError {
    return new BackendError(this.name, 'Unavailable', `fs backend "${this.name}": ${message}`, cause === undefined ? undefined : { cause });
  }

  private async readIdentity(): Promise<{ backend?: unknown; id?: unknown } | undefined> {
    let text: string;
    try {
      text = await readFile(this.identityPath, 'utf8');
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw mapFsError(this.name, err, `read ${IDENTITY_FILE}`, 'Unavailable');
    }
    try {
      return JSON.parse(text) as { backend?: unknown; id?: unknown };
    } catch (err) {
      throw this.unavailable(`${this.identityPath} is not valid JSON`, err);
    }
  }

  /**
   * Establishes the identity: adopts the identity file when present (it must be this backend's, and the
   * expected one when known), or writes it at first use. First use means: no identity is expected, and the
   * backend is not known to hold data or its root exists with data (a directory used before identity files
   * existed). Only a first use may create the root directory.
   */
  private async establishIdentity(mayCreateRoot: boolean): Promise<string> {
    const found = await this.readIdentity();
    const expected = this.#expect.id;
    if (found) {
      if (found.backend !== this.name || typeof found.id !== 'string') {
        throw this.unavailable(`${this.identityPath} belongs to backend ${JSON.stringify(found.backend)}, not to this one: is the right disk mounted at ${this.root}?`);
      }
      if (expected !== undefined && found.id !== expected) {
        throw this.unavailable(`${this.identityPath} has identity ${found.id}, not ${expected} recorded at first use: another directory is mounted at ${this.root}`);
      }
      this.#identity = found.id;
      return found.id;
    }
    if (expected !== undefined) {
      throw this.unavailable(
        `${this.identityPath} is missing (identity ${expected} was recorded at first use): is the disk mounted? Nothing is written until it is back ` +
          `(to replace the directory on purpose, write ${JSON.stringify({ backend: this.name, id: expected })} there)`,
      );
    }
    const rootExists = await stat(this.root).then((st) => st.isDirectory(), () => false);
    const hasEntries = rootExists && (await readdir(this.root)).some((n) => n !== TMP_DIR && n !== MPU_DIR);
    if (this.#expect.hasData && !hasEntries) {
      throw this.unavailable(
        `${this.root} is ${rootExists ? 'empty' : 'missing'} although the backend holds objects: is the disk mounted? Nothing is written until it is back ` +
          `(to use this directory on purpose, write {"backend":${JSON.stringify(this.name)},"id":"<any new id>"} to ${this.identityPath})`,
      );
    }
    if (!rootExists) {
      if (!mayCreateRoot) throw this.unavailable(`directory ${this.root} is missing`);
      await mkdir(this.root, { recursive: true });
    }
    const id = randomBytes(16).toString('hex');
    try {
      await writeDurable(this.identityPath, JSON.stringify({ backend: this.name, id, created: new Date().toISOString() }) + '\n');
      await fsyncPath(this.root, 'r');
    } catch (err) {
      // Two first uses at once (several instances sharing the directory): the other one's file wins.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return this.establishIdentity(false);
      throw err;
    }
    this.#identity = id;
    return id;
  }

  /** Refuses to touch the directory unless its identity file is present and ours (checked on every write). */
  private async assertIdentity(): Promise<void> {
    if (this.#identity === undefined) {
      await this.establishIdentity(false);
      return;
    }
    const found = await this.readIdentity();
    if (!found) {
      throw this.unavailable(`${this.identityPath} is missing: is the disk mounted? Nothing is written until it is back`);
    }
    if (found.id !== this.#identity || found.backend !== this.name) {
      throw this.unavailable(`${this.identityPath} has identity ${String(found.id)}, not ${this.#identity}: another directory is mounted at ${this.root}`);
    }
  }

  /** After a read found nothing: an object is missing only if the directory is the right one. */
  private async missingOrUnavailable(err: unknown, what: string): Promise<BackendError> {
    await this.assertIdentity();
    return mapFsError(this.name, err, what);
  }

  /**
   * Creates `dir` and its missing parents, but never the root itself: if the root is gone (an unmounted
   * disk), this fails with ENOENT instead of re-creating it on the filesystem beneath.
   */
  private async ensureDir(dir: string): Promise<void> {
    if (dir === this.root) {
      await stat(this.root);
      return;
    }
    if (!dir.startsWith(this.root + path.sep)) throw new Error(`${dir} is outside ${this.root}`);
    try {
      await mkdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'ENOENT') throw err;
      await this.ensureDir(path.dirname(dir));
      await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    }
  }

  /** Maps a physical key to a path inside the root; rejects anything that could escape it or collide. */
  private resolve(key: string): string {
    const segments = key.split('/');
    const bad =
      key.length === 0 ||
      key.includes('\0') ||
      segments.some((s) => s === '' || s === '.' || s === '..') ||
      segments[0] === TMP_DIR ||
      segments[0] === MPU_DIR ||
      segments[0] === IDENTITY_FILE ||
      key.endsWith(SIDECAR_SUFFIX);
    const p = path.join(this.root, ...segments);
    if (bad || !p.startsWith(this.root + path.sep)) {
      throw new BackendError(this.name, 'Other', `invalid physical key ${JSON.stringify(key)}`);
    }
    return p;
  }

  /** A new temp file name, registered as in progress until {@link doneTemp}. */
  private tmpName(): string {
    const p = path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
    this.#activeTemps.add(p);
    return p;
  }

  private doneTemp(p: string): void {
    this.#activeTemps.delete(p);
  }

  /** Renames finished temp files into place (last pair last), then fsyncs the directory. */
  private async commit(dest: string, pairs: [string, string][]): Promise<void> {
    const dir = path.dirname(dest);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.ensureDir(dir);
        for (const [from, to] of pairs) await rename(from, to);
        break;
      } catch (err) {
        // A concurrent delete may prune the parent between mkdir and rename: recreate it once.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
      }
    }
    await fsyncPath(dir, 'r');
  }

  async put(key: string, body: Readable, size: number, meta: PhysicalMeta, signal?: AbortSignal): Promise<void> {
    const dest = this.resolve(key);
    await this.streamToTemp(body, size, signal, `put ${key}`, {}, async (tmpData) => {
      const tmpMeta = `${tmpData}${SIDECAR_SUFFIX}`;
      await writeDurable(tmpMeta, JSON.stringify(meta));
      signal?.throwIfAborted();
      await this.commit(dest, [
        [tmpMeta, dest + SIDECAR_SUFFIX],
        [tmpData, dest],
      ]);
    });
  }

  /**
   * Streams exactly `size` bytes of `body` into a new durable temp file, then lets `publish` move it (and an
   * optional `<tmp>.meta.json`) into place. On any failure both temp files are removed and the error is
   * classified: the body's or the signal's fault is `Aborted`. Resolves with the MD5 when `opts.md5`.
   */
  private async streamToTemp(
    body: Readable,
    size: number,
    signal: AbortSignal | undefined,
    what: string,
    opts: { md5?: boolean; ready?: () => Promise<void> },
    publish: (tmp: string) => Promise<void>,
  ): Promise<string | undefined> {
    const tmpData = this.tmpName();
    const tmpMeta = `${tmpData}${SIDECAR_SUFFIX}`;
    let bodyError: unknown;
    const onBodyError = (err: unknown) => {
      bodyError ??= err;
    };
    body.on('error', onBodyError);
    try {
      signal?.throwIfAborted();
      await this.assertIdentity();
      await opts.ready?.();
      await this.ensureDir(this.tmpDir);
      // flush: fsync before close, and pipeline resolves only after 'close', so the bytes are durable here.
      const out = createWriteStream(tmpData, { flags: 'wx', mode: 0o644, flush: true, highWaterMark: HIGH_WATER_MARK });
      const tap = opts.md5 ? new Md5Tap() : undefined;
      if (tap) await pipeline(body, new ExactLength(size), tap, out, { signal });
      else await pipeline(body, new ExactLength(size), out, { signal });
      await publish(tmpData);
      return tap?.digest();
    } catch (err) {
      await Promise.all([unlink(tmpData).catch(() => undefined), unlink(tmpMeta).catch(() => undefined)]);
      if (err instanceof BackendError) throw err;
      if (callerCaused(err, bodyError, signal)) {
        const cause = bodyError ?? (signal?.aborted ? signal.reason : err);
        const message = cause instanceof Error ? cause.message : String(cause);
        throw new BackendError(this.name, 'Aborted', `${what}: ${message}`, { cause });
      }
      throw mapFsError(this.name, err, what, 'Unavailable');
    } finally {
      body.off('error', onBodyError);
      this.doneTemp(tmpData);
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const p = this.resolve(key);
    try {
      signal?.throwIfAborted();
      const fh = await open(p, 'r');
      const stream = fh.createReadStream({
        autoClose: true,
        highWaterMark: HIGH_WATER_MARK,
        ...(range ? { start: range.start, end: range.end } : {}),
      });
      return signal ? addAbortSignal(signal, stream) : stream;
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw await this.missingOrUnavailable(err, `get ${key}`);
      throw mapFsError(this.name, err, `get ${key}`);
    }
  }

  async head(key: string): Promise<{ size: number; meta?: PhysicalMeta } | null> {
    const p = this.resolve(key);
    try {
      const st = await stat(p);
      if (!st.isFile()) return null;
      let meta: PhysicalMeta | undefined;
      try {
        meta = JSON.parse(await readFile(p + SIDECAR_SUFFIX, 'utf8')) as PhysicalMeta;
      } catch {
        // A missing or unreadable sidecar must not hide the bytes: the object still exists.
        meta = undefined;
      }
      return meta ? { size: st.size, meta } : { size: st.size };
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) {
        await this.assertIdentity();
        return null;
      }
      throw mapFsError(this.name, err, `head ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.resolve(key);
    // Deleting from the wrong directory would "succeed" and let the quota go while the bytes stay.
    await this.assertIdentity();
    try {
      await ignoreMissing(unlink(p));
      await ignoreMissing(unlink(p + SIDECAR_SUFFIX));
    } catch (err) {
      throw mapFsError(this.name, err, `delete ${key}`);
    }
    await this.prune(path.dirname(p));
  }

  /** Removes empty parent directories, best effort, never the root itself. */
  private async prune(dir: string): Promise<void> {
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = path.dirname(dir);
    }
  }

  async copy(srcKey: string, dstKey: string, meta: PhysicalMeta): Promise<void> {
    const src = this.resolve(srcKey);
    const dest = this.resolve(dstKey);
    await this.assertIdentity();
    try {
      await stat(src);
    } catch (err) {
      throw mapFsError(this.name, err, `copy ${srcKey}`);
    }
    const tmpData = this.tmpName();
    const tmpMeta = `${tmpData}${SIDECAR_SUFFIX}`;
    try {
      await this.ensureDir(this.tmpDir);
      // FICLONE shares extents on filesystems that can (btrfs, xfs) and falls back to a byte copy elsewhere.
      await copyFile(src, tmpData, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
      await fsyncPath(tmpData, 'r+');
      await writeDurable(tmpMeta, JSON.stringify(meta));
      await this.commit(dest, [
        [tmpMeta, dest + SIDECAR_SUFFIX],
        [tmpData, dest],
      ]);
    } catch (err) {
      await Promise.all([unlink(tmpData).catch(() => undefined), unlink(tmpMeta).catch(() => undefined)]);
      throw mapFsError(this.name, err, `copy ${srcKey} -> ${dstKey}`, 'NotFound');
    } finally {
      this.doneTemp(tmpData);
    }
  }

  async list(
    prefix: string,
    opts?: { startAfter?: string; limit?: number },
  ): Promise<{ entries: BackendListEntry[]; truncated: boolean }> {
    const limit = opts?.limit ?? DEFAULT_LIST_LIMIT;
    const entries: BackendListEntry[] = [];
    await this.assertIdentity();
    try {
      for await (const entry of this.walk(this.root, '', prefix, opts?.startAfter)) {
        if (entries.length >= limit) return { entries, truncated: true };
        entries.push(entry);
      }
    } catch (err) {
      throw mapFsError(this.name, err, `list ${prefix}`, 'Unavailable');
    }
    return { entries, truncated: false };
  }

  /**
   * Yields files in key order. Directories sort as `name/` so that `a-b` (0x2d) comes before `a/x` (0x2f), as
   * it does in S3; subtrees that cannot hold a key matching `prefix` or after `startAfter` are skipped.
   */
  private async *walk(
    dirAbs: string,
    dirKey: string,
    prefix: string,
    startAfter: string | undefined,
  ): AsyncGenerator<BackendListEntry> {
    let dirents: Dirent[];
    try {
      dirents = await readdir(dirAbs, { withFileTypes: true });
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) return;
      throw err;
    }
    const items = dirents
      .filter((d) => (d.isDirectory() ? !(dirKey === '' && (d.name === TMP_DIR || d.name === MPU_DIR)) : d.isFile()))
      .filter((d) => !(dirKey === '' && d.name === IDENTITY_FILE))
      .filter((d) => d.isDirectory() || !d.name.endsWith(SIDECAR_SUFFIX))
      .map((d) => ({ d, key: dirKey + d.name + (d.isDirectory() ? '/' : '') }))
      .sort((a, b) => byteCompare(a.key, b.key));
    for (const { d, key } of items) {
      if (d.isDirectory()) {
        if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
        if (startAfter !== undefined && byteCompare(key, startAfter) <= 0 && !startAfter.startsWith(key)) continue;
        yield* this.walk(path.join(dirAbs, d.name), key, prefix, startAfter);
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      if (startAfter !== undefined && byteCompare(key, startAfter) <= 0) continue;
      // A file deleted between readdir and stat is simply gone from the listing.
      const st = await stat(path.join(dirAbs, d.name)).catch(() => null);
      if (st) yield { key, size: st.size, modifiedMs: st.mtimeMs };
    }
  }

  /** The directory of upload `uploadId`; rejects ids this backend cannot have issued (and path escapes). */
  private uploadDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) {
      throw new BackendError(this.name, 'Other', `invalid upload id ${JSON.stringify(uploadId)}`);
    }
    return path.join(this.mpuDir, uploadId);
  }

  /** Reads the record createMultipart wrote; an unknown upload, or one for another key, is NotFound. */
  private async readUpload(key: string, uploadId: string, what: string): Promise<{ dir: string; meta: PhysicalMeta }> {
    const dir = this.uploadDir(uploadId);
    let record: { key?: unknown; meta?: PhysicalMeta };
    try {
      record = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as typeof record;
    } catch (err) {
      if (MISSING.has((err as NodeJS.ErrnoException).code ?? '')) {
        throw new BackendError(this.name, 'NotFound', `${what}: no upload ${uploadId}`, { cause: err });
      }
      throw mapFsError(this.name, err, what, 'Unavailable');
    }
    if (record.key !== key || record.meta === undefined) {
      throw new BackendError(this.name, 'NotFound', `${what}: upload ${uploadId} is not an upload of this key`);
    }
    return { dir, meta: record.meta };
  }

  private checkPartNumber(partNumber: number, what: string): void {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
      throw new BackendError(this.name, 'Other', `${what}: part number must be 1-${MAX_PART_NUMBER}`);
    }
  }

  async createMultipart(key: string, meta: PhysicalMeta): Promise<string> {
    this.resolve(key);
    const uploadId = randomBytes(16).toString('base64url');
    const dir = this.uploadDir(uploadId);
    await this.assertIdentity();
    try {
      await this.ensureDir(dir);
      await writeDurable(path.join(dir, 'meta.json'), JSON.stringify({ key, meta }));
      await fsyncPath(dir, 'r');
      await fsyncPath(this.mpuDir, 'r');
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw mapFsError(this.name, err, `create multipart ${key}`, 'Unavailable');
    }
    return uploadId;
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Readable,
    size: number,
    signal?: AbortSignal,
  ): Promise<string> {
    const what = `upload part ${partNumber} of ${key}`;
    this.checkPartNumber(partNumber, what);
    let dir = '';
    const ready = async () => {
      dir = (await this.readUpload(key, uploadId, what)).dir;
    };
    const md5 = await this.streamToTemp(body, size, signal, what, { md5: true, ready }, async (tmp) => {
      try {
        // Renaming over an earlier upload of the same number replaces it atomically.
        await rename(tmp, path.join(dir, String(partNumber)));
      } catch (err) {
        if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        throw new BackendError(this.name, 'NotFound', `${what}: upload ${uploadId} was aborted meanwhile`, { cause: err });
      }
      await fsyncPath(dir, 'r');
    });
    return md5 ?? '';
  }

  async uploadPartCopy(key: string, uploadId: string, partNumber: number, srcKey: string, range: ByteRange): Promise<string> {
    const what = `upload part copy ${srcKey} -> part ${partNumber} of ${key}`;
    const src = this.resolve(srcKey);
    const st = await stat(src).catch((err: unknown) => {
      throw mapFsError(this.name, err, what);
    });
    if (!st.isFile()) throw new BackendError(this.name, 'NotFound', `${what}: no such object`);
    if (range.start < 0 || range.end < range.start || range.end >= st.size) {
      throw new BackendError(this.name, 'Other', `${what}: range ${range.start}-${range.end} is outside the ${st.size}-byte source`);
    }
    const body = await this.get(srcKey, range);
    let srcError: unknown;
    body.once('error', (err: unknown) => {
      srcError = err;
    });
    try {
      return await this.uploadPart(key, uploadId, partNumber, body, range.end - range.start + 1);
    } catch (err) {
      // uploadPart blames a failing body on the caller (Aborted); here the body is our own source file.
      if (srcError !== undefined) throw mapFsError(this.name, srcError, what, 'Unavailable');
      throw err;
    } finally {
      if (!body.destroyed) body.destroy();
    }
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
    finalMeta?: PhysicalMeta,
  ): Promise<void> {
    const what = `complete multipart ${key}`;
    const dest = this.resolve(key);
    if (parts.length === 0) throw new BackendError(this.name, 'Other', `${what}: no parts listed`);
    parts.forEach((p, i) => {
      this.checkPartNumber(p.partNumber, what);
      if (i > 0 && p.partNumber <= parts[i - 1]!.partNumber) {
        throw new BackendError(this.name, 'Other', `${what}: part numbers must be strictly ascending`);
      }
    });
    await this.assertIdentity();
    const { dir, meta } = await this.readUpload(key, uploadId, what);
    const tmpData = this.tmpName();
    const tmpMeta = `${tmpData}${SIDECAR_SUFFIX}`;
    try {
      await this.ensureDir(this.tmpDir);
      const out = createWriteStream(tmpData, {
        flags: 'wx',
        mode: 0o644,
        flush: true,
        highWaterMark: ASSEMBLY_HIGH_WATER_MARK,
      });
      await pipeline(this.concatParts(dir, parts, what), out);
      await writeDurable(tmpMeta, JSON.stringify(finalMeta ?? meta));
      await this.commit(dest, [
        [tmpMeta, dest + SIDECAR_SUFFIX],
        [tmpData, dest],
      ]);
    } catch (err) {
      await Promise.all([unlink(tmpData).catch(() => undefined), unlink(tmpMeta).catch(() => undefined)]);
      throw mapFsError(this.name, err, what, 'Unavailable');
    } finally {
      this.doneTemp(tmpData);
    }
    // The object is complete and durable; a leftover upload directory is only garbage for abort to remove.
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * Yields the listed parts' bytes in order, checking each part's MD5 against the ETag given for it. The
   * check hashes the bytes actually assembled, so it also catches a part replaced or damaged on disk.
   */
  private async *concatParts(
    dir: string,
    parts: readonly { partNumber: number; etag: string }[],
    what: string,
  ): AsyncGenerator<Buffer> {
    for (const part of parts) {
      let fh;
      try {
        fh = await open(path.join(dir, String(part.partNumber)), 'r');
      } catch (err) {
        if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        throw new BackendError(this.name, 'Other', `${what}: part ${part.partNumber} was never uploaded`, { cause: err });
      }
      const hash = createHash('md5');
      for await (const chunk of fh.createReadStream({ autoClose: true, highWaterMark: ASSEMBLY_HIGH_WATER_MARK })) {
        hash.update(chunk as Buffer);
        yield chunk as Buffer;
      }
      const actual = hash.digest('hex');
      if (actual !== normalEtag(part.etag)) {
        throw new BackendError(
          this.name,
          'Other',
          `${what}: part ${part.partNumber} has ETag ${actual}, not the ${JSON.stringify(part.etag)} given`,
        );
      }
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const what = `abort multipart ${key}`;
    const dir = this.uploadDir(uploadId);
    await this.assertIdentity();
    try {
      await this.readUpload(key, uploadId, what);
    } catch (err) {
      // Unknown, finished or someone else's upload: nothing of this key's to discard.
      if (err instanceof BackendError && err.kind === 'NotFound') return;
      throw err;
    }
    try {
      // Retries cover a part renamed into the directory while rm was emptying it (ENOTEMPTY).
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      throw mapFsError(this.name, err, what, 'Unavailable');
    }
  }

  /**
   * Establishes or verifies the directory's identity (creating the root and its identity file only at first
   * use, see {@link establishIdentity}), then proves the directory writable with a probe file.
   */
  async check(): Promise<void> {
    try {
      if (this.#identity === undefined) await this.establishIdentity(true);
      await this.assertIdentity();
      await this.ensureDir(this.tmpDir);
      const probe = this.tmpName();
      try {
        await writeFile(probe, 'ok');
        await unlink(probe);
      } finally {
        this.doneTemp(probe);
      }
    } catch (err) {
      if (err instanceof BackendError) throw err;
      const e = mapFsError(this.name, err, 'check', 'Unavailable');
      throw new BackendError(
        this.name,
        e.kind,
        `fs backend "${this.name}": directory ${this.root} cannot be created or is not writable: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /**
   * Measures what crashes leave behind, which no quota counts: temp files of writes that never finished
   * and multipart upload directories that no upload in progress references (`activeUploads`: the backend
   * upload ids of the uploads the metadata database still holds, whatever their state). Removes those
   * older than `olderThanMs` (by the newest modification time inside them); temp files this process is
   * writing are never touched. A live write keeps its temp file's mtime fresh, and a new upload's
   * directory is young until its row is committed, so the age is what makes removal safe.
   */
  async sweepLeftovers(opts: { olderThanMs: number; activeUploads: ReadonlySet<string>; now?: number }): Promise<LeftoverReport> {
    const report: LeftoverReport = { tmpFiles: 0, tmpBytes: 0, orphanUploads: 0, orphanUploadBytes: 0, removedFiles: 0, removedUploads: 0, removedBytes: 0 };
    if (this.#identity === undefined) return report;
    // Never sweep a directory that is not ours (a disk mounted elsewhere, or none).
    await this.assertIdentity();
    const cutoff = (opts.now ?? Date.now()) - opts.olderThanMs;
    for (const n of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const p = path.join(this.tmpDir, n);
      if (this.#activeTemps.has(p) || this.#activeTemps.has(p.slice(0, -SIDECAR_SUFFIX.length))) continue;
      const st = await stat(p).catch(() => null);
      if (!st?.isFile()) continue;
      report.tmpFiles++;
      report.tmpBytes += st.size;
      if (st.mtimeMs < cutoff && (await unlink(p).then(() => true, () => false))) {
        report.removedFiles++;
        report.removedBytes += st.size;
      }
    }
    for (const id of await readdir(this.mpuDir).catch(() => [] as string[])) {
      if (opts.activeUploads.has(id)) continue;
      const dir = path.join(this.mpuDir, id);
      const usage = await treeUsage(dir);
      if (!usage) continue;
      report.orphanUploads++;
      report.orphanUploadBytes += usage.bytes;
      if (usage.newestMtimeMs < cutoff) {
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        report.removedUploads++;
        report.removedBytes += usage.bytes;
      }
    }
    return report;
  }

  async close(): Promise<void> {
    // Nothing pooled: every call opens and closes its own handles.
  }
}
