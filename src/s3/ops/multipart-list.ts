/**
 * ListParts and ListMultipartUploads, in S3's XML shape. Uploads are listed per bucket, so a tenant
 * sees only the uploads of buckets it may use; Initiator and Owner name the requesting credential.
 */
import { isoDate, quoteEtag } from '../headers.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, opt, xmlDocument } from '../xml.js';
import { ownerXml, s3UrlEncode, type OpContext } from './common.js';
import { clipListing, grantOf } from '../access.js';
import { compareKeys } from '../../core/list.js';
import type { ListUploadsResult } from '../../core/types.js';

type Op<K extends S3Op['op']> = Extract<S3Op, { op: K }>;

/** ListParts: parts after part-number-marker, at most max-parts of them. */
export async function listParts(ctx: OpContext, op: Op<'ListParts'>): Promise<S3Result> {
  const opts: { maxParts: number; partNumberMarker?: number } = { maxParts: op.maxParts };
  if (op.partNumberMarker !== undefined) opts.partNumberMarker = op.partNumberMarker;
  const r = await ctx.multipart.listParts(op.bucket, op.key, op.uploadId, opts);
  const algo = r.upload.checksumAlgorithm;
  const last = r.parts.at(-1);
  const body = [
    el('Bucket', op.bucket),
    el('Key', op.key),
    el('UploadId', op.uploadId),
    el('PartNumberMarker', op.partNumberMarker ?? 0),
    el('NextPartNumberMarker', r.nextPartNumberMarker ?? last?.partNumber ?? 0),
    el('MaxParts', op.maxParts),
    el('IsTruncated', r.isTruncated),
    ...r.parts.map((p) =>
      el('Part', [
        algo !== undefined && p.checksum !== undefined ? el(`Checksum${algo}`, p.checksum) : undefined,
        el('ETag', quoteEtag(p.etag)),
        el('LastModified', isoDate(p.lastModified)),
        el('PartNumber', p.partNumber),
        el('Size', p.size),
      ]),
    ),
    ownerXml(ctx, 'Initiator'),
    ownerXml(ctx),
    el('StorageClass', 'STANDARD'),
    opt('ChecksumAlgorithm', algo),
    opt('ChecksumType', r.upload.checksumType),
  ];
  return xmlResult(200, xmlDocument('ListPartsResult', body));
}

/** The uploads the request asks for, clipped to the credential's key prefix (access.ts). */
async function listUploads(ctx: OpContext, op: Op<'ListMultipartUploads'>): Promise<ListUploadsResult> {
  const grant = grantOf(ctx.auth.credential, op.bucket);
  const clip = grant ? clipListing(grant, op.prefix, op.delimiter) : { kind: 'list' as const, prefix: op.prefix };
  if (clip.kind === 'one-prefix') {
    const cp = clip.commonPrefix;
    if (op.maxUploads === 0 || (op.keyMarker !== undefined && compareKeys(cp, op.keyMarker) <= 0)) {
      return { uploads: [], commonPrefixes: [], isTruncated: false };
    }
    const probe = await ctx.multipart.listMultipartUploads(op.bucket, { prefix: clip.grantPrefix, maxUploads: 1 });
    return { uploads: [], commonPrefixes: probe.uploads.length > 0 ? [cp] : [], isTruncated: false };
  }
  const opts: Parameters<typeof ctx.multipart.listMultipartUploads>[1] = { prefix: clip.prefix, maxUploads: op.maxUploads };
  if (op.delimiter !== undefined) opts.delimiter = op.delimiter;
  if (op.keyMarker !== undefined) opts.keyMarker = op.keyMarker;
  if (op.uploadIdMarker !== undefined) opts.uploadIdMarker = op.uploadIdMarker;
  return ctx.multipart.listMultipartUploads(op.bucket, opts);
}

/** ListMultipartUploads: uploads in progress by key then upload id, with prefix/delimiter grouping. */
export async function listMultipartUploads(ctx: OpContext, op: Op<'ListMultipartUploads'>): Promise<S3Result> {
  const r = await listUploads(ctx, op);
  const enc = op.encodeUrl ? s3UrlEncode : (s: string) => s;
  const body = [
    el('Bucket', op.bucket),
    el('KeyMarker', enc(op.keyMarker ?? '')),
    el('UploadIdMarker', op.uploadIdMarker ?? ''),
    r.isTruncated && r.nextKeyMarker !== undefined ? el('NextKeyMarker', enc(r.nextKeyMarker)) : el('NextKeyMarker', ''),
    el('Prefix', enc(op.prefix)),
    op.delimiter !== undefined ? el('Delimiter', enc(op.delimiter)) : undefined,
    el('NextUploadIdMarker', r.isTruncated ? (r.nextUploadIdMarker ?? '') : ''),
    el('MaxUploads', op.maxUploads),
    op.encodeUrl ? el('EncodingType', 'url') : undefined,
    el('IsTruncated', r.isTruncated),
    ...r.uploads.map((u) =>
      el('Upload', [
        opt('ChecksumAlgorithm', u.checksumAlgorithm),
        opt('ChecksumType', u.checksumType),
        el('Initiated', isoDate(u.initiated)),
        ownerXml(ctx, 'Initiator'),
        el('Key', enc(u.key)),
        ownerXml(ctx),
        el('StorageClass', 'STANDARD'),
        el('UploadId', u.uploadId),
      ]),
    ),
    ...r.commonPrefixes.map((p) => el('CommonPrefixes', [el('Prefix', enc(p))])),
  ];
  return xmlResult(200, xmlDocument('ListMultipartUploadsResult', body));
}
