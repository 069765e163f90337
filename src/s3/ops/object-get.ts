/**
 * GetObject and HeadObject: conditional headers and Range are parsed here and evaluated by core (HEAD
 * resolves the Range itself, since it reads no bytes);
 * NotModified and InvalidRange get the headers S3 sends with them (ETag, Content-Range).
 */
import { resolveRange } from '../../core/conditions.js';
import { CoreError } from '../../core/errors.js';
import type { ObjectVersion } from '../../core/types.js';
import { S3Error } from '../errors.js';
import { httpDate, parseRange, parseReadConditions, quoteEtag, versionHeaders } from '../headers.js';
import type { S3Op } from '../router.js';
import type { S3Result } from '../result.js';
import type { OpContext } from './common.js';

type GetOp = Extract<S3Op, { op: 'GetObject' | 'HeadObject' }>;

/** 304 carries the validators of the current version, like S3. */
async function notModified(ctx: OpContext, op: GetOp): Promise<S3Result> {
  const v = await ctx.store.headObject(op.bucket, op.key);
  return { status: 304, headers: { ETag: quoteEtag(v.etag), 'Last-Modified': httpDate(v.lastModified) } };
}

function checkPartNumber(op: GetOp, v: ObjectVersion): void {
  if (op.partNumber !== undefined && v.etag.includes('-')) {
    throw new S3Error('NotImplemented', 'partNumber on multipart objects is not implemented.');
  }
}

function withOverrides(h: Record<string, string>, op: GetOp): Record<string, string> {
  return { ...h, ...op.overrides };
}

/** GetObject and HeadObject. */
export async function getObject(ctx: OpContext, op: GetOp): Promise<S3Result> {
  const h = ctx.head.headers;
  const conditions = parseReadConditions(h);
  const checksumMode = (h['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED';
  try {
    const range = op.partNumber === undefined ? parseRange(h['range']) : undefined;
    if (op.op === 'HeadObject') {
      const v = await ctx.store.headObject(op.bucket, op.key, conditions);
      checkPartNumber(op, v);
      // HEAD answers a Range like GET would (206, the range's length and Content-Range), without the body.
      const r = resolveRange(range, v.size);
      const headers = withOverrides(versionHeaders(v, { checksum: checksumMode && !r }), op);
      if (!r) return { status: 200, headers, bodyLength: v.size };
      headers['Content-Range'] = `bytes ${r.start}-${r.end}/${v.size}`;
      return { status: 206, headers, bodyLength: r.end - r.start + 1 };
    }
    const opts: Parameters<typeof ctx.store.getObject>[2] = { signal: ctx.signal };
    if (range) opts.range = range;
    if (conditions) opts.conditions = conditions;
    const r = await ctx.store.getObject(op.bucket, op.key, opts);
    try {
      checkPartNumber(op, r.version);
    } catch (err) {
      r.body.destroy();
      throw err;
    }
    const headers = withOverrides(versionHeaders(r.version, { checksum: checksumMode && !r.range }), op);
    if (r.range) {
      headers['Content-Range'] = `bytes ${r.range.start}-${r.range.end}/${r.version.size}`;
      return { status: 206, headers, body: r.body, bodyLength: r.range.end - r.range.start + 1 };
    }
    return { status: 200, headers, body: r.body, bodyLength: r.version.size };
  } catch (err) {
    if (err instanceof CoreError && err.code === 'NotModified') return notModified(ctx, op);
    if (err instanceof CoreError && err.code === 'InvalidRange') {
      const v = await ctx.store.headObject(op.bucket, op.key);
      throw new S3Error(
        'InvalidRange',
        undefined,
        { RangeRequested: h['range'] ?? '', ActualObjectSize: String(v.size) },
        { cause: err, headers: { 'Content-Range': `bytes */${v.size}` } },
      );
    }
    throw err;
  }
}
