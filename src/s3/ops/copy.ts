/**
 * CopyObject: server-side copy with x-amz-metadata-directive, x-amz-tagging-directive and
 * x-amz-copy-source-if-* conditions (evaluated by core against the source).
 */
import { CoreError } from '../../core/errors.js';
import type { CopyObjectInput } from '../../core/types.js';
import { S3Error, invalidArgument } from '../errors.js';
import { isoDate, parseReadConditions, parseWriteConditions, quoteEtag, systemHeadersOf, userMetaOf } from '../headers.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, xmlDocument } from '../xml.js';
import { drainBody, type OpContext } from './common.js';
import { taggingDirectiveOf, taggingHeaderOf } from './tagging.js';

/** CopyObject. */
export async function copyObject(ctx: OpContext, op: Extract<S3Op, { op: 'CopyObject' }>): Promise<S3Result> {
  drainBody(ctx);
  const h = ctx.head.headers;
  const directive = (h['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw invalidArgument('x-amz-metadata-directive', h['x-amz-metadata-directive'] ?? '', 'Unknown metadata directive.');
  }
  if (op.srcBucket === op.bucket && op.srcKey === op.key && directive === 'COPY') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const input: CopyObjectInput = {
    srcBucket: op.srcBucket,
    srcKey: op.srcKey,
    dstBucket: op.bucket,
    dstKey: op.key,
    metadataDirective: directive,
    headers: directive === 'REPLACE' ? systemHeadersOf(h) : {},
    userMeta: directive === 'REPLACE' ? userMetaOf(h) : {},
    signal: ctx.signal,
  };
  const taggingDirective = taggingDirectiveOf(h);
  input.taggingDirective = taggingDirective;
  if (taggingDirective === 'REPLACE') input.tags = taggingHeaderOf(h) ?? {};
  const sourceConditions = parseReadConditions(h, 'x-amz-copy-source-');
  const conditions = parseWriteConditions(h);
  if (sourceConditions) input.sourceConditions = sourceConditions;
  if (conditions) input.conditions = conditions;
  let v;
  try {
    v = await ctx.store.copyObject(input);
  } catch (err) {
    // A copy-source-if-none-match / if-modified-since miss is a 412 for copies, never a 304.
    if (err instanceof CoreError && err.code === 'NotModified') throw new S3Error('PreconditionFailed', undefined, {}, { cause: err });
    if (err instanceof CoreError && err.code === 'NoSuchKey') throw new S3Error('NoSuchKey', undefined, { Key: op.srcKey }, { cause: err });
    throw err;
  }
  const checksum = v.checksum ? [el(`Checksum${v.checksum.algorithm}`, v.checksum.value)] : [];
  return xmlResult(
    200,
    xmlDocument('CopyObjectResult', [el('LastModified', isoDate(v.lastModified)), el('ETag', quoteEtag(v.etag)), ...checksum]),
  );
}
