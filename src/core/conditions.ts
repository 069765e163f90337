import { CoreError } from './errors.js';
import type { ObjectVersion, RangeSpec, ReadConditions, WriteConditions } from './types.js';

/** Compares an If-Match / If-None-Match list (`"a", "b"`, `*`, weak tags) with an ETag (without quotes). */
export function etagMatches(header: string, etag: string): boolean {
  return header.split(',').some((raw) => {
    const t = raw.trim().replace(/^W\//, '');
    return t === '*' || t.replace(/^"(.*)"$/, '$1') === etag;
  });
}

/** HTTP dates have one-second resolution; compare at that resolution. */
function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/**
 * Evaluates conditional GET/HEAD headers against a version with S3's precedence: If-Match beats
 * If-Unmodified-Since (412), If-None-Match beats If-Modified-Since (304).
 */
export function checkReadConditions(v: ObjectVersion, c: ReadConditions | undefined): void {
  if (!c) return;
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, v.etag)) throw new CoreError('PreconditionFailed', 'If-Match');
  } else if (c.ifUnmodifiedSince && seconds(v.lastModified) > seconds(c.ifUnmodifiedSince)) {
    throw new CoreError('PreconditionFailed', 'If-Unmodified-Since');
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, v.etag)) throw new CoreError('NotModified');
  } else if (c.ifModifiedSince && seconds(v.lastModified) <= seconds(c.ifModifiedSince)) {
    throw new CoreError('NotModified');
  }
}

/** Evaluates conditional-write headers against the current live version (undefined when absent). */
export function checkWriteConditions(live: ObjectVersion | undefined, c: WriteConditions | undefined): void {
  if (!c) return;
  if (c.ifNoneMatchStar && live) throw new CoreError('PreconditionFailed', 'If-None-Match');
  if (c.ifMatch !== undefined) {
    if (!live) throw new CoreError('NoSuchKey');
    if (!etagMatches(c.ifMatch, live.etag)) throw new CoreError('PreconditionFailed', 'If-Match');
  }
}

/**
 * Resolves a Range against the object size: undefined = whole object; throws InvalidRange when the range
 * does not overlap the object (any range of an empty object, as S3 answers 416 there too).
 */
export function resolveRange(spec: RangeSpec | undefined, size: number): { start: number; end: number } | undefined {
  if (!spec) return undefined;
  if ('suffix' in spec) {
    if (spec.suffix === 0 || size === 0) throw new CoreError('InvalidRange');
    return { start: Math.max(0, size - spec.suffix), end: size - 1 };
  }
  if (spec.start >= size) throw new CoreError('InvalidRange');
  const end = spec.end === undefined ? size - 1 : Math.min(spec.end, size - 1);
  if (end < spec.start) throw new CoreError('InvalidRange');
  return { start: spec.start, end };
}
