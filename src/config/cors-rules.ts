/**
 * The bucket CORS rule (S3's `<CORSRule>`) and its validation: a leaf of the configuration's vocabulary,
 * given in `buckets[].cors` (config), stored per bucket (core) and served by the S3 layer. Matching a
 * request against rules is core's (core/cors.ts).
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
