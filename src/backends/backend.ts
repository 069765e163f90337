import type { Readable } from 'node:stream';

/**
 * What a backend stores next to the bytes of each physical object, so that the metadata database could be
 * rebuilt from the backends alone. Backends store it natively where they can (S3 user metadata and
 * Content-* headers; a sidecar file on fs).
 */
export interface PhysicalMeta {
  /** The logical bucket. */
  bucket: string;
  /** The logical key (any UTF-8, up to 1024 bytes). */
  key: string;
  /** The generation (version id) this copy belongs to. */
  versionId: string;
  /**
   * The S3 ETag without quotes, when known before the bytes are stored: the MD5 (hex) of a copy's bytes, or
   * `<md5 of the part MD5s>-<parts>` of a multipart object (given at completion). Single PUTs do not know
   * it up front; rebuild recomputes it from the bytes.
   */
  etag?: string;
  /** User metadata (`x-amz-meta-*` names, lower-case, without the prefix), so a rebuild can restore it. */
  userMeta?: Record<string, string>;
  /** Sizes of the parts of a multipart object, in order (their count is the parts count). */
  partSizes?: number[];
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

/** An inclusive byte range, already validated against the object size. */
export interface ByteRange {
  start: number;
  end: number;
}

/** An object another backend may copy server-side (see {@link Backend.copySource}). */
export interface CopySource {
  /** The provider endpoint and the account's access key: a server-side copy needs both to match. */
  endpoint: string;
  accessKeyId: string;
  bucket: string;
  /** The provider key (prefix included). */
  key: string;
}

/** One entry of {@link Backend.list}. */
export interface BackendListEntry {
  key: string;
  size: number;
  /** Last modification, ms since the epoch, when the backend reports it (fsck's grace period). */
  modifiedMs?: number;
}

/** Classified backend failure; `mapError` in each backend produces it. */
export type BackendErrorKind =
  /** The physical key does not exist. */
  | 'NotFound'
  /** Credentials rejected by the provider. */
  | 'AccessDenied'
  /** The provider refused for lack of space or quota. */
  | 'Full'
  /** Network failure, timeout, 5xx, throttling: worth trying elsewhere or later. */
  | 'Unavailable'
  /** The write was aborted by the caller (client disconnect or body verification failure). */
  | 'Aborted'
  /** Anything else. */
  | 'Other';

export class BackendError extends Error {
  readonly kind: BackendErrorKind;
  readonly backend: string;
  constructor(backend: string, kind: BackendErrorKind, message: string, opts?: { cause?: unknown }) {
    super(`${backend}: ${message}`, opts);
    this.name = 'BackendError';
    this.kind = kind;
    this.backend = backend;
  }
}

/**
 * A place that stores bytes under physical keys. Metadata lives in the database; a backend only stores
 * bytes plus {@link PhysicalMeta}. Physical keys are relative: each backend applies its own configured prefix.
 * Every method streams; none buffers a whole object.
 */
export interface Backend {
  /** Name from the configuration (`backends[].name`). */
  readonly name: string;
  /** `s3` or `fs`. */
  readonly type: 's3' | 'fs';
  /**
   * Writes exactly `size` bytes from `body` under `key`. Resolves only once the bytes are durable. If `body`
   * errors or `signal` aborts, rejects and leaves nothing under `key` (fs) or no completed object (s3).
   * Never reads more than `size` bytes; a short body is an error.
   */
  put(key: string, body: Readable, size: number, meta: PhysicalMeta, signal?: AbortSignal): Promise<void>;
  /** Streams the object (or one range of it). Destroying the returned stream stops the backend read. */
  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  /** Size of the object, or null when absent. */
  head(key: string): Promise<{ size: number; meta?: PhysicalMeta } | null>;
  /** Deletes the object; deleting an absent key succeeds. */
  delete(key: string): Promise<void>;
  /** Server-side copy inside this backend (no bytes through the orchestrator). */
  copy(srcKey: string, dstKey: string, meta: PhysicalMeta): Promise<void>;
  /**
   * Where another backend of the same provider account could copy `key` from server-side (S3 backends);
   * undefined when this backend cannot be a copy source.
   */
  copySource?(key: string): CopySource | undefined;
  /**
   * Server-side copy from another backend of the same provider account and endpoint into `dstKey`; false
   * (nothing done) when `src` is not reachable that way — then the bytes must be streamed.
   */
  copyFrom?(src: CopySource, dstKey: string, meta: PhysicalMeta, size: number): Promise<boolean>;
  /** Lists physical keys under a prefix, in key order, after `startAfter`. */
  list(prefix: string, opts?: { startAfter?: string; limit?: number }): Promise<{ entries: BackendListEntry[]; truncated: boolean }>;
  /** Verifies at start-up that the backend is reachable and writable (bucket exists, directory writable). */
  check(): Promise<void>;

  // Native multipart: parts go straight to the backend; completing assembles them there, so no byte of
  // the object passes through the orchestrator again and completion time does not grow with object size.

  /** Starts a native multipart upload for `key`; returns the backend's upload id. */
  createMultipart(key: string, meta: PhysicalMeta): Promise<string>;
  /**
   * Stores part `partNumber` (1–10000) of exactly `size` bytes. Uploading the same number again replaces it.
   * Returns the backend's ETag for the part (needed to complete), without quotes.
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Readable, size: number, signal?: AbortSignal): Promise<string>;
  /** Server-side part copy from another physical key of this backend (inclusive byte range). Returns the part ETag. */
  uploadPartCopy(key: string, uploadId: string, partNumber: number, srcKey: string, range: ByteRange): Promise<string>;
  /**
   * Assembles the listed parts (ascending, with the ETags uploadPart returned) into the object `key`.
   * `meta`, when given, is the object's final {@link PhysicalMeta} (with its multipart ETag and part
   * sizes) and replaces what createMultipart recorded.
   */
  completeMultipart(key: string, uploadId: string, parts: readonly { partNumber: number; etag: string }[], meta?: PhysicalMeta): Promise<void>;
  /** Discards an upload and its parts; aborting an unknown or finished upload succeeds. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Releases sockets and handles. */
  close(): Promise<void>;
}
