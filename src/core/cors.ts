/**
 * Bucket CORS: how a request is matched against a bucket's rules. The rule type and its validation live in
 * config/cors-rules.ts (the config loader, core and the S3 layer share them); they are re-exported here.
 */
import type { CorsRule } from '../config/cors-rules.js';

export { CORS_METHODS, corsProblems, type CorsRule } from '../config/cors-rules.js';

/** Matches a value against a pattern with at most one `*` wildcard (S3's rule). */
export function wildcardMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  const p = caseInsensitive ? pattern.toLowerCase() : pattern;
  const v = caseInsensitive ? value.toLowerCase() : value;
  const star = p.indexOf('*');
  if (star < 0) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

/**
 * The first rule that allows `origin` with `method` and every header in `requestHeaders` (the preflight's
 * Access-Control-Request-Headers), or undefined.
 */
export function matchCors(
  rules: readonly CorsRule[] | undefined,
  origin: string,
  method: string,
  requestHeaders: readonly string[] = [],
): CorsRule | undefined {
  return rules?.find(
    (r) =>
      r.allowedOrigins.some((o) => wildcardMatch(o, origin)) &&
      r.allowedMethods.includes(method) &&
      requestHeaders.every((h) => r.allowedHeaders.some((a) => wildcardMatch(a, h, true))),
  );
}
