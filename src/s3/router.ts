/**
 * Turns a request head into one typed S3 operation ({@link S3Op}). Pure and synchronous: no I/O, no
 * authentication. Anything not implemented (a subresource, an unknown method) is NotImplemented here,
 * so it can never fall through to an object operation.
 */
import { S3Error, invalidArgument } from './errors.js';
import type { RequestHead } from './auth/types.js';
import { RESPONSE_OVERRIDES } from './headers.js';

/** Largest key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Default and largest max-keys of a listing. */
export const MAX_LIST_KEYS = 1000;

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
  | { op: 'GetObject' | 'HeadObject'; bucket: string; key: string; overrides: Record<string, string>; partNumber?: 1 }
  | { op: 'DeleteObject'; bucket: string; key: string }
  | { op: 'DeleteObjects'; bucket: string }
  | { op: 'CopyObject'; bucket: string; key: string; srcBucket: string; srcKey: string };

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

/** Decodes a query component: `+` is a space, as in form encoding; bad escapes are InvalidURI. */
function decodeQueryComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch (err) {
    throw new S3Error('InvalidURI', undefined, {}, { cause: err });
  }
}

/** Parses a raw query string; the first occurrence of a repeated parameter wins. */
export function parseQuery(rawQuery: string): Map<string, string> {
  const q = new Map<string, string>();
  if (rawQuery === '') return q;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeQueryComponent(part.slice(eq + 1));
    if (!q.has(k)) q.set(k, v);
  }
  return q;
}

/** Percent-decodes a path exactly once; `+` stays a plus. Invalid escapes or UTF-8 → InvalidURI. */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch (err) {
    throw new S3Error('InvalidURI', undefined, {}, { cause: err });
  }
}

/** S3 bucket naming rules (the strict, current ones). */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !name.includes('.-') &&
    !name.includes('-.') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias')
  );
}

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

function maxKeysOf(q: Map<string, string>): number {
  const v = q.get('max-keys');
  if (v === undefined) return MAX_LIST_KEYS;
  if (!/^\d+$/.test(v)) throw invalidArgument('max-keys', v, 'Provided max-keys not an integer or within integer range');
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n > 2 ** 31 - 1) throw invalidArgument('max-keys', v, 'Provided max-keys not an integer or within integer range');
  return Math.min(n, MAX_LIST_KEYS);
}

function listCommon(bucket: string, q: Map<string, string>): ListCommon {
  const enc = q.get('encoding-type');
  if (enc !== undefined && enc.toLowerCase() !== 'url') throw invalidArgument('encoding-type', enc, 'Invalid Encoding Method specified in Request');
  const common: ListCommon = { bucket, prefix: q.get('prefix') ?? '', maxKeys: maxKeysOf(q), encodeUrl: enc !== undefined };
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

/** Routes a request head to an operation, or throws the S3Error to answer. */
export function route(head: RequestHead, cfg: RouterConfig): S3Op {
  const method = head.method.toUpperCase();
  const q = parseQuery(head.rawQuery);
  if (method === 'OPTIONS') throw notImplemented('CORS preflight');
  const { bucket: rawBucket, rawKey } = locate(head, cfg);

  if (rawBucket === undefined) {
    onlyAllowed(q, []);
    if (method === 'GET') return { op: 'ListBuckets' };
    throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'SERVICE' });
  }
  const bucket = checkBucket(rawBucket);

  if (rawKey === '') {
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
        onlyAllowed(q, []);
        return { op: 'CreateBucket', bucket };
      case 'DELETE':
        onlyAllowed(q, []);
        return { op: 'DeleteBucket', bucket };
      case 'POST':
        if (q.has('delete')) {
          onlyAllowed(q, ['delete']);
          return { op: 'DeleteObjects', bucket };
        }
        onlyAllowed(q, []);
        throw notImplemented('POST object upload');
      default:
        throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'BUCKET' });
    }
  }

  const key = checkKey(decodePath(rawKey));
  switch (method) {
    case 'GET':
    case 'HEAD': {
      onlyAllowed(q, ['versionId', 'partNumber']);
      checkVersionId(q);
      const pn = q.get('partNumber');
      // Without multipart, every object is one part: partNumber=1 is the whole object.
      if (pn !== undefined && pn !== '1') throw notImplemented('partNumber other than 1');
      const op: S3Op = { op: method === 'GET' ? 'GetObject' : 'HeadObject', bucket, key, overrides: overridesOf(q) };
      if (pn === '1') op.partNumber = 1;
      return op;
    }
    case 'PUT': {
      onlyAllowed(q, []);
      const src = head.headers['x-amz-copy-source'];
      if (src !== undefined) return { op: 'CopyObject', bucket, key, ...parseCopySource(src) };
      return { op: 'PutObject', bucket, key };
    }
    case 'DELETE':
      onlyAllowed(q, ['versionId']);
      checkVersionId(q);
      return { op: 'DeleteObject', bucket, key };
    case 'POST':
      onlyAllowed(q, []);
      throw notImplemented('POST on an object');
    default:
      throw new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: 'OBJECT' });
  }
}
