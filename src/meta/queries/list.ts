/**
 * LIST queries over the partial unique index `object_versions_live (bucket, key) WHERE state = 'live'`.
 * Keys are `COLLATE "C"`, so the index is in UTF-8 byte order (= code-point order), S3's listing order.
 * Both statements select only what a listing shows (no user metadata, no system headers).
 */
import type { Sql } from '../db.js';

/** One key of a listing with its listing columns. */
export interface ListRow {
  key: string;
  size: number;
  etag: string | null;
  checksum_algorithm: string | null;
  checksum_type: string | null;
  created_at: Date;
}

/** One entry of the skip scan: a common prefix (its other columns NULL), or a key (common_prefix NULL). */
export type ListWalkRow = { common_prefix: string } | (ListRow & { common_prefix: null });

const LIST_COLUMNS = `v.key, v.size, v.etag, v.checksum_algorithm, v.checksum_type, v.created_at`;

/** Bounds of a listing: keys ≥ `lower` and, when `upper` is set, < `upper`. */
export interface ListBounds {
  bucket: string;
  /** Inclusive lower bound (an exclusive bound `k` is passed as `k || U+0001`: text never holds NUL). */
  lower: string;
  /** Exclusive upper bound: the successor of the prefix; absent when every key ≥ lower qualifies. */
  upper?: string;
  limit: number;
}

/** Without a delimiter: one range scan of the index, `limit` rows in key order. */
export function selectListRange(b: ListBounds): Sql {
  const values: unknown[] = [b.bucket, b.lower, b.limit];
  let upper = '';
  if (b.upper !== undefined) {
    values.push(b.upper);
    upper = ` AND v.key < $4`;
  }
  return {
    text: `SELECT ${LIST_COLUMNS} FROM object_versions v
           WHERE v.bucket = $1 AND v.state = 'live' AND v.key >= $2${upper}
           ORDER BY v.key LIMIT $3`,
    values,
  };
}

/** A key's listing columns, NULL for a common prefix: decoding them (timestamps above all) costs the client. */
const WALK_OUTPUT = ['key', 'size', 'etag', 'checksum_algorithm', 'checksum_type', 'created_at']
  .map((c) => `CASE WHEN common_prefix IS NULL THEN ${c} END AS ${c}`)
  .join(', ');

/**
 * With a delimiter: a skip scan in ONE statement. A recursive CTE probes the index once per listing entry
 * (ORDER BY key LIMIT 1 from a lower bound): after a plain key the next probe starts just above it
 * (`key || U+0001`); after a key that rolls up into a common prefix, it starts at the prefix's successor,
 * so a common prefix costs one probe whatever the number of keys under it. At most `limit` entries.
 *
 * The common prefix of a key is the prefix plus the key's rest up to and including the first occurrence
 * of the delimiter in the rest (character positions: `prefixChars` is the prefix's length in code points).
 * The successor of a common prefix: drop trailing U+10FFFF, then bump the last code point (skipping the
 * surrogate block, which cannot occur in text); none when nothing is left.
 */
export function selectListWalk(b: ListBounds & { prefixChars: number; delimiter: string }): Sql {
  const values: unknown[] = [b.bucket, b.lower, b.prefixChars, b.delimiter, b.limit];
  let upper = '';
  if (b.upper !== undefined) {
    values.push(b.upper);
    upper = ` AND v.key < $6`;
  }
  return {
    text: `WITH RECURSIVE walk (n, key, size, etag, checksum_algorithm, checksum_type, created_at, common_prefix, next_lower) AS (
             SELECT 0, NULL::text COLLATE "C", NULL::int8, NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::text COLLATE "C", $2::text COLLATE "C"
             UNION ALL
             SELECT w.n + 1, p.key, p.size, p.etag, p.checksum_algorithm, p.checksum_type, p.created_at, c.cp,
                    CASE WHEN c.cp IS NULL THEN p.key || chr(1)
                         WHEN s.t = '' THEN NULL
                         ELSE left(s.t, -1) || chr(CASE ascii(right(s.t, 1)) WHEN 55295 THEN 57344 ELSE ascii(right(s.t, 1)) + 1 END)
                    END COLLATE "C"
             FROM walk w
             CROSS JOIN LATERAL (
               SELECT ${LIST_COLUMNS} FROM object_versions v
               WHERE v.bucket = $1 AND v.state = 'live' AND v.key >= w.next_lower${upper}
               ORDER BY v.key LIMIT 1) p
             CROSS JOIN LATERAL (SELECT strpos(substr(p.key, $3 + 1), $4) AS i) d
             CROSS JOIN LATERAL (SELECT CASE WHEN d.i > 0 THEN left(p.key, $3 + d.i + length($4) - 1) END AS cp) c
             CROSS JOIN LATERAL (SELECT rtrim(c.cp, chr(1114111)) AS t) s
             WHERE w.n < $5 AND w.next_lower IS NOT NULL
           )
           SELECT common_prefix, ${WALK_OUTPUT} FROM walk WHERE n > 0 ORDER BY n`,
    values,
  };
}
