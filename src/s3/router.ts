/**
 * Turns a request head into one typed S3 operation ({@link S3Op}). Pure and synchronous: no I/O, no
 * authentication. Anything not implemented (a subresource, an unknown method) is NotImplemented here,
 * so it can never fall through to an object operation.
 */
import { S3Error, invalidArgument } from './errors.js';
import type { RequestHead } from './auth/types.js';
import { RESPONSE_OVERRIDES } from './headers.js';
import { decodePath, encodingOf, isValidBucketName, maxKeysOf, maxOf, parseQuery, partNumberOf } from './route-params.js';

export { decodePath, isValidBucketName, MAX_LIST_KEYS, MAX_PARTS, parseQuery } from './route-params.js';

/** Largest key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** Parameters common to both listing versions. */
interface ListCommon {
  bucket: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  /** `encoding-type=url`: keys and prefixes in the answer are URL-encoded. */
  encodeUrl: boolean;
}

/** One S3 operation with its parsed parameters; `op` is also the metric label. */
export type S3Op =
  | { op: 'ListBuckets' }
  | { op: 'HeadBucket'; bucket: string }
  | { op: 'GetBucketLocation'; bucket: string }
  | { op: 'GetBucketVersioning'; bucket: string }
  | { op: 'CreateBucket'; bucket: string }
  | { op: 'DeleteBucket'; bucket: string }
  | ({ op: 'ListObjectsV2'; startAfter?: string; continuationToken?: string; fetchOwner: boolean } & ListCommon)
  | ({ op: 'ListObjects'; marker?: string } & ListCommon)
  | { op: 'PutObject'; bucket: string; key: string }
  | { op: 'GetObject' | 'HeadObject'; bucket: string; key: string; overrides: Record<string, string>; partNumber?: number }
  | { op: 'DeleteObject'; bucket: string; key: string }
  | { op: 'DeleteObjects'; bucket: string }
  | { op: 'CopyObject'; bucket: string; key: string; srcBucket: string; srcKey: string }
  | { op: 'CreateMultipartUpload'; bucket: string; key: string }
  | { op: 'UploadPart'; bucket: string; key: string; uploadId: string; partNumber: number }
  | { op: 'UploadPartCopy'; bucket: string; key: string; uploadId: string; partNumber: number; srcBucket: string; srcKey: string }
  | { op: 'CompleteMultipartUpload'; bucket: string; key: string; uploadId: string }
  | { op: 'AbortMultipartUpload'; bucket: string; key: string; uploadId: string }
  | { op: 'ListParts'; bucket: string; key: string; uploadId: string; maxParts: number; partNumberMarker?: number }
  | {
      op: 'ListMultipartUploads';
      bucket: string;
      prefix: string;
      delimiter?: string;
      keyMarker?: string;
      uploadIdMarker?: string;
      maxUploads: number;
      encodeUrl: boolean;
    }
  | { op: 'GetObjectTagging' | 'PutObjectTagging' | 'DeleteObjectTagging'; bucket: string; key: string }
  | { op: 'GetBucketCors' | 'PutBucketCors' | 'DeleteBucketCors'; bucket: string }
  /** OPTIONS: answered from the bucket's CORS rules without authentication. */
  | { op: 'CorsPreflight'; bucket: string; key?: string };

/** The operation names, for metric labels. */
export type S3OpName = S3Op['op'];

/** Router settings from S3ServerConfig. */
export interface RouterConfig {
  virtualHostDomains: readonly string[];
}

/**
 * Query parameters that select a subresource or an operation we do not implement. A request carrying
 * any of them (unless the chosen operation accepts it) is NotImplemented.
 */
const SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'delete', 'encryption', 'intelligent-tiering',
  'inventory', 'legal-hold', 'lifecycle', 'list-type', 'location', 'logging', 'metadataTable',
  'metadataConfiguration', 'metrics', 'notification', 'object-lock', 'ownershipControls', 'partNumber',
  'policy', 'policyStatus', 'publicAccessBlock', 'renameObject', 'replication', 'requestPayment',
  'restore', 'retention', 'select', 'select-type', 'session', 'tagging', 'torrent', 'uploadId', 'uploads',
  'versionId', 'versioning', 'versions', 'website', 'abac', 'mtime', 'accessPoint',
]);

function checkBucket(name: string): string {
  if (!isValidBucketName(name)) throw new S3Error('InvalidBucketName', undefined, { BucketName: name });
  return name;
}

function checkKey(key: string): string {
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', undefined, { Size: String(Buffer.byteLength(key, 'utf8')), MaxSizeAllowed: String(MAX_KEY_BYTES) });
  }
  return key;
}

/** The host without port, lower-cased (handles `[v6]:port`). */
function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const c = h.lastIndexOf(':');
  return c < 0 ? h : h.slice(0, c);
}

/** Splits the request into bucket (decoded) and raw key part, path-style or virtual-hosted. */
function locate(head: RequestHead, cfg: RouterConfig): { bucket?: string; rawKey: string } {
  const host = hostName(head.headers['host']);
  for (const domain of cfg.virtualHostDomains) {
    const d = domain.toLowerCase();
    if (host.length > d.length + 1 && host.endsWith(`.${d}`)) {
      return { bucket: host.slice(0, host.length - d.length - 1), rawKey: head.rawPath.replace(/^\//, '') };
    }
  }
  const path = head.rawPath.startsWith('/') ? head.rawPath.slice(1) : head.rawPath;
  if (path === '') return { rawKey: '' };
  const slash = path.indexOf('/');
  if (slash < 0) return { bucket: decodePath(path), rawKey: '' };
  return { bucket: decodePath(path.slice(0, slash)), rawKey: path.slice(slash + 1) };
}

function notImplemented(what: string): S3Error {
  return new S3Error('NotImplemented', `${what} is not implemented.`);
}

/** Rejects any subresource parameter the chosen operation does not accept. */
function onlyAllowed(q: Map<string, string>, allowed: readonly string[]): void {
  for (const k of q.keys()) {
    if (SUBRESOURCES.has(k) && !allowed.includes(k)) throw notImplemented(`The ${k} subresource`);
  }
}

function listCommon(bucket: string, q: Map<string, string>): ListCommon {
  const common: ListCommon = { bucket, prefix: q.get('prefix') ?? '', maxKeys: maxKeysOf(q), encodeUrl: encodingOf(q) };
  const delimiter = q.get('delimiter');
  if (delimiter !== undefined && delimiter !== '') common.delimiter = delimiter;
  return common;
}

/** versionId is accepted only as "null" (the current object of an unversioned bucket). */
function checkVersionId(q: Map<string, string>): void {
  const v = q.get('versionId');
  if (v !== undefined && v !== 'null') throw notImplemented('Addressing object versions');
}

function overridesOf(q: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const v = q.get(param);
    if (v !== undefined) out[header] = v;
  }
  return out;
}

/** Parses `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, optional `?versionId=`. */
export function parseCopySource(raw: string): { srcBucket: string; srcKey: string } {
  let path = raw;
  const qm = raw.indexOf('?');
  if (qm >= 0) {
    const q = parseQuery(raw.slice(qm + 1));
    path = raw.slice(0, qm);
    const v = q.get('versionId');
    if (v !== undefined && v !== 'null') throw notImplemented('Copying a specific object version');
  }
  const decoded = decodePath(path).replace(/^\//, '');
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw invalidArgument('x-amz-copy-source', raw, 'Invalid copy source object key');
  return { srcBucket: checkBucket(decoded.slice(0, slash)), srcKey: checkKey(decoded.slice(slash + 1)) };
}

/** ListParts parameters. */
function listPartsOf(bucket: string, key: string, uploadId: string, q: Map<string, string>): S3Op {
  const op: S3Op = { op: 'ListParts', bucket, key, uploadId, maxParts: maxOf(q, 'max-parts') };
  const marker = q.get('part-number-marker');
  if (marker !== undefined && marker !== '') {
    const n = Number(marker);
    if (!/^\d+$/.test(marker) || !Number.isSafeInteger(n)) {
      throw invalidArgument('part-number-marker', marker, 'Provided part-number-marker not an integer or within integer range');
    }
    op.partNumberMarker = n;
  }
  return op;
}

/** ListMultipartUploads parameters. */
function listUploadsOf(bucket: string, q: Map<string, string>): S3Op {
  const op: S3Op = { op: 'ListMultipartUploads', bucket, prefix: q.get('prefix') ?? '', maxUploads: maxOf(q, 'max-uploads'), encodeUrl: encodingOf(q) };
  const delimiter = q.get('delimiter');
  const keyMarker = q.get('key-marker');
  const uploadIdMarker = q.get('upload-id-marker');
  if (delimiter !== undefined && delimiter !== '') op.delimiter = delimiter;
  if (keyMarker !== undefined && keyMarker !== '') {
    op.keyMarker = keyMarker;
    // S3 ignores upload-id-marker without key-marker.
    if (uploadIdMarker !== undefined && uploadIdMarker !== '') op.uploadIdMarker = uploadIdMarker;
  }
  return op;
}

/** Operations on a bucket (no key). */
function routeBucket(method: string, bucket: string, q: Map<string, string>): S3Op {
  const cors = q.has('cors');
  switch (method) {
    case 'GET':
      if (q.has('location')) {
        onlyAllowed(q, ['location']);
        return { op: 'GetBucketLocation', bucket };
      }
      if (q.has('versioning')) {
        onlyAllowed(q, ['versioning']);
        return { op: 'GetBucketVersioning', bucket };
      }
      if (cors) {
        onlyAllowed(q, ['cors']);
        return { op: 'GetBucketCors', bucket };
      }
      if (q.has('uploads')) {
        onlyAllowed(q, ['uploads']);
        return listUploadsOf(bucket, q);
      }
      if (q.has('list-type')) {
        onlyAllowed(q, ['list-type']);
        const lt = q.get('list-type');
        if (lt !== '2') throw invalidArgument('list-type', lt ?? '', 'Invalid List Type specified in Request');
        const op: S3Op = { op: 'ListObjectsV2', ...listCommon(bucket, q), fetchOwner: q.get('fetch-owner') === 'true' };
        const sa = q.get('start-after');
        const ct = q.get('continuation-token');
        if (sa !== undefined && sa !== '') op.startAfter = sa;
        if (ct !== undefined) op.continuationToken = ct;
        return op;
      }
      onlyAllowed(q, []);
      {
        const op: S3Op = { op: 'ListObjects', ...listCommon(bucket, q) };
        const marker = q.get('marker');
        if (marker !== undefined && marker !== '') op.marker = marker;
        return op;
      }
    case 'HEAD':
      onlyAllowed(q, []);
      return { op: 'HeadBucket', bucket };
    case 'PUT':
      onlyAllowed(q, ['cors']);
      return cors ? { op: 'PutBucketCors', bucket } : { op: 'CreateBucket', bucket };
    case 'DELETE':
      onlyAllowed(q, ['cors']);
      return cors ? { op: 'DeleteBucketCors', bucket } : { op: 'DeleteBucket', bucket };
    case 'POST':
      if (q.has('delete')) {
        onlyAllowed(q, ['delete']);
        return { op: 'DeleteObjects', bucket };
      }
      onlyAllowed(q, []);
      throw notImplemented('POST object upload');
    case 'OPTIONS':
      return { op: 'CorsPreflight', bucket };
    default:
      throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'BUCKET' });
  }
}

/** Operations on an object (or on its multipart upload or tag set). */
function routeObject(method: string, bucket: string, key: string, q: Map<string, string>, head: RequestHead): S3Op {
  const uploadId = q.get('uploadId');
  const tagging = q.has('tagging');
  switch (method) {
    case 'GET':
    case 'HEAD': {
      if (method === 'GET' && uploadId !== undefined) {
        onlyAllowed(q, ['uploadId']);
        return listPartsOf(bucket, key, uploadId, q);
      }
      if (method === 'GET' && tagging) {
        onlyAllowed(q, ['tagging', 'versionId']);
        checkVersionId(q);
        return { op: 'GetObjectTagging', bucket, key };
      }
      onlyAllowed(q, ['versionId', 'partNumber']);
      checkVersionId(q);
      const op: S3Op = { op: method === 'GET' ? 'GetObject' : 'HeadObject', bucket, key, overrides: overridesOf(q) };
      if (q.has('partNumber')) op.partNumber = partNumberOf(q);
      return op;
    }
    case 'PUT': {
      const src = head.headers['x-amz-copy-source'];
      if (uploadId !== undefined) {
        onlyAllowed(q, ['uploadId', 'partNumber']);
        const partNumber = partNumberOf(q);
        if (src !== undefined) return { op: 'UploadPartCopy', bucket, key, uploadId, partNumber, ...parseCopySource(src) };
        return { op: 'UploadPart', bucket, key, uploadId, partNumber };
      }
      if (tagging) {
        onlyAllowed(q, ['tagging', 'versionId']);
        checkVersionId(q);
        return { op: 'PutObjectTagging', bucket, key };
      }
      onlyAllowed(q, []);
      if (src !== undefined) return { op: 'CopyObject', bucket, key, ...parseCopySource(src) };
      return { op: 'PutObject', bucket, key };
    }
    case 'DELETE':
      if (uploadId !== undefined) {
        onlyAllowed(q, ['uploadId']);
        return { op: 'AbortMultipartUpload', bucket, key, uploadId };
      }
      if (tagging) {
        onlyAllowed(q, ['tagging', 'versionId']);
        checkVersionId(q);
        return { op: 'DeleteObjectTagging', bucket, key };
      }
      onlyAllowed(q, ['versionId']);
      checkVersionId(q);
      return { op: 'DeleteObject', bucket, key };
    case 'POST':
      if (q.has('uploads')) {
        onlyAllowed(q, ['uploads']);
        return { op: 'CreateMultipartUpload', bucket, key };
      }
      if (uploadId !== undefined) {
        onlyAllowed(q, ['uploadId']);
        return { op: 'CompleteMultipartUpload', bucket, key, uploadId };
      }
      onlyAllowed(q, []);
      throw notImplemented('POST on an object');
    case 'OPTIONS':
      return { op: 'CorsPreflight', bucket, key };
    default:
      throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'OBJECT' });
  }
}

/** Routes a request head to an operation, or throws the S3Error to answer. */
export function route(head: RequestHead, cfg: RouterConfig): S3Op {
  const method = head.method.toUpperCase();
  const q = parseQuery(head.rawQuery);
  const { bucket: rawBucket, rawKey } = locate(head, cfg);
  if (rawBucket === undefined) {
    onlyAllowed(q, []);
    if (method === 'GET') return { op: 'ListBuckets' };
    throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'SERVICE' });
  }
  const bucket = checkBucket(rawBucket);
  const op = rawKey === '' ? routeBucket(method, bucket, q) : routeObject(method, bucket, checkKey(decodePath(rawKey)), q, head);
  rejectNul(op);
  return op;
}

/** Where each field of an operation came from, for the error that names it. */
const FIELD_SOURCES: Record<string, string> = {
  key: 'key',
  srcKey: 'x-amz-copy-source',
  srcBucket: 'x-amz-copy-source',
  prefix: 'prefix',
  delimiter: 'delimiter',
  marker: 'marker',
  startAfter: 'start-after',
  continuationToken: 'continuation-token',
  keyMarker: 'key-marker',
  uploadIdMarker: 'upload-id-marker',
  uploadId: 'uploadId',
};

/**
 * Refuses the NUL character (decoded from `%00`) anywhere in an operation's parameters, before anything
 * reaches the database (PostgreSQL text cannot hold it) or a response header. The value is not echoed:
 * XML 1.0 cannot carry it either.
 */
function rejectNul(op: S3Op): void {
  for (const [field, value] of Object.entries(op)) {
    if (typeof value === 'string' && value.includes('\0')) throw nulArgument(FIELD_SOURCES[field] ?? field);
    if (field === 'overrides') {
      for (const [header, v] of Object.entries(value as Record<string, string>)) {
        const param = Object.keys(RESPONSE_OVERRIDES).find((p) => RESPONSE_OVERRIDES[p] === header) ?? header;
        if (v.includes('\0')) throw nulArgument(param);
      }
    }
  }
}

/** InvalidArgument for a parameter holding the NUL character. */
export function nulArgument(name: string): S3Error {
  const what = name === 'key' ? 'Object key names' : `The ${name} parameter`;
  return new S3Error('InvalidArgument', `${what} must not contain the NUL character (%00).`, { ArgumentName: name });
}
