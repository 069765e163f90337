/**
 * Bucket CORS as S3 does it: preflight OPTIONS answered from the bucket's rules without authentication,
 * Access-Control-* headers on actual requests whose Origin matches a rule (error responses included),
 * and Get/Put/DeleteBucketCors.
 */
import { CORS_METHODS, corsProblems, matchCors, type CorsRule } from '../../core/cors.js';
import type { TenantDirectory } from '../../core/types.js';
import { S3Error } from '../errors.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, opt, xmlDocument } from '../xml.js';
import { parseCorsConfiguration } from '../xml-requests.js';
import { checkContentMd5, readSmallBody, type OpContext } from './common.js';

/** S3 varies CORS answers on all three request headers it evaluates. */
const VARY = 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method';

/** A 100-rule configuration with long origin lists fits in this. */
const MAX_CORS_BODY = 256 * 1024;

/** The origin to echo: `*` when the rule allows any origin (then credentials are not allowed), else the origin. */
function allowOrigin(rule: CorsRule, origin: string): Record<string, string> {
  if (rule.allowedOrigins.includes('*')) return { 'Access-Control-Allow-Origin': '*' };
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true' };
}

function ruleHeaders(rule: CorsRule, origin: string): Record<string, string> {
  const h: Record<string, string> = { ...allowOrigin(rule, origin), 'Access-Control-Allow-Methods': rule.allowedMethods.join(', '), Vary: VARY };
  if (rule.exposeHeaders.length > 0) h['Access-Control-Expose-Headers'] = rule.exposeHeaders.join(', ');
  if (rule.maxAgeSeconds !== undefined) h['Access-Control-Max-Age'] = String(rule.maxAgeSeconds);
  return h;
}

/**
 * The CORS headers of an actual (non-preflight) response: empty unless the request has an Origin and a
 * rule of `rules` allows it with this method (HEAD requests match rules by their own method).
 */
export function corsResponseHeaders(rules: readonly CorsRule[] | undefined, origin: string | undefined, method: string): Record<string, string> {
  if (origin === undefined || rules === undefined) return {};
  const rule = matchCors(rules, origin, method.toUpperCase());
  return rule ? ruleHeaders(rule, origin) : {};
}

/** Header names of Access-Control-Request-Headers, lower-cased, empty entries dropped. */
export function requestedHeaders(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

/**
 * Answers a preflight OPTIONS from the rules of `rules` (undefined: the bucket is missing or has no CORS
 * configuration). Throws the S3Error S3 sends: BadRequest without Origin or Access-Control-Request-Method,
 * AccessForbidden when no rule allows the request.
 */
export function preflight(rules: readonly CorsRule[] | undefined, headers: Readonly<Record<string, string>>, hasKey: boolean): S3Result {
  const origin = headers['origin'];
  const method = headers['access-control-request-method'];
  const resourceType = hasKey ? 'OBJECT' : 'BUCKET';
  if (origin === undefined) throw new S3Error('BadRequest', 'Insufficient information. Origin request header needed.');
  if (method === undefined) throw new S3Error('BadRequest', 'Invalid Access-Control-Request-Method: null');
  if (!(CORS_METHODS as readonly string[]).includes(method.trim().toUpperCase())) {
    throw new S3Error('BadRequest', `Invalid Access-Control-Request-Method: ${method}`);
  }
  if (rules === undefined || rules.length === 0) {
    throw new S3Error('AccessForbidden', 'CORSResponse: CORS is not enabled for this bucket.', { Method: method, ResourceType: resourceType });
  }
  const asked = requestedHeaders(headers['access-control-request-headers']);
  const rule = matchCors(rules, origin, method.trim().toUpperCase(), asked);
  if (!rule) {
    throw new S3Error(
      'AccessForbidden',
      "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
      { Method: method, ResourceType: resourceType },
    );
  }
  const h = ruleHeaders(rule, origin);
  if (asked.length > 0) h['Access-Control-Allow-Headers'] = asked.join(', ');
  return { status: 200, headers: h };
}

/** The bucket's CORS rules, or undefined (missing bucket, no configuration, lookup failure). */
export async function bucketCors(tenants: TenantDirectory, bucket: string): Promise<CorsRule[] | undefined> {
  try {
    return (await tenants.getBucket(bucket))?.cors;
  } catch {
    return undefined;
  }
}

/** The three bucket CORS operations share one shape. */
type CorsOp = Extract<S3Op, { op: 'GetBucketCors' | 'PutBucketCors' | 'DeleteBucketCors' }>;

async function requireBucket(ctx: OpContext, bucket: string): Promise<CorsRule[] | undefined> {
  const b = await ctx.tenants.getBucket(bucket);
  if (!b) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
  return b.cors;
}

/** GetBucketCors: NoSuchCORSConfiguration when the bucket has none. */
export async function getBucketCors(ctx: OpContext, op: CorsOp): Promise<S3Result> {
  const rules = await requireBucket(ctx, op.bucket);
  if (!rules || rules.length === 0) throw new S3Error('NoSuchCORSConfiguration', undefined, { BucketName: op.bucket });
  const xml = rules.map((r) =>
    el('CORSRule', [
      opt('ID', r.id),
      ...r.allowedHeaders.map((h) => el('AllowedHeader', h)),
      ...r.allowedMethods.map((m) => el('AllowedMethod', m)),
      ...r.allowedOrigins.map((o) => el('AllowedOrigin', o)),
      ...r.exposeHeaders.map((h) => el('ExposeHeader', h)),
      opt('MaxAgeSeconds', r.maxAgeSeconds),
    ]),
  );
  return xmlResult(200, xmlDocument('CORSConfiguration', xml));
}

/** PutBucketCors: replaces the rules after S3's checks. */
export async function putBucketCors(ctx: OpContext, op: CorsOp): Promise<S3Result> {
  const { text, digests } = await readSmallBody(ctx, MAX_CORS_BODY);
  checkContentMd5(ctx, digests.md5);
  const rules = parseCorsConfiguration(text);
  for (const r of rules) {
    const bad = r.allowedMethods.find((m) => !(CORS_METHODS as readonly string[]).includes(m));
    if (bad !== undefined) throw new S3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${bad}`);
  }
  const problems = corsProblems(rules);
  if (problems.length > 0) throw new S3Error('InvalidRequest', `Invalid CORS configuration: ${problems.join('; ')}`);
  await requireBucket(ctx, op.bucket);
  await ctx.tenants.setBucketCors(op.bucket, rules);
  return { status: 200, headers: {} };
}

/** DeleteBucketCors: 204 whether or not a configuration existed. */
export async function deleteBucketCors(ctx: OpContext, op: CorsOp): Promise<S3Result> {
  await requireBucket(ctx, op.bucket);
  await ctx.tenants.setBucketCors(op.bucket, undefined);
  return { status: 204, headers: {} };
}
