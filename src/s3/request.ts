/**
 * The request pipeline: route → authenticate (SigV4) → authorize (the credential's buckets) →
 * handler → response headers, error XML and metrics. Errors are mapped to S3 errors in one place
 * ({@link toClientError}); unknown ones are logged with the request id and answered as InternalError.
 */
import { Readable } from 'node:stream';
import type { ObjectStore, TenantDirectory } from '../core/types.js';
import type { S3ServerConfig } from '../config/types.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import { verifyRequest } from './auth/sigv4.js';
import type { RequestHead } from './auth/types.js';
import { PROVIDER_UNAVAILABLE, S3Error } from './errors.js';
import { route, type S3Op } from './router.js';
import { errorResult, newHostId, newRequestId, toClientError, type S3Result } from './result.js';
import type { HttpHandler, HttpRequestIn } from './uws-adapter.js';
import type { OpContext, S3MultipartStore } from './ops/common.js';
import { createBucket, deleteBucket, getBucketLocation, getBucketVersioning, headBucket, listBuckets } from './ops/bucket.js';
import { getObject } from './ops/object-get.js';
import { putObject } from './ops/object-put.js';
import { copyObject } from './ops/copy.js';
import { deleteObject, deleteObjects } from './ops/delete.js';
import { listObjectsV1, listObjectsV2 } from './ops/list.js';
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, uploadPart, uploadPartCopy } from './ops/multipart.js';
import { listMultipartUploads, listParts } from './ops/multipart-list.js';
import { deleteObjectTagging, getObjectTagging, putObjectTagging } from './ops/tagging.js';
import { bucketCors, corsResponseHeaders, deleteBucketCors, getBucketCors, preflight, putBucketCors } from './ops/cors.js';
import { checkRequestHeaders, presignedHead } from './unapplied.js';
import { authorize } from './access.js';
import type { BucketUsageSink } from '../core/usage.js';
import { countBucketRequest } from './usage.js';

/** What the S3 server needs from the rest of the process. */
export interface S3Deps {
  store: ObjectStore;
  multipart: S3MultipartStore;
  tenants: TenantDirectory;
  config: S3ServerConfig;
  metrics: Metrics;
  log: Logger;
  /** Where served requests are counted per bucket (monthly usage; core/usage.ts), when given. */
  usage?: BucketUsageSink;
}

/** Throws AccessDenied unless the credential's grants allow the operation (see access.ts). */
export { authorize } from './access.js';

function dispatch(ctx: OpContext, op: S3Op): Promise<S3Result> {
  switch (op.op) {
    case 'ListBuckets':
      return listBuckets(ctx);
    case 'HeadBucket':
      return headBucket(ctx, op);
    case 'GetBucketLocation':
      return getBucketLocation(ctx, op);
    case 'GetBucketVersioning':
      return getBucketVersioning(ctx, op);
    case 'CreateBucket':
      return createBucket(ctx, op);
    case 'DeleteBucket':
      return deleteBucket(ctx, op);
    case 'ListObjectsV2':
      return listObjectsV2(ctx, op);
    case 'ListObjects':
      return listObjectsV1(ctx, op);
    case 'PutObject':
      return putObject(ctx, op);
    case 'GetObject':
    case 'HeadObject':
      return getObject(ctx, op);
    case 'DeleteObject':
      return deleteObject(ctx, op);
    case 'DeleteObjects':
      return deleteObjects(ctx, op);
    case 'CopyObject':
      return copyObject(ctx, op);
    case 'CreateMultipartUpload':
      return createMultipartUpload(ctx, op);
    case 'UploadPart':
      return uploadPart(ctx, op);
    case 'UploadPartCopy':
      return uploadPartCopy(ctx, op);
    case 'CompleteMultipartUpload':
      return completeMultipartUpload(ctx, op);
    case 'AbortMultipartUpload':
      return abortMultipartUpload(ctx, op);
    case 'ListParts':
      return listParts(ctx, op);
    case 'ListMultipartUploads':
      return listMultipartUploads(ctx, op);
    case 'GetObjectTagging':
      return getObjectTagging(ctx, op);
    case 'PutObjectTagging':
      return putObjectTagging(ctx, op);
    case 'DeleteObjectTagging':
      return deleteObjectTagging(ctx, op);
    case 'GetBucketCors':
      return getBucketCors(ctx, op);
    case 'PutBucketCors':
      return putBucketCors(ctx, op);
    case 'DeleteBucketCors':
      return deleteBucketCors(ctx, op);
    case 'CorsPreflight':
      throw new Error('CorsPreflight is answered before authentication');
  }
}

/** The metric label of a request that could not be routed. */
function failedRouteLabel(err: unknown): string {
  return err instanceof S3Error && err.code === 'NotImplemented' ? 'NotImplemented' : 'Invalid';
}

/** Builds the HTTP handler serving S3 over `deps`. */
export function createS3Handler(deps: S3Deps): HttpHandler {
  const lookup = (id: string) => deps.tenants.lookupCredential(id);
  return async (req: HttpRequestIn): Promise<S3Result> => {
    const started = process.hrtime.bigint();
    const requestId = newRequestId();
    const log = deps.log.child({ requestId });
    const head: RequestHead = { method: req.method, rawPath: req.rawPath, rawQuery: req.rawQuery, headers: req.headers };
    let label = 'Invalid';
    let op: S3Op | undefined;
    let result: S3Result;
    // Set once the request is authorised for its bucket: only then is it counted for that bucket.
    let usageBucket: string | undefined;
    try {
      let routeError: unknown;
      try {
        op = route(head, deps.config);
        label = op.op;
      } catch (err) {
        routeError = err;
        label = failedRouteLabel(err);
      }
      if (op?.op === 'CorsPreflight') {
        // Browsers send preflights without credentials: the bucket's CORS rules are the only gate.
        req.body.resume();
        result = preflight(await bucketCors(deps.tenants, op.bucket), req.headers, op.key !== undefined);
        return finishResult(deps, result, requestId, label, started, log, req.rawPath);
      }
      // Authenticate even unroutable requests first: anonymous callers learn nothing about the API.
      const auth = await verifyRequest(head, lookup, { region: deps.config.region });
      if (op === undefined) throw routeError;
      authorize(auth, op);
      if ('bucket' in op) usageBucket = op.bucket;
      const ctx: OpContext = {
        store: deps.store,
        multipart: deps.multipart,
        tenants: deps.tenants,
        config: deps.config,
        log,
        requestId,
        auth,
        head: auth.presigned ? presignedHead(head) : head,
        body: req.body,
        signal: req.signal,
      };
      // Headers asking for what is not implemented are refused here, before the handler reads or writes anything.
      await checkRequestHeaders(ctx, op);
      result = await dispatch(ctx, op);
    } catch (err) {
      const e = toClientError(err, op && 'key' in op ? { bucket: op.bucket, key: op.key } : op && 'bucket' in op ? { bucket: op.bucket } : {});
      if (req.signal.aborted) log.debug('s3 request ended: the client went away', { op: label, code: e.code });
      else if (e.code === 'InternalError') log.error('s3 request failed', { op: label, method: req.method, path: req.rawPath, err: e.cause ?? e });
      else log.debug('s3 request rejected', { op: label, code: e.code, err: e.cause instanceof Error ? e.cause : undefined });
      result = errorResult(e, requestId, req.rawPath, req.method === 'HEAD');
    }
    const origin = req.headers['origin'];
    if (origin !== undefined && op !== undefined && 'bucket' in op && op.op !== 'CorsPreflight') {
      // S3 adds the matching rule's headers to every response of a CORS request, errors included.
      Object.assign(result.headers, corsResponseHeaders(await bucketCors(deps.tenants, op.bucket), origin, req.method));
    }
    return finishResult(deps, result, requestId, label, started, log, req.rawPath, usageBucket, req.method);
  };
}

/**
 * Adds the request ids and server name, the metrics callback run once the response is sent, and for a
 * streamed body the clean error sent instead when that body fails before its first byte.
 */
function finishResult(
  deps: S3Deps,
  result: S3Result,
  requestId: string,
  label: string,
  started: bigint,
  log: Logger,
  path: string,
  usageBucket?: string,
  method = '',
): S3Result {
  result.headers['x-amz-request-id'] = requestId;
  result.headers['x-amz-id-2'] = newHostId();
  result.headers['Server'] = 's3-orchestrator';
  if (result.body instanceof Readable) result.fallback = (err) => bodyFailure(err, result, requestId, log, path);
  result.onDone = (outcome) => {
    const m = deps.metrics;
    m.s3Requests.inc({ op: label, status: outcome.aborted ? 'aborted' : String(outcome.status) });
    m.s3Duration.observe({ op: label }, Number(process.hrtime.bigint() - started) / 1e9);
    if (outcome.bytesIn > 0) m.bytesIn.inc({ op: label }, outcome.bytesIn);
    if (outcome.bytesOut > 0) m.bytesOut.inc({ op: label }, outcome.bytesOut);
    countBucketRequest(deps.usage, usageBucket, method, label as S3Op['op'], outcome);
  };
  return result;
}

/** Response headers that belong to the exchange, not to the result they were set on. */
const EXCHANGE_HEADERS = /^(x-amz-request-id|x-amz-id-2|server|access-control-.*|vary)$/i;

/**
 * The answer when a streamed body fails before its first byte (nothing sent yet): the S3 error it failed
 * with (a shutdown), else 503 ServiceUnavailable saying the storage provider is unavailable.
 */
function bodyFailure(err: unknown, result: S3Result, requestId: string, log: Logger, path: string): S3Result {
  const e = err instanceof S3Error ? err : new S3Error('ServiceUnavailable', PROVIDER_UNAVAILABLE, {}, { cause: err });
  log.warn('response body failed before its first byte', { status: e.status, code: e.code, err });
  const out = errorResult(e, requestId, path, false);
  for (const [k, v] of Object.entries(result.headers)) if (EXCHANGE_HEADERS.test(k)) out.headers[k] = v;
  return out;
}
