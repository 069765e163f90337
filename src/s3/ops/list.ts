/**
 * ListObjectsV2 and ListObjects (V1), with S3's XML shape: continuation tokens are the base64 of the
 * last key or common prefix returned; `encoding-type=url` encodes names like S3.
 */
import type { ListedObject, ListInput, ListResult } from '../../core/types.js';
import { invalidArgument } from '../errors.js';
import { isoDate, quoteEtag } from '../headers.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, opt, xmlDocument, type Xml } from '../xml.js';
import { ownerXml, s3UrlEncode, type OpContext } from './common.js';
import { clipListing, grantOf } from '../access.js';
import { compareKeys } from '../../core/list.js';

type V2 = Extract<S3Op, { op: 'ListObjectsV2' }>;
type V1 = Extract<S3Op, { op: 'ListObjects' }>;

/** The opaque continuation token of a listing position. */
export function encodeContinuationToken(after: string): string {
  return Buffer.from(after, 'utf8').toString('base64');
}

/** Decodes a token produced by {@link encodeContinuationToken}; anything else is InvalidArgument. */
export function decodeContinuationToken(token: string): string {
  const buf = Buffer.from(token, 'base64');
  const after = buf.toString('utf8');
  if (token === '' || buf.toString('base64') !== token || Buffer.from(after, 'utf8').toString('base64') !== token || after.includes('\0')) {
    throw invalidArgument('continuation-token', token, 'The continuation token provided is incorrect');
  }
  return after;
}

/** Lists what the request asks, clipped to the credential's key prefix (access.ts). */
async function list(ctx: OpContext, op: V1 | V2, after: string | undefined): Promise<ListResult> {
  const grant = grantOf(ctx.auth.credential, op.bucket);
  const clip = grant ? clipListing(grant, op.prefix, op.delimiter) : { kind: 'list' as const, prefix: op.prefix };
  if (clip.kind === 'one-prefix') {
    // Everything the credential may see rolls up into one common prefix: shown when something lies under it.
    const cp = clip.commonPrefix;
    if (op.maxKeys === 0 || (after !== undefined && compareKeys(cp, after) <= 0)) return { objects: [], commonPrefixes: [], isTruncated: false };
    const probe = await ctx.store.listObjects({ bucket: op.bucket, prefix: clip.grantPrefix, maxKeys: 1 });
    return { objects: [], commonPrefixes: probe.objects.length > 0 ? [cp] : [], isTruncated: false };
  }
  const input: ListInput = { bucket: op.bucket, prefix: clip.prefix, maxKeys: op.maxKeys };
  if (op.delimiter !== undefined) input.delimiter = op.delimiter;
  if (after !== undefined) input.after = after;
  return ctx.store.listObjects(input);
}

function entries(ctx: OpContext, r: ListResult, enc: (s: string) => string, owner: boolean): Xml[] {
  const contents = r.objects.map((o: ListedObject) =>
    el('Contents', [
      el('Key', enc(o.key)),
      el('LastModified', isoDate(o.lastModified)),
      el('ETag', quoteEtag(o.etag)),
      opt('ChecksumAlgorithm', o.checksumAlgorithm),
      opt('ChecksumType', o.checksumType),
      el('Size', o.size),
      owner ? ownerXml(ctx) : undefined,
      el('StorageClass', 'STANDARD'),
    ]),
  );
  const prefixes = r.commonPrefixes.map((p) => el('CommonPrefixes', [el('Prefix', enc(p))]));
  return [...contents, ...prefixes];
}

/** ListObjectsV2. */
export async function listObjectsV2(ctx: OpContext, op: V2): Promise<S3Result> {
  const after = op.continuationToken !== undefined ? decodeContinuationToken(op.continuationToken) : op.startAfter;
  const r = await list(ctx, op, after);
  const enc = op.encodeUrl ? s3UrlEncode : (s: string) => s;
  const body = [
    el('Name', op.bucket),
    el('Prefix', enc(op.prefix)),
    op.delimiter !== undefined ? el('Delimiter', enc(op.delimiter)) : undefined,
    el('MaxKeys', op.maxKeys),
    op.encodeUrl ? el('EncodingType', 'url') : undefined,
    el('KeyCount', r.objects.length + r.commonPrefixes.length),
    el('IsTruncated', r.isTruncated),
    opt('ContinuationToken', op.continuationToken),
    r.isTruncated && r.nextAfter !== undefined ? el('NextContinuationToken', encodeContinuationToken(r.nextAfter)) : undefined,
    op.startAfter !== undefined ? el('StartAfter', enc(op.startAfter)) : undefined,
    ...entries(ctx, r, enc, op.fetchOwner),
  ];
  return xmlResult(200, xmlDocument('ListBucketResult', body));
}

/** ListObjects (V1): NextMarker only with a delimiter (clients otherwise continue from the last key). */
export async function listObjectsV1(ctx: OpContext, op: V1): Promise<S3Result> {
  const r = await list(ctx, op, op.marker);
  const enc = op.encodeUrl ? s3UrlEncode : (s: string) => s;
  const body = [
    el('Name', op.bucket),
    el('Prefix', enc(op.prefix)),
    el('Marker', enc(op.marker ?? '')),
    el('MaxKeys', op.maxKeys),
    op.delimiter !== undefined ? el('Delimiter', enc(op.delimiter)) : undefined,
    op.encodeUrl ? el('EncodingType', 'url') : undefined,
    el('IsTruncated', r.isTruncated),
    r.isTruncated && op.delimiter !== undefined && r.nextAfter !== undefined ? el('NextMarker', enc(r.nextAfter)) : undefined,
    ...entries(ctx, r, enc, true),
  ];
  return xmlResult(200, xmlDocument('ListBucketResult', body));
}
