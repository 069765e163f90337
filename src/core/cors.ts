/**
 * Bucket CORS: the rule type (S3's CORSConfiguration) and how a request is matched against it. Shared by
 * the config loader (rules from `buckets[].cors`), the S3 layer (preflight and response headers) and core
 * (stored per bucket in the database).
 */

/** One CORS rule, as in S3's `<CORSRule>`. */
export interface CorsRule {
  id?: string;
  /** Origins, each possibly with one `*` wildcard (`https://*.example.com`, or `*`). */
  allowedOrigins: string[];
  /** GET, PUT, POST, DELETE, HEAD. */
  allowedMethods: string[];
  /** Request headers a preflight may ask for, each possibly with one `*` wildcard; case-insensitive. */
  allowedHeaders: string[];
  /** Response headers the browser may expose to scripts. */
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

/** The methods S3 allows in AllowedMethod. */
export const CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'] as const;

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

/** Problems with a rule set (empty = valid), worded for S3's MalformedXML/InvalidRequest and for config errors. */
export function corsProblems(rules: readonly CorsRule[]): string[] {
  const out: string[] = [];
  if (rules.length > 100) out.push('at most 100 CORS rules are allowed');
  rules.forEach((r, i) => {
    if (r.allowedOrigins.length === 0) out.push(`rule ${i}: needs at least one allowed origin`);
    if (r.allowedMethods.length === 0) out.push(`rule ${i}: needs at least one allowed method`);
    for (const m of r.allowedMethods) {
      if (!(CORS_METHODS as readonly string[]).includes(m)) out.push(`rule ${i}: unsupported method "${m}" (use ${CORS_METHODS.join(', ')})`);
    }
    for (const o of r.allowedOrigins) if (o.split('*').length > 2) out.push(`rule ${i}: origin "${o}" has more than one wildcard`);
    for (const h of r.allowedHeaders) if (h.split('*').length > 2) out.push(`rule ${i}: header "${h}" has more than one wildcard`);
    if (r.maxAgeSeconds !== undefined && (!Number.isInteger(r.maxAgeSeconds) || r.maxAgeSeconds < 0)) {
      out.push(`rule ${i}: max age must be a whole number of seconds`);
    }
  });
  return out;
}
