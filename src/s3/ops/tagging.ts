/**
 * Object tagging: Get/Put/DeleteObjectTagging, the `x-amz-tagging` header of PutObject, CopyObject and
 * CreateMultipartUpload, and S3's tag limits (10 tags, keys up to 128 and values up to 256 Unicode
 * characters, unique keys, no `aws:` prefix, S3's character set), reported as InvalidTag.
 */
import { S3Error, invalidArgument } from '../errors.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, xmlDocument } from '../xml.js';
import { parseTagging } from '../xml-requests.js';
import { checkContentMd5, readSmallBody, type OpContext } from './common.js';

/** Most tags an object may carry. */
export const MAX_TAGS = 10;
/** Longest tag key and value, in Unicode characters (code points). */
export const MAX_TAG_KEY_CHARS = 128;
export const MAX_TAG_VALUE_CHARS = 256;

/** Letters, digits, white space and `+ - = . _ : / @`, S3's allowed tag characters. */
const TAG_CHARS = /^[\p{L}\p{N}\p{Z}\s+\-=._:/@]*$/u;

function invalidTag(message: string): S3Error {
  return new S3Error('InvalidTag', message);
}

/** Checks a tag set against S3's limits and returns it as a record; throws InvalidTag with S3's wording. */
export function validateTags(pairs: readonly (readonly [string, string])[]): Record<string, string> {
  if (pairs.length > MAX_TAGS) throw invalidTag('Object tags cannot be greater than 10');
  const out: Record<string, string> = {};
  for (const [key, value] of pairs) {
    if ([...key].length > MAX_TAG_KEY_CHARS) throw invalidTag('The TagKey you have provided is too long, max 128');
    if ([...value].length > MAX_TAG_VALUE_CHARS) throw invalidTag('The TagValue you have provided is too long, max 256');
    if (key === '' || !TAG_CHARS.test(key)) throw invalidTag('The TagKey you have provided is invalid');
    if (!TAG_CHARS.test(value)) throw invalidTag('The TagValue you have provided is invalid');
    if (key.toLowerCase().startsWith('aws:')) throw invalidTag('Your TagKey cannot be prefixed with aws:');
    if (Object.hasOwn(out, key)) throw invalidTag('Cannot provide multiple Tags with the same key');
    out[key] = value;
  }
  return out;
}

/**
 * Reads `x-amz-tagging` (URL query form, `k1=v1&k2=v2`); undefined when absent. A malformed encoding is
 * InvalidArgument as in S3; limits are InvalidTag.
 */
export function taggingHeaderOf(h: Readonly<Record<string, string>>): Record<string, string> | undefined {
  const raw = h['x-amz-tagging'];
  if (raw === undefined) return undefined;
  const pairs: [string, string][] = [];
  try {
    for (const part of raw.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      pairs.push(eq < 0 ? [dec(part), ''] : [dec(part.slice(0, eq)), dec(part.slice(eq + 1))]);
    }
  } catch (err) {
    throw new S3Error(
      'InvalidArgument',
      "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
      { ArgumentName: 'x-amz-tagging', ArgumentValue: raw },
      { cause: err },
    );
  }
  return validateTags(pairs);
}

/** x-amz-tagging-directive: COPY (default) or REPLACE. */
export function taggingDirectiveOf(h: Readonly<Record<string, string>>): 'COPY' | 'REPLACE' {
  const raw = h['x-amz-tagging-directive'];
  const d = (raw ?? 'COPY').toUpperCase();
  if (d !== 'COPY' && d !== 'REPLACE') throw invalidArgument('x-amz-tagging-directive', raw ?? '', 'Unknown tagging directive.');
  return d;
}

/** The three tagging operations share one shape. */
type TagOp = Extract<S3Op, { op: 'GetObjectTagging' | 'PutObjectTagging' | 'DeleteObjectTagging' }>;

/** 10 tags of 128 + 256 characters, escaped, fit well within this. */
const MAX_TAGGING_BODY = 64 * 1024;

/** GetObjectTagging: the tag set of the live version (empty when untagged). */
export async function getObjectTagging(ctx: OpContext, op: TagOp): Promise<S3Result> {
  const tags = await ctx.store.getTagging(op.bucket, op.key);
  const set = Object.entries(tags).map(([k, v]) => el('Tag', [el('Key', k), el('Value', v)]));
  return xmlResult(200, xmlDocument('Tagging', [el('TagSet', set)]));
}

/** PutObjectTagging: replaces the tag set. */
export async function putObjectTagging(ctx: OpContext, op: TagOp): Promise<S3Result> {
  const { text, digests } = await readSmallBody(ctx, MAX_TAGGING_BODY);
  checkContentMd5(ctx, digests.md5);
  const tags = validateTags(parseTagging(text));
  await ctx.store.putTagging(op.bucket, op.key, tags);
  return { status: 200, headers: {} };
}

/** DeleteObjectTagging: 204, also for an object without tags. */
export async function deleteObjectTagging(ctx: OpContext, op: TagOp): Promise<S3Result> {
  await ctx.store.deleteTagging(op.bucket, op.key);
  return { status: 204, headers: {} };
}
