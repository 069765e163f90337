import type { Queryable } from '../meta/db.js';
import { selectListRange, selectListWalk, type ListRow, type ListWalkRow } from '../meta/queries/list.js';
import type { ListedObject, ListInput, ListResult, StoredChecksum } from './types.js';

/**
 * Compares two strings in code-point order, which is UTF-8 byte order: the order of the `COLLATE "C"`
 * key index and of S3 listings. JavaScript's `<` compares UTF-16 code units, which puts U+10000 and above
 * (surrogate pairs, 0xD800–0xDFFF) before U+E000–U+FFFF; this corrects exactly that case.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Move surrogates above U+E000–U+FFFF; the rest of the BMP keeps its order.
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The smallest string greater than every string that starts with `prefix`, in code-point order (which is
 * UTF-8 byte order, the order of the `COLLATE "C"` key index): drop trailing U+10FFFF, bump the last code
 * point. Undefined when no such bound exists (empty prefix, or all U+10FFFF).
 */
export function prefixSuccessor(prefix: string): string | undefined {
  const cps = [...prefix];
  while (cps.length) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last === 0x10ffff) continue;
    // Skip the surrogate block: those code points cannot appear in valid strings.
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    return cps.join('') + String.fromCodePoint(next);
  }
  return undefined;
}

/** Maps a listing row to the listing's domain type. */
export function listRowToObject(r: ListRow): ListedObject {
  const o: ListedObject = { key: r.key, size: r.size, etag: r.etag ?? '', lastModified: r.created_at };
  if (r.checksum_algorithm) {
    o.checksumAlgorithm = r.checksum_algorithm as StoredChecksum['algorithm'];
    o.checksumType = (r.checksum_type ?? 'FULL_OBJECT') as StoredChecksum['type'];
  }
  return o;
}

/** Where the next statement of a listing starts, and what has been collected. */
interface Page {
  out: ListResult;
  count: number;
  /** Inclusive lower bound of the rest; undefined when nothing can follow (no successor). */
  lower: string | undefined;
}

/**
 * The common prefix `key` rolls up into: the prefix plus the rest of the key up to and including the first
 * occurrence of the delimiter after the prefix; undefined when the rest holds no delimiter.
 */
export function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  const cut = key.indexOf(delimiter, prefix.length);
  return cut < 0 ? undefined : key.slice(0, cut + delimiter.length);
}

/**
 * Adds one entry, a key's row or a common prefix, unless the page is full: returns false (and marks the
 * page truncated) when it is. A common prefix at or before the start point was returned on an earlier page
 * and is skipped.
 */
function add(page: Page, maxKeys: number, after: string | undefined, entry: ListRow | string): boolean {
  const cp = typeof entry === 'string' ? entry : undefined;
  if (cp !== undefined && after !== undefined && compareKeys(cp, after) <= 0) return true;
  if (page.count === maxKeys) {
    page.out.isTruncated = true;
    return false;
  }
  page.count++;
  if (typeof entry === 'string') page.out.commonPrefixes.push(entry);
  else page.out.objects.push(listRowToObject(entry));
  page.out.nextAfter = typeof entry === 'string' ? entry : entry.key;
  return true;
}

/** With a delimiter, the first range scan reads at most this many rows (see {@link listObjects}). */
const FIRST_BATCH = 101;

/**
 * LIST over the live-key index, in at most three statements per page whatever the bucket's size:
 *
 * 1. a range scan (listing columns only). Without a delimiter it reads max-keys + 1 rows and is the page.
 *    With one, it reads at most {@link FIRST_BATCH} rows and rolls them up into common prefixes, skipping
 *    within the batch the rows under a prefix already emitted. A batch without any common prefix (a folder
 *    of files) is followed by one more range scan for the rest of the page;
 * 2. once a batch has met a common prefix and the page is not full, a skip scan from where the batch
 *    stopped ({@link selectListWalk}): one index probe per remaining entry, a common prefix costing one
 *    probe however many keys it holds.
 *
 * So a page of max-keys entries costs O(max-keys) rows and probes. Entries (keys and common prefixes
 * together) count against max-keys; IsTruncated is set exactly when one more entry exists.
 */
export async function listObjects(q: Queryable, input: ListInput): Promise<ListResult> {
  const { bucket, prefix, maxKeys } = input;
  const delimiter = input.delimiter === '' ? undefined : input.delimiter;
  const page: Page = { out: { objects: [], commonPrefixes: [], isTruncated: false }, count: 0, lower: prefix };
  if (maxKeys <= 0) return page.out;
  const after = input.after;
  const upper = prefixSuccessor(prefix);
  // An exclusive bound k is the inclusive bound k + U+0001: no key holds NUL (PostgreSQL text cannot).
  if (after !== undefined && compareKeys(after, prefix) >= 0) page.lower = after + '\u0001';
  const withUpper = upper !== undefined ? { upper } : {};
  const open = () => page.lower !== undefined && (upper === undefined || compareKeys(page.lower, upper) < 0);
  if (!open()) return page.out;

  const limit = maxKeys + 1;
  let rangeLimit = delimiter !== undefined ? Math.min(limit, FIRST_BATCH) : limit;
  for (;;) {
    const range = selectListRange({ bucket, lower: page.lower!, ...withUpper, limit: rangeLimit });
    const batch = (await q.query<ListRow>(range.text, range.values)).rows;
    let sawPrefix = false;
    let skipBelow: string | undefined; // rows below this bound roll up into the last common prefix
    for (const row of batch) {
      if (skipBelow !== undefined && compareKeys(row.key, skipBelow) < 0) continue;
      const cp = delimiter !== undefined ? commonPrefixOf(row.key, prefix, delimiter) : undefined;
      if (!add(page, maxKeys, after, cp ?? row)) return page.out;
      if (cp !== undefined) {
        sawPrefix = true;
        skipBelow = prefixSuccessor(cp);
        page.lower = skipBelow;
        if (skipBelow === undefined) return page.out;
      } else {
        page.lower = row.key + '\u0001';
      }
    }
    // A short batch is the end of the listing (a full page returned from inside the loop).
    if (batch.length < rangeLimit || delimiter === undefined || !open()) return page.out;
    if (sawPrefix) break;
    rangeLimit = limit - page.count;
  }

  const walk = selectListWalk({ bucket, lower: page.lower!, ...withUpper, limit: limit - page.count, prefixChars: [...prefix].length, delimiter });
  for (const row of (await q.query<ListWalkRow>(walk.text, walk.values)).rows) {
    if (!add(page, maxKeys, after, row.common_prefix !== null ? row.common_prefix : row)) return page.out;
  }
  return page.out;
}
