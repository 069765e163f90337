/**
 * Bucket usage: which S3 request class a served request is, and whether it is counted for its bucket
 * (core/usage.ts keeps the counters).
 */
import type { BucketUsageSink, RequestClass } from '../core/usage.js';
import type { SendOutcome } from './result.js';
import type { S3OpName } from './router.js';

/**
 * S3's pricing classes: A for PUT, COPY (a PUT), POST and LIST requests and every multipart call (Abort
 * included); B for GET, HEAD and everything else (DELETE, OPTIONS). Decided by method and operation, so an
 * operation added later is classified like S3 classifies it.
 */
export function requestClass(method: string, op: S3OpName): RequestClass {
  if (method === 'PUT' || method === 'POST') return 'A';
  if (op.startsWith('List') || op === 'AbortMultipartUpload') return 'A';
  return 'B';
}

/**
 * Counts a finished request for `bucket`: only requests that were authenticated and authorised for it (an
 * anonymous or refused caller cannot add to a tenant's counters, nor invent bucket names), and a
 * CreateBucket or DeleteBucket only when it succeeded. Bytes are the request and response body bytes the
 * connection carried.
 */
export function countBucketRequest(
  sink: BucketUsageSink | undefined,
  bucket: string | undefined,
  method: string,
  op: S3OpName,
  outcome: SendOutcome,
): void {
  if (!sink || bucket === undefined) return;
  // Creating and deleting buckets is authorised by core, not by a grant: any credential may ask for any
  // name, so only a request that succeeded names a bucket that was (or became) real.
  if ((op === 'CreateBucket' || op === 'DeleteBucket') && outcome.status >= 300) return;
  sink.bucketRequest(bucket, requestClass(method, op), outcome.bytesIn, outcome.bytesOut);
}
