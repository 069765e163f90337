import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { S3BackendConfig } from '../config/types.js';
import { createLogger, type Logger } from '../log.js';
import {
  BackendError,
  type Backend,
  type BackendListEntry,
  type ByteRange,
  type CopySource,
  type PhysicalMeta,
} from './backend.js';
import {
  decodeMeta,
  encodeMeta,
  hasSidecar,
  mapS3Error,
  MAX_METADATA_BYTES,
  needsSidecar,
  parseSidecar,
  SIDECAR_SUFFIX,
  type EncodedMeta,
} from './s3-meta.js';
import { callerCaused, ExactLength } from './stream-util.js';
import { DeadlineError, withDeadlines, type RequestHandlerLike } from './deadline.js';

export { mapS3Error } from './s3-meta.js';

/** Tunables of the HTTP client; the defaults suit both cloud providers and loopback test servers. */
export interface S3BackendOptions {
  /** Time allowed to establish a TCP/TLS connection, ms, when the config has no `connect_timeout` (default 5000). */
  connectionTimeoutMs?: number;
  /** Time allowed for the answer to start, ms, when the config has no `first_byte_timeout` (default 15000; see deadline.ts). */
  firstByteTimeoutMs?: number;
  /**
   * A socket that makes no progress for this long is destroyed, ms (default 60000). This is an idle timeout,
   * not a total-transfer timeout: a multi-gigabyte transfer that keeps moving is never cut off.
   */
  idleTimeoutMs?: number;
  /** Concurrent sockets per backend (default 128). */
  maxSockets?: number;
  /** Attempts for requests without a streaming body (default 3). Streaming puts are never retried. */
  maxAttempts?: number;
  /** Where the backend reports provider quirks it works around (default: a stderr JSON logger). */
  logger?: Logger;
}

const DEFAULT_LIST_LIMIT = 1000;
/** Defaults of `connect_timeout` and `first_byte_timeout` (config/breaker.ts has the same). */
export const S3_TIMEOUT_DEFAULTS = { connectMs: 5_000, firstByteMs: 15_000 } as const;

/** SDK logger that stays silent: failures reach callers as BackendErrors, and the SDK's warnings are noise. */
const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Percent-encodes each key segment for x-amz-copy-source, keeping the '/' separators. */
/** S3's limit on one CopyObject. */
const MAX_COPY_OBJECT_BYTES = 5 * 1024 ** 3;

function encodeCopySource(bucket: string, key: string): string {
  return `${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * True when the provider says it does not implement the operation at all (s3rver answers UploadPartCopy
 * with 501 NotImplemented and AbortMultipartUpload with 405 MethodNotAllowed), as opposed to a failure of
 * this particular request.
 */
function unsupportedOperation(err: unknown): boolean {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: string;
    Code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  return name === 'NotImplemented' || name === 'MethodNotAllowed' || status === 501 || status === 405;
}

/** The ETag a provider returned, without quotes. */
function bareEtag(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/"/g, '');
}

/**
 * Runs `start` once the HTTP request that `counted` is piped into has a connected socket (TLS: handshake
 * done), or at once when it is piped into anything else. The SDK's node handler pipes the request body
 * into the ClientRequest as soon as it creates it, before the connection exists.
 */
function onceConnected(counted: Readable, start: () => void): void {
  let started = false;
  const go = (): void => {
    if (started) return;
    started = true;
    start();
  };
  let piped = false;
  const pipe = counted.pipe.bind(counted);
  counted.pipe = <T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T => {
    piped = true;
    const req = dest as unknown as { socket?: Socket | null; once?: (ev: 'socket', cb: (s: Socket) => void) => void };
    const ready = (socket: Socket): void => {
      if (!socket.connecting) return go();
      socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', go);
    };
    if (req.socket) ready(req.socket);
    else if (typeof req.once === 'function' && 'socket' in req) req.once('socket', ready);
    else go();
    return pipe(dest, opts);
  };
  // Consumed some other way than pipe(): start at once.
  counted.once('resume', () => {
    if (!piped) go();
  });
}

/** True when a ranged GET's answer holds exactly the bytes asked for. */
function servesRange(contentRange: string | undefined, length: number | undefined, range: ByteRange): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? '');
  if (!m) return false;
  return Number(m[1]) === range.start && Number(m[2]) === range.end && (length === undefined || length === range.end - range.start + 1);
}

/** Builds the middleware that sets raw headers the typed command input cannot carry (Expires as a string). */
function rawHeaders(headers: Record<string, string>) {
  return (next: (args: { request: unknown }) => Promise<unknown>) =>
    async (args: { request: unknown }) => {
      const req = args.request as { headers?: Record<string, string> };
      if (req.headers) Object.assign(req.headers, headers);
      return next(args);
    };
}

/**
 * A backend on an S3-compatible provider. Physical keys are stored under the configured prefix; the
 * {@link PhysicalMeta} travels as Content-* headers plus `x-amz-meta-s3o-*` user metadata.
 *
 * Multipart uploads are the provider's own. Two operations some providers lack are detected on first use
 * (501 NotImplemented / 405 MethodNotAllowed) and remembered for the life of the instance: UploadPartCopy then
 * streams the source range through this process into UploadPart (O(1) memory), and AbortMultipartUpload
 * becomes a logged no-op, so the parts of aborted uploads stay on such a provider (stock s3rver) until removed
 * by other means.
 */
export class S3Backend implements Backend {
  readonly type = 's3' as const;
  readonly name: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint: string;
  private readonly client: S3Client;
  private readonly log: Logger;
  /** Set once the provider answered UploadPartCopy with "not implemented": later copies go through us. */
  private partCopyUnsupported = false;
  /** Set once the provider answered AbortMultipartUpload with "not implemented". */
  private abortUnsupported = false;
  private readonly accessKeyId: string;

  constructor(cfg: S3BackendConfig, opts: S3BackendOptions = {}) {
    this.name = cfg.name;
    this.log = (opts.logger ?? createLogger()).child({ component: 'backend', backend: cfg.name });
    this.bucket = cfg.bucket;
    this.prefix = cfg.prefix;
    this.endpoint = cfg.endpoint ?? `https://s3.${cfg.region}.amazonaws.com`;
    this.accessKeyId = cfg.accessKeyId;
    const agentOpts = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: opts.maxSockets ?? 128 };
    const deadlines = {
      connectMs: cfg.connectTimeoutMs ?? opts.connectionTimeoutMs ?? S3_TIMEOUT_DEFAULTS.connectMs,
      firstByteMs: cfg.firstByteTimeoutMs ?? opts.firstByteTimeoutMs ?? S3_TIMEOUT_DEFAULTS.firstByteMs,
    };
    this.client = new S3Client({
      region: cfg.region,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.forcePathStyle,
      credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
      // Otherwise the SDK frames bodies as aws-chunked with CRC trailers, which some providers store verbatim.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: opts.maxAttempts ?? 3,
      logger: quietLogger,
      requestHandler: {
        httpAgent: new HttpAgent(agentOpts),
        httpsAgent: new HttpsAgent(agentOpts),
        connectionTimeout: deadlines.connectMs,
        // In @smithy/node-http-handler 4.x `requestTimeout` is a whole-request timer (warn-only by default);
        // `socketTimeout` is the per-socket inactivity timeout we want.
        socketTimeout: opts.idleTimeoutMs ?? 60_000,
      },
    });
    // The SDK resolves `config.requestHandler` at every send: the wrapper holds each attempt to the
    // connect and first-byte deadlines and makes a silent provider fail once (deadline.ts).
    const config = this.client.config as unknown as { requestHandler: RequestHandlerLike };
    config.requestHandler = withDeadlines(config.requestHandler, deadlines);
  }

  private physical(key: string): string {
    return this.prefix + key;
  }

  private fail(err: unknown, what: string): BackendError {
    if (err instanceof DeadlineError) return new BackendError(this.name, 'Unavailable', `${what}: ${err.message}`, { cause: err });
    return mapS3Error(this.name, err, what);
  }

  /**
   * Input fields and raw headers shared by put, copy and createMultipart. With `sidecar` (needed for user
   * metadata, part sizes or anything over 2 KB), the full meta goes to the sidecar object instead.
   */
  private metaInput(meta: PhysicalMeta, sidecar = needsSidecar(meta)): EncodedMeta & { sidecar: boolean } {
    const encoded = encodeMeta(meta, sidecar);
    if (encoded.metadataBytes > MAX_METADATA_BYTES) {
      throw new BackendError(
        this.name,
        'Other',
        `object metadata needs ${encoded.metadataBytes} bytes of user metadata; S3 allows ${MAX_METADATA_BYTES}`,
      );
    }
    return { ...encoded, sidecar };
  }

  /**
   * Stores `<key>.meta.json` with the full meta. Written BEFORE the object it describes, so an object
   * marked as having a sidecar has it; deleting the object deletes it too.
   */
  private async putSidecar(key: string, meta: PhysicalMeta): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.physical(key + SIDECAR_SUFFIX), Body: JSON.stringify(meta), ContentType: 'application/json' }),
      );
    } catch (err) {
      throw this.fail(err, `put ${key}${SIDECAR_SUFFIX}`);
    }
  }

  async put(key: string, body: Readable, size: number, meta: PhysicalMeta, signal?: AbortSignal): Promise<void> {
    const { native, metadata, headers, sidecar } = this.metaInput(meta);
    if (sidecar) await this.putSidecar(key, meta);
    await this.sendBody(body, size, signal, `put ${key}`, (counted, abortSignal) => {
      const cmd = new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.physical(key),
        Body: counted,
        ContentLength: size,
        ...native,
        Metadata: metadata,
      });
      cmd.middlewareStack.add(rawHeaders(headers) as never, { step: 'build', name: 's3oRawHeaders' });
      return this.client.send(cmd, { abortSignal });
    });
  }

  /**
   * Sends a command whose request body is `body`, counted to exactly `size` bytes. A failing or short body,
   * or `signal`, aborts the HTTP request and surfaces as `Aborted`; provider failures go through mapS3Error.
   */
  private async sendBody<T>(
    body: Readable,
    size: number,
    signal: AbortSignal | undefined,
    what: string,
    send: (counted: ExactLength, abortSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let bodyError: unknown;
    const onBodyError = (err: unknown) => {
      bodyError ??= err;
    };
    body.on('error', onBodyError);
    const counted = new ExactLength(size);
    // The SDK pipes the body with .pipe(), which does not forward errors: a failing or short body must abort
    // the HTTP request explicitly, or the provider would wait for the missing bytes. Nothing is read from
    // `body` before the provider's connection is up: a refused connection leaves it untouched, so the write
    // can still move to the next backend (core's replay window holds only the first 256 KiB).
    onceConnected(counted, () => {
      pipeline(body, counted).catch((err: unknown) => ac.abort(err));
    });
    try {
      return await send(counted, ac.signal);
    } catch (err) {
      if (!counted.destroyed) counted.destroy();
      if (callerCaused(err, bodyError, signal) || ac.signal.aborted) {
        const cause = bodyError ?? (signal?.aborted ? signal.reason : (ac.signal.reason ?? err));
        const message = cause instanceof Error ? cause.message : String(cause);
        throw new BackendError(this.name, 'Aborted', `${what}: ${message}`, { cause });
      }
      throw this.fail(err, what);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.off('error', onBodyError);
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.physical(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
      // The body is the socket's IncomingMessage itself: destroying it tears down the connection read.
      if (!(res.Body instanceof Readable)) throw new Error('response body is not a Node stream');
      if (range && !servesRange(res.ContentRange, res.ContentLength, range)) {
        // A provider that ignored the Range would hand back other bytes than asked (a read resuming on this
        // copy at an offset would splice the object's start into the middle).
        res.Body.destroy();
        throw new BackendError(this.name, 'Unavailable', `get ${key}: the provider did not serve bytes ${range.start}-${range.end} (Content-Range ${res.ContentRange ?? 'missing'})`);
      }
      return res.Body;
    } catch (err) {
      throw this.fail(err, `get ${key}`);
    }
  }

  async head(key: string): Promise<{ size: number; meta?: PhysicalMeta } | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.physical(key) }));
      const meta = (hasSidecar(res) ? await this.readSidecar(key) : undefined) ?? decodeMeta(res);
      return meta ? { size: res.ContentLength ?? 0, meta } : { size: res.ContentLength ?? 0 };
    } catch (err) {
      const e = this.fail(err, `head ${key}`);
      if (e.kind === 'NotFound') return null;
      throw e;
    }
  }

  /** The sidecar's meta, or undefined when it is missing or unreadable (the object's own headers then serve). */
  private async readSidecar(key: string): Promise<PhysicalMeta | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.physical(key + SIDECAR_SUFFIX) }));
      return res.Body ? parseSidecar(await res.Body.transformToString('utf8')) : undefined;
    } catch (err) {
      const e = this.fail(err, `get ${key}${SIDECAR_SUFFIX}`);
      if (e.kind === 'NotFound') return undefined;
      throw e;
    }
  }

  /** Deletes the object and its sidecar (if any; a missing one costs one request answered 404 or 204). */
  async delete(key: string): Promise<void> {
    await Promise.all(
      [key, key + SIDECAR_SUFFIX].map(async (k) => {
        try {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.physical(k) }));
        } catch (err) {
          const e = this.fail(err, `delete ${k}`);
          if (e.kind !== 'NotFound') throw e;
        }
      }),
    );
  }

  async copy(srcKey: string, dstKey: string, meta: PhysicalMeta): Promise<void> {
    const { native, metadata, headers, sidecar } = this.metaInput(meta);
    if (sidecar) await this.putSidecar(dstKey, meta);
    try {
      const cmd = new CopyObjectCommand({
        Bucket: this.bucket,
        Key: this.physical(dstKey),
        CopySource: encodeCopySource(this.bucket, this.physical(srcKey)),
        MetadataDirective: 'REPLACE',
        ...native,
        Metadata: metadata,
      });
      cmd.middlewareStack.add(rawHeaders(headers) as never, { step: 'build', name: 's3oRawHeaders' });
      await this.client.send(cmd);
    } catch (err) {
      throw this.fail(err, `copy ${srcKey} -> ${dstKey}`);
    }
  }

  copySource(key: string): CopySource {
    return { endpoint: this.endpoint, accessKeyId: this.accessKeyId, bucket: this.bucket, key: this.physical(key) };
  }

  /**
   * CopyObject from another bucket of the same account and endpoint (repair and moves between two backends
   * that are buckets of one provider account): no byte passes through the orchestrator. Objects over 5 GiB
   * (CopyObject's limit) and sources elsewhere are refused with false.
   */
  async copyFrom(src: CopySource, dstKey: string, meta: PhysicalMeta, size: number): Promise<boolean> {
    if (src.endpoint !== this.endpoint || src.accessKeyId !== this.accessKeyId || size > MAX_COPY_OBJECT_BYTES) return false;
    const { native, metadata, headers, sidecar } = this.metaInput(meta);
    if (sidecar) await this.putSidecar(dstKey, meta);
    try {
      const cmd = new CopyObjectCommand({
        Bucket: this.bucket,
        Key: this.physical(dstKey),
        CopySource: encodeCopySource(src.bucket, src.key),
        MetadataDirective: 'REPLACE',
        ...native,
        Metadata: metadata,
      });
      cmd.middlewareStack.add(rawHeaders(headers) as never, { step: 'build', name: 's3oRawHeaders' });
      await this.client.send(cmd);
      return true;
    } catch (err) {
      throw this.fail(err, `copy ${src.bucket}/${src.key} -> ${dstKey}`);
    }
  }

  async list(
    prefix: string,
    opts?: { startAfter?: string; limit?: number },
  ): Promise<{ entries: BackendListEntry[]; truncated: boolean }> {
    try {
      let startAfter = opts?.startAfter !== undefined ? this.physical(opts.startAfter) : undefined;
      // Sidecars are left out; a page made only of sidecars moves on, so a truncated answer is never empty.
      for (;;) {
        const res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.physical(prefix),
            MaxKeys: Math.min(opts?.limit ?? DEFAULT_LIST_LIMIT, DEFAULT_LIST_LIMIT),
            ...(startAfter !== undefined ? { StartAfter: startAfter } : {}),
          }),
        );
        const contents = res.Contents ?? [];
        const entries: BackendListEntry[] = contents
          .filter((c) => c.Key?.startsWith(this.prefix) && !c.Key.endsWith(SIDECAR_SUFFIX))
          .map((c) => ({
            key: (c.Key ?? '').slice(this.prefix.length),
            size: c.Size ?? 0,
            ...(c.LastModified ? { modifiedMs: c.LastModified.getTime() } : {}),
          }));
        const truncated = res.IsTruncated === true;
        if (entries.length > 0 || !truncated || contents.length === 0) return { entries, truncated: truncated && contents.length > 0 };
        startAfter = contents.at(-1)!.Key;
      }
    } catch (err) {
      throw this.fail(err, `list ${prefix}`);
    }
  }

  async createMultipart(key: string, meta: PhysicalMeta): Promise<string> {
    // The final meta (multipart ETag, part sizes) is known at completion: it goes to the sidecar then.
    const { native, metadata, headers } = this.metaInput(meta, true);
    let uploadId: string | undefined;
    try {
      const cmd = new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.physical(key),
        ...native,
        Metadata: metadata,
      });
      cmd.middlewareStack.add(rawHeaders(headers) as never, { step: 'build', name: 's3oRawHeaders' });
      uploadId = (await this.client.send(cmd)).UploadId;
    } catch (err) {
      throw this.fail(err, `create multipart ${key}`);
    }
    if (!uploadId) throw new BackendError(this.name, 'Other', `create multipart ${key}: the provider returned no upload id`);
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
    const res = await this.sendBody(body, size, signal, what, (counted, abortSignal) =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.physical(key),
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: counted,
          ContentLength: size,
        }),
        { abortSignal },
      ),
    );
    const etag = bareEtag(res.ETag);
    if (!etag) throw new BackendError(this.name, 'Other', `${what}: the provider returned no ETag`);
    return etag;
  }

  async uploadPartCopy(key: string, uploadId: string, partNumber: number, srcKey: string, range: ByteRange): Promise<string> {
    const what = `upload part copy ${srcKey} -> part ${partNumber} of ${key}`;
    if (this.partCopyUnsupported) return this.copyPartThrough(key, uploadId, partNumber, srcKey, range, what);
    let etag: string | undefined;
    try {
      const res = await this.client.send(
        new UploadPartCopyCommand({
          Bucket: this.bucket,
          Key: this.physical(key),
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: encodeCopySource(this.bucket, this.physical(srcKey)),
          CopySourceRange: `bytes=${range.start}-${range.end}`,
        }),
      );
      etag = bareEtag(res.CopyPartResult?.ETag);
    } catch (err) {
      if (!unsupportedOperation(err)) throw this.fail(err, what);
      this.partCopyUnsupported = true;
      this.log.info('provider lacks UploadPartCopy; part copies now stream through the orchestrator', {
        error: err instanceof Error ? err.message : String(err),
      });
      return this.copyPartThrough(key, uploadId, partNumber, srcKey, range, what);
    }
    if (!etag) throw new BackendError(this.name, 'Other', `${what}: the provider returned no ETag`);
    return etag;
  }

  /** UploadPartCopy for providers without it: a ranged GET streamed into UploadPart (O(1) memory). */
  private async copyPartThrough(
    key: string,
    uploadId: string,
    partNumber: number,
    srcKey: string,
    range: ByteRange,
    what: string,
  ): Promise<string> {
    const src = await this.get(srcKey, range);
    let srcError: unknown;
    src.once('error', (err: unknown) => {
      srcError = err;
    });
    try {
      return await this.uploadPart(key, uploadId, partNumber, src, range.end - range.start + 1);
    } catch (err) {
      // uploadPart blames a failing body on the caller (Aborted); here the body is the provider's own read.
      if (srcError !== undefined) throw this.fail(srcError, what);
      throw err;
    } finally {
      if (!src.destroyed) src.destroy();
    }
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
    meta?: PhysicalMeta,
  ): Promise<void> {
    if (meta) await this.putSidecar(key, meta);
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.physical(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${bareEtag(p.etag)}"` })) },
        }),
      );
    } catch (err) {
      const e = this.fail(err, `complete multipart ${key}`);
      // Ceph RGW 16 answers the completion of an unknown (e.g. aborted) upload with 500 InternalError ("This
      // multipart completion is already in progress") instead of NoSuchUpload; ask whether the upload exists.
      if (e.kind === 'Unavailable' && (await this.uploadGone(key, uploadId))) {
        throw new BackendError(this.name, 'NotFound', `complete multipart ${key}: no such upload (${e.message})`, { cause: err });
      }
      throw e;
    }
  }

  /** True when the provider says `uploadId` does not exist (ListParts answers 404). */
  private async uploadGone(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: this.physical(key), UploadId: uploadId, MaxParts: 1 }));
      return false;
    } catch (err) {
      return this.fail(err, 'list parts').kind === 'NotFound';
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    if (this.abortUnsupported) return;
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.physical(key), UploadId: uploadId }),
      );
    } catch (err) {
      if (unsupportedOperation(err)) {
        // Nothing else can discard the parts; on such a provider (s3rver) they stay until removed by hand.
        this.abortUnsupported = true;
        this.log.debug('provider lacks AbortMultipartUpload; parts of aborted uploads stay on the provider', {
          error: err instanceof Error ? err.message : String(err),
        });
        return;
      }
      const e = this.fail(err, `abort multipart ${key}`);
      if (e.kind !== 'NotFound') throw e;
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const e = this.fail(err, 'check');
      const why = e.kind === 'NotFound' ? 'the bucket does not exist' : e.message;
      throw new BackendError(
        this.name,
        e.kind === 'NotFound' ? 'Unavailable' : e.kind,
        `s3 backend "${this.name}": bucket "${this.bucket}" at ${this.endpoint} is not usable: ${why}`,
        { cause: err },
      );
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
