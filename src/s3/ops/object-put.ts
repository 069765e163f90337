/**
 * PutObject: the raw body streams through the SigV4/aws-chunked/checksum verifier straight into
 * core; nothing is buffered here, so memory stays O(1) in the object size.
 */
import { checksumHeaders, objectSizeOf, parseWriteConditions, quoteEtag, systemHeadersOf, userMetaOf } from '../headers.js';
import type { S3Op } from '../router.js';
import type { S3Result } from '../result.js';
import { verifiedBody, type OpContext } from './common.js';
import { taggingHeaderOf } from './tagging.js';
import type { PutObjectInput } from '../../core/types.js';

/** PutObject. */
export async function putObject(ctx: OpContext, op: Extract<S3Op, { op: 'PutObject' }>): Promise<S3Result> {
  const h = ctx.head.headers;
  const size = objectSizeOf(h);
  const input: Omit<PutObjectInput, 'body' | 'digests'> = {
    bucket: op.bucket,
    key: op.key,
    size,
    headers: systemHeadersOf(h),
    userMeta: userMetaOf(h),
    signal: ctx.signal,
  };
  const conditions = parseWriteConditions(h);
  const tags = taggingHeaderOf(h);
  if (conditions) input.conditions = conditions;
  if (tags) input.tags = tags;
  const body = verifiedBody(ctx);
  let version;
  try {
    version = await ctx.store.putObject({ ...input, body: body.stream, digests: body.digests });
  } catch (err) {
    // The body's own failure (bad digest, bad chunk signature, timeout) is the real cause.
    throw body.failure() ?? err;
  }
  return { status: 200, headers: { ETag: quoteEtag(version.etag), ...checksumHeaders(version) } };
}
