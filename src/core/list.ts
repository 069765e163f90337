import type { Queryable } from '../meta/db.js';
import * as oq from '../meta/queries/objects.js';
import type { ListInput, ListResult } from './types.js';
import { run } from './writes.js';

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

/**
 * LIST over the live-key index. Without a delimiter it is one range scan. With one, each common prefix is
 * emitted once and the scan jumps past it (the next query starts at the prefix's successor), so a prefix
 * holding millions of keys costs one extra query, not a scan of its keys.
 */
export async function listObjects(q: Queryable, input: ListInput): Promise<ListResult> {
  const { bucket, prefix, delimiter, maxKeys } = input;
  const out: ListResult = { objects: [], commonPrefixes: [], isTruncated: false };
  if (maxKeys <= 0) return out;
  const upper = prefixSuccessor(prefix);
  let lower = prefix;
  let inclusive = true;
  if (input.after !== undefined && input.after >= prefix) {
    lower = input.after;
    inclusive = false;
  }
  const batch = Math.min(maxKeys + 1, 1001);
  let count = 0;
  for (;;) {
    if (upper !== undefined && lower >= upper) return out;
    const { rows } = await run<oq.VersionRow>(q, oq.selectListBatch({ bucket, lower, inclusive, upper, limit: batch }));
    let jumped = false;
    for (const row of rows) {
      const rest = row.key.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut >= 0) {
        const cp = prefix + rest.slice(0, cut + delimiter!.length);
        // A common prefix at or before the start point was returned on an earlier page.
        if (input.after === undefined || cp > input.after) {
          if (count === maxKeys) {
            out.isTruncated = true;
            return out;
          }
          out.commonPrefixes.push(cp);
          out.nextAfter = cp;
          count++;
        }
        const next = prefixSuccessor(cp);
        if (next === undefined) return out;
        lower = next;
        inclusive = true;
        jumped = true;
        break;
      }
      if (count === maxKeys) {
        out.isTruncated = true;
        return out;
      }
      out.objects.push(oq.rowToVersion(row));
      out.nextAfter = row.key;
      count++;
      lower = row.key;
      inclusive = false;
    }
    if (!jumped && rows.length < batch) return out;
  }
}
