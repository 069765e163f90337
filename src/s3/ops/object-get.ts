/**
 * GetObject and HeadObject: conditional headers and Range are parsed here and evaluated by core (HEAD
 * resolves the Range itself, since it reads no bytes);
 * NotModified and InvalidRange get the headers S3 sends with them (ETag, Content-Range).
 */
import { resolveRange } from '../../core/conditions.js';
import { CoreError } from '../../core/errors.js';
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

/** GET/HEAD ?partNumber=N: part N's range (206), with the object's part count as S3 sends it. */
async function partRequest(ctx: OpContext, op: GetOp & { partNumber: number }, conditions: ReturnType<typeof parseReadConditions>): Promise<S3Result> {
  const v = await ctx.store.headObject(op.bucket, op.key, conditions);
  const r = await ctx.store.partRange(v, op.partNumber);
  const headers = withOverrides(versionHeaders(v, { checksum: false }), op);
  headers['Content-Range'] = `bytes ${r.start}-${r.end}/${v.size}`;
  if (v.partsCount) headers['x-amz-mp-parts-count'] = String(v.partsCount);
  const bodyLength = r.end - r.start + 1;
  if (op.op === 'HeadObject') return { status: 206, headers, bodyLength };
  // The part is read against the version its range was computed for: a concurrent overwrite fails cleanly.
  const got = await ctx.store.getObject(op.bucket, op.key, { range: r, conditions: { ifMatch: v.etag }, signal: ctx.signal, stallMs: stallMs(ctx) });
  return { status: 206, headers, body: got.body, bodyLength };
}

/**
 * How long a backend copy may stay silent (while the client wants bytes) before the read moves to the next
 * copy: half the idle timeout, so that failover happens before the client's own idle timer cuts the response.
 */
function stallMs(ctx: OpContext): number {
  return Math.max(500, Math.floor(ctx.config.idleTimeoutMs / 2));
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
    if (op.partNumber !== undefined) return await partRequest(ctx, { ...op, partNumber: op.partNumber }, conditions);
    const range = parseRange(h['range']);
    if (op.op === 'HeadObject') {
      const v = await ctx.store.headObject(op.bucket, op.key, conditions);
      // HEAD answers a Range like GET would (206, the range's length and Content-Range), without the body.
      const r = resolveRange(range, v.size);
      const headers = withOverrides(versionHeaders(v, { checksum: checksumMode && !r }), op);
      if (!r) return { status: 200, headers, bodyLength: v.size };
      headers['Content-Range'] = `bytes ${r.start}-${r.end}/${v.size}`;
      return { status: 206, headers, bodyLength: r.end - r.start + 1 };
    }
    const opts: Parameters<typeof ctx.store.getObject>[2] = { signal: ctx.signal, stallMs: stallMs(ctx) };
    if (range) opts.range = range;
    if (conditions) opts.conditions = conditions;
    const r = await ctx.store.getObject(op.bucket, op.key, opts);
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
