/**
 * S3 header parsing and formatting: Range, conditional headers, system headers, user metadata, and the
 * response headers of an object version. Parsing only: conditions are evaluated by core (ReadConditions).
 */
import type { ObjectVersion, RangeSpec, ReadConditions, SystemHeaders, WriteConditions } from '../core/types.js';
import { S3Error, invalidArgument } from './errors.js';

/** Content-Type S3 reports for objects stored without one. */
export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';
/** Largest single PUT S3 accepts (5 GiB). */
export const MAX_PUT_SIZE = 5 * 1024 ** 3;
/** S3's limit on user metadata: UTF-8 bytes of names (without `x-amz-meta-`) plus values. */
export const MAX_USER_META_BYTES = 2048;

type Headers = Readonly<Record<string, string>>;

/** RFC 7231 IMF-fixdate, as S3 sends Last-Modified. */
export function httpDate(d: Date): string {
  return d.toUTCString();
}

/** ISO 8601 with milliseconds, as S3 lists LastModified. */
export function isoDate(d: Date): string {
  return d.toISOString();
}

/** Parses an HTTP date; undefined when absent or invalid (S3 ignores invalid conditional dates). */
export function parseHttpDate(s: string | undefined): Date | undefined {
  if (s === undefined || s === '') return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** `"etag"` from a bare etag. */
export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

/**
 * Parses a Range header the way S3 does: one `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Syntax S3
 * ignores (other units, several ranges, a-b with b < a, garbage) yields undefined: the whole object is
 * served. Satisfiability against the object size is core's check (InvalidRange).
 */
export function parseRange(header: string | undefined): RangeSpec | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') return { suffix: Number(b) };
  const start = Number(a);
  if (!Number.isSafeInteger(start)) return undefined;
  if (b === '') return { start };
  const end = Number(b);
  if (!Number.isSafeInteger(end) || end < start) return undefined;
  return { start, end };
}

/**
 * Normalises an If-Match / If-None-Match value for core: `*` stays `*`; otherwise each entity tag of
 * the comma-separated list loses its quotes and weak prefix, joined with ','.
 */
export function normaliseEtagList(v: string): string {
  const t = v.trim();
  if (t === '*') return '*';
  return t
    .split(',')
    .map((e) => e.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter((e) => e !== '')
    .join(',');
}

/**
 * Conditional read headers (`If-*`, or `x-amz-copy-source-if-*` with that prefix). Undefined when none
 * is present.
 */
export function parseReadConditions(h: Headers, prefix = ''): ReadConditions | undefined {
  const c: ReadConditions = {};
  const im = h[`${prefix}if-match`];
  const inm = h[`${prefix}if-none-match`];
  if (im !== undefined) c.ifMatch = normaliseEtagList(im);
  if (inm !== undefined) c.ifNoneMatch = normaliseEtagList(inm);
  const ims = parseHttpDate(h[`${prefix}if-modified-since`]);
  const ius = parseHttpDate(h[`${prefix}if-unmodified-since`]);
  if (ims) c.ifModifiedSince = ims;
  if (ius) c.ifUnmodifiedSince = ius;
  return Object.keys(c).length > 0 ? c : undefined;
}

/** Conditional write headers: `If-None-Match: *` and `If-Match`. */
export function parseWriteConditions(h: Headers): WriteConditions | undefined {
  const c: WriteConditions = {};
  const inm = h['if-none-match'];
  if (inm !== undefined) {
    if (inm.trim() !== '*') throw new S3Error('NotImplemented', 'If-None-Match on writes supports only "*".');
    c.ifNoneMatchStar = true;
  }
  const im = h['if-match'];
  if (im !== undefined) c.ifMatch = normaliseEtagList(im);
  return Object.keys(c).length > 0 ? c : undefined;
}

/** True when the body is aws-chunked framed (decoded length comes from x-amz-decoded-content-length). */
export function isAwsChunked(h: Headers): boolean {
  const sha = h['x-amz-content-sha256'] ?? '';
  const enc = h['content-encoding'] ?? '';
  return sha.startsWith('STREAMING-') || enc.split(',').some((e) => e.trim().toLowerCase() === 'aws-chunked');
}

function parseLength(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) throw invalidArgument(name, v, `${name} is not a valid length.`);
  const n = Number(v.trim());
  if (!Number.isSafeInteger(n)) throw invalidArgument(name, v, `${name} is too large.`);
  return n;
}

/**
 * The decoded object size of a PUT: Content-Length, or x-amz-decoded-content-length for aws-chunked
 * bodies. Missing → MissingContentLength; over 5 GiB → EntityTooLarge.
 */
export function objectSizeOf(h: Headers): number {
  const size = isAwsChunked(h)
    ? parseLength(h['x-amz-decoded-content-length'], 'x-amz-decoded-content-length')
    : parseLength(h['content-length'], 'Content-Length');
  if (size === undefined) throw new S3Error('MissingContentLength');
  if (size > MAX_PUT_SIZE) {
    throw new S3Error('EntityTooLarge', undefined, { ProposedSize: String(size), MaxSizeAllowed: String(MAX_PUT_SIZE) });
  }
  return size;
}

/** System headers to store; `aws-chunked` is transport framing and is removed from Content-Encoding. */
export function systemHeadersOf(h: Headers): SystemHeaders {
  const out: SystemHeaders = {};
  const enc = h['content-encoding']
    ?.split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e.toLowerCase() !== 'aws-chunked')
    .join(',');
  if (h['content-type'] !== undefined) out.contentType = h['content-type'];
  if (enc) out.contentEncoding = enc;
  if (h['content-disposition'] !== undefined) out.contentDisposition = h['content-disposition'];
  if (h['content-language'] !== undefined) out.contentLanguage = h['content-language'];
  if (h['cache-control'] !== undefined) out.cacheControl = h['cache-control'];
  if (h['expires'] !== undefined) out.expires = h['expires'];
  return out;
}

/** `x-amz-meta-*` headers (names lower-cased, prefix removed); over 2 KB → MetadataTooLarge. */
export function userMetaOf(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of Object.entries(h)) {
    if (!k.startsWith('x-amz-meta-')) continue;
    const name = k.slice('x-amz-meta-'.length);
    out[name] = v;
    bytes += Buffer.byteLength(name) + Buffer.byteLength(v);
  }
  if (bytes > MAX_USER_META_BYTES) throw new S3Error('MetadataTooLarge', undefined, { Size: String(bytes), MaxSizeAllowed: String(MAX_USER_META_BYTES) });
  return out;
}

/** `response-*` query overrides of GetObject/HeadObject, by response header name. */
export const RESPONSE_OVERRIDES: Readonly<Record<string, string>> = {
  'response-content-type': 'Content-Type',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-cache-control': 'Cache-Control',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
};

/** Non-ASCII header values cannot travel raw; S3 sends them RFC 2047-encoded. */
function headerSafe(v: string): string {
  return /^[\x20-\x7e\t]*$/.test(v) ? v : `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

/**
 * Response headers describing a version (GET/HEAD): ETag, Last-Modified, Content-Type (default
 * binary/octet-stream), the stored system headers, user metadata, tagging count and, when asked for,
 * the checksum.
 */
export function versionHeaders(v: ObjectVersion, opts: { checksum: boolean }): Record<string, string> {
  const h: Record<string, string> = {
    // Empty only in a degraded read of an object whose ETag is unknown (core/degraded.ts): sent without one.
    ...(v.etag !== '' ? { ETag: quoteEtag(v.etag) } : {}),
    'Last-Modified': httpDate(v.lastModified),
    'Content-Type': v.contentType ?? DEFAULT_CONTENT_TYPE,
    'Accept-Ranges': 'bytes',
  };
  if (v.contentEncoding !== undefined) h['Content-Encoding'] = v.contentEncoding;
  if (v.contentDisposition !== undefined) h['Content-Disposition'] = v.contentDisposition;
  if (v.contentLanguage !== undefined) h['Content-Language'] = v.contentLanguage;
  if (v.cacheControl !== undefined) h['Cache-Control'] = v.cacheControl;
  if (v.expires !== undefined) h['Expires'] = v.expires;
  for (const [k, val] of Object.entries(v.userMeta)) h[`x-amz-meta-${k}`] = headerSafe(val);
  if (v.tagCount > 0) h['x-amz-tagging-count'] = String(v.tagCount);
  if (opts.checksum && v.checksum) Object.assign(h, checksumHeaders(v));
  return h;
}

/** `x-amz-checksum-<algo>` and `x-amz-checksum-type` for a stored checksum (PUT responses, GET with mode). */
export function checksumHeaders(v: ObjectVersion): Record<string, string> {
  if (!v.checksum) return {};
  return {
    [`x-amz-checksum-${v.checksum.algorithm.toLowerCase()}`]: v.checksum.value,
    'x-amz-checksum-type': v.checksum.type,
  };
}
