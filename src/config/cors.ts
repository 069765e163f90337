import { corsProblems, type CorsRule } from './cors-rules.js';
import type { Checker } from './check.js';

const RULE_KEYS = ['id', 'allowed_origins', 'allowed_methods', 'allowed_headers', 'expose_headers', 'max_age_seconds'] as const;

function strings(c: Checker, v: unknown, path: string): string[] {
  return (c.list(v, path) ?? []).flatMap((item, i) => {
    const s = c.string(item, `${path}[${i}]`, { nonEmpty: true });
    return s === undefined ? [] : [s];
  });
}

/** Reads `buckets[i].cors`: undefined when absent (the bucket's stored CORS stays as it is). */
export function readCors(c: Checker, v: unknown, at: string): CorsRule[] | undefined {
  if (v === undefined || v === null) return undefined;
  const rules: CorsRule[] = [];
  (c.list(v, at) ?? []).forEach((item, i) => {
    const rat = `${at}[${i}]`;
    const m = c.mapping(item, rat, RULE_KEYS);
    if (m === undefined) return;
    const id = c.string(m.id, `${rat}.id`);
    let maxAge: number | undefined;
    if (m.max_age_seconds !== undefined) {
      if (typeof m.max_age_seconds === 'number' && Number.isInteger(m.max_age_seconds) && m.max_age_seconds >= 0) maxAge = m.max_age_seconds;
      else c.problem(`${rat}.max_age_seconds`, `must be a whole number of seconds, got ${JSON.stringify(m.max_age_seconds)}`);
    }
    const rule: CorsRule = {
      ...(id ? { id } : {}),
      allowedOrigins: strings(c, m.allowed_origins, `${rat}.allowed_origins`),
      allowedMethods: strings(c, m.allowed_methods, `${rat}.allowed_methods`).map((s) => s.toUpperCase()),
      allowedHeaders: strings(c, m.allowed_headers, `${rat}.allowed_headers`),
      exposeHeaders: strings(c, m.expose_headers, `${rat}.expose_headers`),
      ...(maxAge !== undefined ? { maxAgeSeconds: maxAge } : {}),
    };
    for (const p of corsProblems([rule])) c.problem(rat, p.replace(/^rule 0: /, ''));
    rules.push(rule);
  });
  return rules;
}
