/**
 * SigV4 building blocks for S3: AWS URI encoding, the canonical request, the string to sign and the
 * derived signing key. Pure functions over bytes and strings; no knowledge of S3 errors.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The SigV4 algorithm name, first line of every string to sign. */
export const ALGORITHM = 'AWS4-HMAC-SHA256';
/** Hex SHA-256 of the empty string. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const HEX = '0123456789ABCDEF';

/** True for the bytes AWS leaves unencoded: A-Z a-z 0-9 - . _ ~ */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f ||
    b === 0x7e
  );
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Percent-decodes to raw bytes. A '%' not followed by two hex digits stays a literal '%', so a
 * malformed escape round-trips to `%25` instead of failing (the signature then decides). `+` is kept
 * as '+': S3 SigV4 clients encode spaces as %20, and form-style '+' would otherwise change meaning.
 */
export function percentDecode(s: string): Buffer {
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25 && i + 2 < src.length) {
      const hi = hexVal(src[i + 1]!);
      const lo = hexVal(src[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** AWS URI encoding of raw bytes: unreserved bytes kept, every other byte `%XX` upper-case. */
export function uriEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += isUnreserved(b) ? String.fromCharCode(b) : '%' + HEX[b >> 4]! + HEX[b & 15]!;
  }
  return out;
}

/** AWS URI encoding of a string (UTF-8), '/' included. */
export function uriEncode(s: string): string {
  return uriEncodeBytes(Buffer.from(s, 'utf8'));
}

/**
 * The canonical URI for S3: the raw path, each '/'-separated segment decoded and re-encoded with the
 * AWS rules. No normalisation (`//`, `.` and `..` stay) and no double encoding, as S3 does; decoding
 * first makes clients that leave e.g. `=` or `@` raw on the wire agree with those that escape them.
 */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return '/';
  return rawPath
    .split('/')
    .map((seg) => uriEncodeBytes(percentDecode(seg)))
    .join('/');
}

/** One query parameter, decoded. */
export interface QueryParam {
  name: string;
  value: string;
}

/** Splits a raw query into decoded parameters in wire order; empty pieces (`a&&b`) are skipped. */
export function parseQuery(rawQuery: string): QueryParam[] {
  const out: QueryParam[] = [];
  if (rawQuery === '') return out;
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const rawName = eq < 0 ? piece : piece.slice(0, eq);
    const rawValue = eq < 0 ? '' : piece.slice(eq + 1);
    out.push({ name: percentDecode(rawName).toString('utf8'), value: percentDecode(rawValue).toString('utf8') });
  }
  return out;
}

/**
 * The canonical query string: each name and value decoded then AWS-encoded, pairs sorted by encoded
 * name then encoded value, `=` always present. `exclude` drops a parameter (X-Amz-Signature).
 */
export function canonicalQuery(rawQuery: string, exclude?: string): string {
  const pairs: Array<[string, string]> = [];
  if (rawQuery !== '') {
    for (const piece of rawQuery.split('&')) {
      if (piece === '') continue;
      const eq = piece.indexOf('=');
      const nameBytes = percentDecode(eq < 0 ? piece : piece.slice(0, eq));
      if (exclude !== undefined && nameBytes.toString('utf8') === exclude) continue;
      const valueBytes = percentDecode(eq < 0 ? '' : piece.slice(eq + 1));
      pairs.push([uriEncodeBytes(nameBytes), uriEncodeBytes(valueBytes)]);
    }
  }
  // Encoded strings are ASCII, so code-unit order is byte order, as SigV4 requires.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** A header value as SigV4 canonicalises it: trimmed, inner whitespace runs collapsed to one space. */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/[ \t]+/g, ' ');
}

/** The canonical request (six lines) for the given signed header names (lower-case, sorted). */
export function canonicalRequest(
  method: string,
  rawPath: string,
  canonicalQueryString: string,
  headers: Readonly<Record<string, string>>,
  signedHeaders: readonly string[],
  payloadHash: string,
): string {
  let canonHeaders = '';
  for (const name of signedHeaders) canonHeaders += `${name}:${canonicalHeaderValue(headers[name] ?? '')}\n`;
  return [method, canonicalUri(rawPath), canonicalQueryString, canonHeaders, signedHeaders.join(';'), payloadHash].join(
    '\n',
  );
}

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** HMAC-SHA256. */
export function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** The string to sign for a request. */
export function stringToSign(amzDate: string, scope: string, canonicalRequestText: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequestText)}`;
}

const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, Buffer>();

/**
 * The SigV4 signing key for (secret, date, region, service), cached in a small bounded map. The secret
 * is part of the cache key so a rotated secret never reuses a stale key.
 */
export function signingKey(secret: string, date: string, region: string, service = 's3'): Buffer {
  const cacheKey = `${date}\0${region}\0${service}\0${secret}`;
  const hit = keyCache.get(cacheKey);
  if (hit !== undefined) return hit;
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const key = hmac(kService, 'aws4_request');
  if (keyCache.size >= KEY_CACHE_MAX) {
    const oldest = keyCache.keys().next().value;
    if (oldest !== undefined) keyCache.delete(oldest);
  }
  keyCache.set(cacheKey, key);
  return key;
}

/** Hex HMAC of the string to sign with the signing key. */
export function signHex(key: Buffer, toSign: string): string {
  return hmac(key, toSign).toString('hex');
}

/** Compares two hex signatures in constant time (lengths are not secret). */
export function constantTimeEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(provided, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
