/**
 * Pure parsing helpers of the router: query strings, path decoding, bucket names and the numeric and
 * encoding parameters of listings and multipart requests. Errors are the S3Errors S3 answers.
 */
import { S3Error, invalidArgument } from './errors.js';

/** Default and largest max-keys (max-parts, max-uploads) of a listing. */
export const MAX_LIST_KEYS = 1000;
/** Highest part number of a multipart upload. */
export const MAX_PARTS = 10000;

/** Decodes a query component: `+` is a space, as in form encoding; bad escapes are InvalidURI. */
export function decodeQueryComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch (err) {
    throw new S3Error('InvalidURI', undefined, {}, { cause: err });
  }
}

/** Parses a raw query string; the first occurrence of a repeated parameter wins. */
export function parseQuery(rawQuery: string): Map<string, string> {
  const q = new Map<string, string>();
  if (rawQuery === '') return q;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeQueryComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeQueryComponent(part.slice(eq + 1));
    if (!q.has(k)) q.set(k, v);
  }
  return q;
}

/** Percent-decodes a path exactly once; `+` stays a plus. Invalid escapes or UTF-8 → InvalidURI. */
export function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch (err) {
    throw new S3Error('InvalidURI', undefined, {}, { cause: err });
  }
}

/** S3 bucket naming rules (the strict, current ones). */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !name.includes('.-') &&
    !name.includes('-.') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias')
  );
}

/** A non-negative integer query parameter (max-keys, max-parts, ...), capped at 1000; absent → 1000. */
export function maxOf(q: Map<string, string>, name: string): number {
  const v = q.get(name);
  if (v === undefined) return MAX_LIST_KEYS;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > 2 ** 31 - 1) {
    throw invalidArgument(name, v, `Provided ${name} not an integer or within integer range`);
  }
  return Math.min(n, MAX_LIST_KEYS);
}

/** `max-keys` of an object listing. */
export function maxKeysOf(q: Map<string, string>): number {
  return maxOf(q, 'max-keys');
}

/** `partNumber`: an integer from 1 to 10000. */
export function partNumberOf(q: Map<string, string>): number {
  const v = q.get('partNumber') ?? '';
  const n = Number(v);
  if (!/^\d{1,5}$/.test(v) || n < 1 || n > MAX_PARTS) {
    throw invalidArgument('partNumber', v, 'Part number must be an integer between 1 and 10000, inclusive');
  }
  return n;
}

/** `encoding-type`: only `url` is known; true when present. */
export function encodingOf(q: Map<string, string>): boolean {
  const enc = q.get('encoding-type');
  if (enc !== undefined && enc.toLowerCase() !== 'url') throw invalidArgument('encoding-type', enc, 'Invalid Encoding Method specified in Request');
  return enc !== undefined;
}

