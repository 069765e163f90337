/**
 * Authorization of a verified request against the credential's grants (core/types.ts `Grant`): which
 * buckets it may use, whether it may write there, and the key prefix it is confined to.
 *
 * - A read-only grant allows GET/HEAD of objects and tags, listings, ListParts and the bucket's read
 *   configuration; anything that writes, deletes or uploads (multipart included) is AccessDenied.
 * - A grant with a prefix confines every key the request names — the object, a copy's source and
 *   destination, each key of DeleteObjects (denied one by one) — to keys starting with it. Listings
 *   (objects and multipart uploads) are clipped: they answer exactly what S3 would if the bucket held
 *   only the keys under the prefix, so a client browsing from the root sees the path down to it. A
 *   listing whose prefix lies outside the grant's (neither starts with the other) is AccessDenied.
 * - Changing a bucket's own configuration (CORS) needs a read-write grant without prefix.
 * - CreateBucket and DeleteBucket are decided by core (the right to create buckets, ownership).
 *
 * Every refusal is the same AccessDenied whether or not the bucket or key exists: nothing about other
 * tenants' data leaks.
 */
import type { Credential, Grant } from '../core/types.js';
import type { AuthenticatedRequest } from './auth/types.js';
import { S3Error } from './errors.js';
import type { S3Op } from './router.js';

/** The credential's grant on `bucket`, or undefined. */
export function grantOf(credential: Credential, bucket: string): Grant | undefined {
  if (credential.grants) return credential.grants.find((g) => g.bucket === bucket);
  return credential.buckets.includes(bucket) ? { bucket, permission: 'read_write', prefix: '' } : undefined;
}

function denied(message?: string): S3Error {
  return new S3Error('AccessDenied', message);
}

/** The grant on `bucket`, else AccessDenied. */
function need(auth: AuthenticatedRequest, bucket: string, write: boolean): Grant {
  const g = grantOf(auth.credential, bucket);
  if (!g) throw denied();
  if (write && g.permission !== 'read_write') throw denied('This credential has read-only access to the bucket.');
  return g;
}

/** Whether `key` is inside the grant's prefix. */
export function keyAllowed(g: Grant, key: string): boolean {
  return key.startsWith(g.prefix);
}

function needKey(g: Grant, key: string): void {
  if (!keyAllowed(g, key)) throw denied(`This credential is confined to keys starting with "${g.prefix}".`);
}

/** Operations that change nothing. */
const READS = new Set<S3Op['op']>([
  'HeadBucket', 'GetBucketLocation', 'GetBucketVersioning', 'GetBucketCors', 'ListObjects', 'ListObjectsV2',
  'ListMultipartUploads', 'GetObject', 'HeadObject', 'GetObjectTagging', 'ListParts',
]);

/**
 * Throws AccessDenied unless the credential may perform `op` as far as the request line tells (listings
 * are clipped later by {@link clipListing}, DeleteObjects keys are checked one by one by the handler).
 */
export function authorize(auth: AuthenticatedRequest, op: S3Op): void {
  switch (op.op) {
    case 'ListBuckets':
    case 'CreateBucket':
    case 'DeleteBucket':
    case 'CorsPreflight':
      return;
    case 'PutBucketCors':
    case 'DeleteBucketCors': {
      const g = need(auth, op.bucket, true);
      if (g.prefix !== '') throw denied('Changing the bucket configuration needs access to the whole bucket.');
      return;
    }
    case 'CopyObject':
    case 'UploadPartCopy': {
      needKey(need(auth, op.srcBucket, false), op.srcKey);
      needKey(need(auth, op.bucket, true), op.key);
      return;
    }
    default: {
      const g = need(auth, op.bucket, !READS.has(op.op));
      if ('key' in op && op.key !== undefined) needKey(g, op.key);
    }
  }
}

/** How a listing with `prefix` and `delimiter` is answered for a grant (see the module comment). */
export type ClippedListing =
  /** List with this prefix (the request's, or the grant's when that is longer); S3 semantics unchanged. */
  | { kind: 'list'; prefix: string }
  /**
   * Every key under the grant rolls up into one common prefix (the grant's prefix holds the delimiter
   * after the request's prefix): the answer is that prefix alone, when anything lies under the grant.
   */
  | { kind: 'one-prefix'; commonPrefix: string; grantPrefix: string };

/**
 * Clips a listing to the grant: AccessDenied when the request's prefix and the grant's are disjoint, or
 * when a multi-character delimiter could straddle the grant's prefix (which cannot be answered exactly).
 */
export function clipListing(g: Grant, prefix: string, delimiter: string | undefined): ClippedListing {
  const gp = g.prefix;
  if (prefix.startsWith(gp)) return { kind: 'list', prefix };
  if (!gp.startsWith(prefix)) throw denied(`This credential is confined to keys starting with "${gp}".`);
  if (delimiter === undefined || delimiter === '') return { kind: 'list', prefix: gp };
  const at = gp.indexOf(delimiter, prefix.length);
  if (at >= 0) return { kind: 'one-prefix', commonPrefix: gp.slice(0, at + delimiter.length), grantPrefix: gp };
  // A delimiter that begins inside the grant's prefix and ends after it would roll keys up at a point the
  // listing under the grant's prefix does not see.
  for (let i = Math.max(prefix.length, gp.length - delimiter.length + 1); i < gp.length; i++) {
    if (delimiter.startsWith(gp.slice(i))) throw denied(`List with a prefix starting with "${gp}" (this delimiter crosses the end of the credential's prefix).`);
  }
  return { kind: 'list', prefix: gp };
}
