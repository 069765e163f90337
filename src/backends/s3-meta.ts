import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { BackendError, type BackendErrorKind, type PhysicalMeta } from './backend.js';
import { isAbortError } from './stream-util.js';

/**
 * How {@link PhysicalMeta} is carried on S3: the Content-* fields as native headers when their value can
 * travel in an HTTP header unchanged, otherwise base64url in user metadata; the logical identity always in
 * `x-amz-meta-s3o-*` (the key base64url-encoded, since keys are any UTF-8 and S3 metadata is ASCII).
 */
export interface EncodedMeta {
  /** Typed PutObject/CopyObject input fields. */
  native: {
    ContentType?: string;
    ContentEncoding?: string;
    ContentDisposition?: string;
    ContentLanguage?: string;
    CacheControl?: string;
  };
  /** User metadata, names without the `x-amz-meta-` prefix. */
  metadata: Record<string, string>;
  /** Raw request headers the typed input cannot express (Expires as the client's exact string). */
  headers: Record<string, string>;
  /** Size of the user metadata as S3 counts it (UTF-8 bytes of names and values). */
  metadataBytes: number;
}

type NativeField = 'contentType' | 'contentEncoding' | 'contentDisposition' | 'contentLanguage' | 'cacheControl';

const NATIVE: readonly [NativeField, keyof EncodedMeta['native'], string][] = [
  ['contentType', 'ContentType', 's3o-ct'],
  ['contentEncoding', 'ContentEncoding', 's3o-ce'],
  ['contentDisposition', 'ContentDisposition', 's3o-cd'],
  ['contentLanguage', 'ContentLanguage', 's3o-cl'],
  ['cacheControl', 'CacheControl', 's3o-cc'],
];
const EXPIRES_META = 's3o-ex';
/** User metadata as base64url JSON (names and values are any UTF-8; S3's own metadata is ASCII). */
const USER_META = 's3o-um';
/** Marks an object whose full {@link PhysicalMeta} is in its sidecar object (see {@link SIDECAR_SUFFIX}). */
const SIDECAR_META = 's3o-sc';
/** S3's limit on user metadata (names and values, UTF-8 bytes). */
export const MAX_METADATA_BYTES = 2048;

/**
 * Suffix of the sidecar object `<physical key>.meta.json` that holds a copy's full {@link PhysicalMeta} as
 * JSON when headers cannot carry it: part sizes (known only at completion for multipart objects) always go
 * there, and so does anything over S3's 2 KB metadata limit (a long key with much user metadata).
 * Physical keys never end with it (version ids are hex), so listings can leave sidecars out.
 */
export const SIDECAR_SUFFIX = '.meta.json';

/** True when `meta` needs a sidecar object on S3 (see {@link SIDECAR_SUFFIX}). */
export function needsSidecar(meta: PhysicalMeta): boolean {
  if (meta.partSizes !== undefined) return true;
  return encodeMeta(meta).metadataBytes > MAX_METADATA_BYTES;
}

/** The object's own metadata says that a sidecar holds its full meta (decode it from there). */
export function hasSidecar(res: HeadObjectCommandOutput): boolean {
  return res.Metadata?.[SIDECAR_META] === '1';
}

/** Parses a sidecar's JSON; undefined when it is not a PhysicalMeta. */
export function parseSidecar(text: string): PhysicalMeta | undefined {
  try {
    const m = JSON.parse(text) as PhysicalMeta;
    return typeof m.bucket === 'string' && typeof m.key === 'string' && typeof m.versionId === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Printable ASCII without surrounding whitespace survives an HTTP header round trip byte for byte. */
function headerSafe(v: string): boolean {
  return /^[\x20-\x7e]*$/.test(v) && v.trim() === v;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url').toString('utf8');

/**
 * Encodes meta for PutObject / CopyObject (MetadataDirective REPLACE) / CreateMultipartUpload. Part sizes
 * never travel in headers; with `sidecar`, the object carries its identity, the header-safe Content-*
 * fields and the sidecar marker, and everything else lives in the sidecar.
 */
export function encodeMeta(meta: PhysicalMeta, sidecar = false): EncodedMeta {
  const native: EncodedMeta['native'] = {};
  const metadata: Record<string, string> = {
    's3o-bucket': meta.bucket,
    's3o-key': b64(meta.key),
    's3o-version': meta.versionId,
  };
  if (meta.etag !== undefined) metadata['s3o-etag'] = meta.etag;
  if (sidecar) metadata[SIDECAR_META] = '1';
  else if (meta.userMeta !== undefined && Object.keys(meta.userMeta).length > 0) metadata[USER_META] = b64(JSON.stringify(meta.userMeta));
  for (const [field, input, metaName] of NATIVE) {
    const v = meta[field];
    if (v === undefined) continue;
    if (headerSafe(v)) native[input] = v;
    else if (!sidecar) metadata[metaName] = b64(v);
  }
  const headers: Record<string, string> = {};
  if (meta.expires !== undefined) {
    if (headerSafe(meta.expires)) headers.expires = meta.expires;
    else if (!sidecar) metadata[EXPIRES_META] = b64(meta.expires);
  }
  let metadataBytes = 0;
  for (const [k, v] of Object.entries(metadata)) metadataBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  return { native, metadata, headers, metadataBytes };
}

/**
 * Decodes what {@link encodeMeta} stored, or undefined for an object not written by the orchestrator.
 * A provider's default Content-Type (e.g. `binary/octet-stream`) comes back as if it had been set.
 */
export function decodeMeta(res: HeadObjectCommandOutput): PhysicalMeta | undefined {
  const m = res.Metadata ?? {};
  const bucket = m['s3o-bucket'];
  const key = m['s3o-key'];
  const versionId = m['s3o-version'];
  if (bucket === undefined || key === undefined || versionId === undefined) return undefined;
  const meta: PhysicalMeta = { bucket, key: unb64(key), versionId };
  if (m['s3o-etag'] !== undefined) meta.etag = m['s3o-etag'];
  if (m[USER_META] !== undefined) {
    try {
      meta.userMeta = JSON.parse(unb64(m[USER_META])) as Record<string, string>;
    } catch {
      // Not ours to fail on: the identity still stands, the user metadata is lost for a rebuild.
    }
  }
  for (const [field, input, metaName] of NATIVE) {
    const encoded = m[metaName];
    const v = encoded !== undefined ? unb64(encoded) : res[input];
    if (v !== undefined) meta[field] = v;
  }
  const expires = m[EXPIRES_META] !== undefined ? unb64(m[EXPIRES_META]) : res.ExpiresString;
  if (expires !== undefined) meta.expires = expires;
  return meta;
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchVersion']);
const ACCESS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'AccountProblem',
  'AllAccessDisabled',
  'Forbidden',
  'Unauthorized',
]);
const FULL = new Set([
  'QuotaExceeded',
  'EntityTooLarge',
  'StorageQuotaExceeded',
  'InsufficientStorage',
  'XMinioStorageFull',
  'XMinioAdminBucketQuotaExceeded',
  'NotEnoughSpace',
  'ServiceQuotaExceeded',
  'storage_cap_exceeded',
]);
const FULL_MESSAGE = /storage cap|quota (has been )?exceeded|insufficient storage|storage (is )?full|no space left/i;
const UNAVAILABLE = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestTimeTooSkewed',
  'TimeoutError',
  'NoSuchBucket',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** The one place SDK and network errors become {@link BackendError} kinds. */
export function mapS3Error(backend: string, err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: string;
    code?: string;
    Code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const message = e.message ?? String(err);
  let kind: BackendErrorKind;
  if (isAbortError(err)) kind = 'Aborted';
  else if (name === 'NoSuchBucket') kind = 'Unavailable';
  else if (NOT_FOUND.has(name) || status === 404) kind = 'NotFound';
  else if (FULL.has(name) || status === 507 || FULL_MESSAGE.test(message)) kind = 'Full';
  else if (ACCESS.has(name) || status === 401 || status === 403) kind = 'AccessDenied';
  else if (
    UNAVAILABLE.has(name) ||
    NETWORK_CODES.has(e.code ?? '') ||
    status === 429 ||
    (status !== undefined && status >= 500)
  ) {
    kind = 'Unavailable';
  } else kind = 'Other';
  const detail = status !== undefined ? `${name || 'error'} (HTTP ${status}): ${message}` : `${name}: ${message}`;
  return new BackendError(backend, kind, `${what}: ${detail}`, { cause: err });
}
