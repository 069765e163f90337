/**
 * Multipart uploads: CreateMultipartUpload, UploadPart (the body goes through the same verifier as
 * PutObject, aws-chunked and trailers included), UploadPartCopy, CompleteMultipartUpload and
 * AbortMultipartUpload. Core owns the upload state; this file speaks S3 to it.
 */
import { CoreError } from '../../core/errors.js';
import type { ChecksumAlgorithm, CreateMultipartInput, UploadPartCopyInput } from '../../core/types.js';
import { CHECKSUM_ALGORITHMS } from '../checksums.js';
import { S3Error, invalidArgument } from '../errors.js';
import { isoDate, objectSizeOf, parseReadConditions, parseWriteConditions, quoteEtag, systemHeadersOf, userMetaOf } from '../headers.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, xmlDocument } from '../xml.js';
import { parseCompleteMultipartUpload } from '../xml-requests.js';
import { drainBody, readSmallBody, verifiedBody, type OpContext } from './common.js';
import { taggingHeaderOf } from './tagging.js';

type Op<K extends S3Op['op']> = Extract<S3Op, { op: K }>;

/** 10000 parts with ETags and checksums, generously escaped, fit in this. */
const MAX_COMPLETE_BODY = 4 * 1024 * 1024;

/** `x-amz-checksum-algorithm` and `x-amz-checksum-type` of CreateMultipartUpload. */
export function checksumSettingsOf(
  h: Readonly<Record<string, string>>,
): { checksumAlgorithm?: ChecksumAlgorithm; checksumType?: 'FULL_OBJECT' | 'COMPOSITE' } {
  const rawAlgo = h['x-amz-checksum-algorithm'];
  const rawType = h['x-amz-checksum-type'];
  const out: { checksumAlgorithm?: ChecksumAlgorithm; checksumType?: 'FULL_OBJECT' | 'COMPOSITE' } = {};
  if (rawAlgo !== undefined) {
    const algo = CHECKSUM_ALGORITHMS.find((a) => a === rawAlgo.trim().toUpperCase());
    if (algo === undefined) {
      throw new S3Error(
        'InvalidRequest',
        `Checksum algorithm provided is unsupported. Please try again with any of the valid types: [${CHECKSUM_ALGORITHMS.join(', ')}]`,
      );
    }
    out.checksumAlgorithm = algo;
  }
  if (rawType !== undefined) {
    const type = rawType.trim().toUpperCase();
    if (type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
    if (out.checksumAlgorithm === undefined) {
      throw new S3Error('InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.');
    }
    out.checksumType = type;
  }
  return out;
}

/** `x-amz-copy-source-range: bytes=first-last` (both required, inclusive). */
export function parseCopySourceRange(v: string | undefined): { start: number; end: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(v.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw invalidArgument(
      'x-amz-copy-source-range',
      v,
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
    );
  }
  return { start: Number(m[1]), end: Number(m[2]) };
}

function checksumElement(algorithm: ChecksumAlgorithm | undefined, value: string | undefined) {
  return algorithm !== undefined && value !== undefined ? el(`Checksum${algorithm}`, value) : undefined;
}

/** CreateMultipartUpload: headers as PutObject, plus the checksum algorithm and type of the upload. */
export async function createMultipartUpload(ctx: OpContext, op: Op<'CreateMultipartUpload'>): Promise<S3Result> {
  drainBody(ctx);
  const h = ctx.head.headers;
  const input: CreateMultipartInput = { bucket: op.bucket, key: op.key, headers: systemHeadersOf(h), userMeta: userMetaOf(h), ...checksumSettingsOf(h) };
  const tags = taggingHeaderOf(h);
  if (tags) input.tags = tags;
  const u = await ctx.multipart.createMultipartUpload(input);
  const headers: Record<string, string> = {};
  if (u.checksumAlgorithm) headers['x-amz-checksum-algorithm'] = u.checksumAlgorithm;
  if (u.checksumType) headers['x-amz-checksum-type'] = u.checksumType;
  const xml = xmlDocument('InitiateMultipartUploadResult', [el('Bucket', op.bucket), el('Key', op.key), el('UploadId', u.uploadId)]);
  return xmlResult(200, xml, headers);
}

/** UploadPart: answers the part's ETag and, when there is one, its checksum. */
export async function uploadPart(ctx: OpContext, op: Op<'UploadPart'>): Promise<S3Result> {
  const size = objectSizeOf(ctx.head.headers);
  const upload = await ctx.multipart.getUpload(op.bucket, op.key, op.uploadId);
  // S3 stores a checksum for every part of an upload created with an algorithm, sent or not.
  const body = verifiedBody(ctx, upload.checksumAlgorithm ? { algorithm: upload.checksumAlgorithm } : {});
  let part;
  try {
    part = await ctx.multipart.uploadPart({
      bucket: op.bucket,
      key: op.key,
      uploadId: op.uploadId,
      partNumber: op.partNumber,
      size,
      body: body.stream,
      digests: body.digests,
      signal: ctx.signal,
    });
  } catch (err) {
    throw body.failure() ?? err;
  }
  const headers: Record<string, string> = { ETag: quoteEtag(part.etag) };
  const sum = body.digests().checksum;
  if (sum) headers[`x-amz-checksum-${sum.algorithm.toLowerCase()}`] = sum.value;
  return { status: 200, headers };
}

/** UploadPartCopy: a range (or all) of an existing object becomes a part. */
export async function uploadPartCopy(ctx: OpContext, op: Op<'UploadPartCopy'>): Promise<S3Result> {
  drainBody(ctx);
  const h = ctx.head.headers;
  const upload = await ctx.multipart.getUpload(op.bucket, op.key, op.uploadId);
  const input: UploadPartCopyInput = {
    bucket: op.bucket,
    key: op.key,
    uploadId: op.uploadId,
    partNumber: op.partNumber,
    srcBucket: op.srcBucket,
    srcKey: op.srcKey,
    signal: ctx.signal,
  };
  const range = parseCopySourceRange(h['x-amz-copy-source-range']);
  const sourceConditions = parseReadConditions(h, 'x-amz-copy-source-');
  if (range) input.range = range;
  if (sourceConditions) input.sourceConditions = sourceConditions;
  let part;
  try {
    part = await ctx.multipart.uploadPartCopy(input);
  } catch (err) {
    if (err instanceof CoreError && err.code === 'NotModified') throw new S3Error('PreconditionFailed', undefined, {}, { cause: err });
    if (err instanceof CoreError && err.code === 'NoSuchKey') throw new S3Error('NoSuchKey', undefined, { Key: op.srcKey }, { cause: err });
    throw err;
  }
  return xmlResult(
    200,
    xmlDocument('CopyPartResult', [
      el('LastModified', isoDate(part.lastModified)),
      el('ETag', quoteEtag(part.etag)),
      checksumElement(upload.checksumAlgorithm, part.checksum),
    ]),
  );
}

function locationOf(ctx: OpContext, bucket: string, key: string): string {
  const host = ctx.head.headers['host'] ?? 'localhost';
  const path = key.split('/').map(encodeURIComponent).join('/');
  return `http://${host}/${encodeURIComponent(bucket)}/${path}`;
}

/** CompleteMultipartUpload: the listed parts become the object (If-Match / If-None-Match honoured). */
export async function completeMultipartUpload(ctx: OpContext, op: Op<'CompleteMultipartUpload'>): Promise<S3Result> {
  const { text } = await readSmallBody(ctx, MAX_COMPLETE_BODY);
  const parts = parseCompleteMultipartUpload(text);
  const conditions = parseWriteConditions(ctx.head.headers);
  const v = await ctx.multipart.completeMultipartUpload({
    bucket: op.bucket,
    key: op.key,
    uploadId: op.uploadId,
    parts,
    ...(conditions ? { conditions } : {}),
  });
  const xml = xmlDocument('CompleteMultipartUploadResult', [
    el('Location', locationOf(ctx, op.bucket, op.key)),
    el('Bucket', op.bucket),
    el('Key', op.key),
    el('ETag', quoteEtag(v.etag)),
    checksumElement(v.checksum?.algorithm, v.checksum?.value),
    v.checksum ? el('ChecksumType', v.checksum.type) : undefined,
  ]);
  return xmlResult(200, xml);
}

/** AbortMultipartUpload: 204; the parts are discarded by the cleanup queue. */
export async function abortMultipartUpload(ctx: OpContext, op: Op<'AbortMultipartUpload'>): Promise<S3Result> {
  await ctx.multipart.abortMultipartUpload(op.bucket, op.key, op.uploadId);
  return { status: 204, headers: {} };
}
