/**
 * The reading half of config/load.ts: typed getters over the parsed YAML tree that expand `${ENV}`
 * references, record every problem with its key path instead of throwing at the first, and reject
 * unknown keys with a did-you-mean suggestion. Kept apart so load.ts reads as the list of keys.
 */
import { parseDuration, parseSize } from './units.js';

/** One thing wrong with a configuration, at a key path such as `backends[2].quota_bytes`. */
export interface ConfigProblem {
  /** Dotted key path with list indexes (`buckets[0].credentials[1].access_key_id`); '' for the whole file. */
  readonly path: string;
  /** What is wrong, phrased to follow the path (`must be "s3" or "fs", got "gcs"`). */
  readonly message: string;
}

/** Environment used for `${VAR}` expansion. */
export type Env = Readonly<Record<string, string | undefined>>;

/** `parent.key`, or `key` at the top level. */
export function keyPath(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** A value as it appears in an error message. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

/** Edit distance counting a swap of two neighbouring letters as one edit (the commonest typo). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known key closest to `key`, if any is close enough to be a plausible typo: the snake_case
 * spelling of a camelCase key, a case-insensitive match, or an edit distance of at most 1 (2 for
 * keys of 8 letters or more).
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toLowerCase();
  const exact = known.find((k) => k === snake);
  if (exact) return exact;
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(snake, k);
    const limit = k.length >= 8 ? 2 : 1;
    if (d <= limit && d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

/** Collects problems while reading a configuration tree. */
export class Checker {
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly env: Env) {}

  /** Records a problem at `path`. */
  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /**
   * `v` as a mapping whose keys must all be in `known`; unknown keys are reported (and ignored).
   * Undefined when absent (`v === undefined`) or not a mapping (reported).
   */
  mapping(v: unknown, path: string, known: readonly string[], what = 'key'): Record<string, unknown> | undefined {
    if (v === undefined) return undefined;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.problem(path, `must be a mapping of keys to values, got ${describe(v)}`);
      return undefined;
    }
    const obj = v as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const hint = suggestKey(key, known);
      const list = known.map((k) => `"${k}"`).join(', ');
      this.problem(
        keyPath(path, key),
        hint ? `unknown ${what} (did you mean "${hint}"?)` : `unknown ${what} (known: ${list})`,
      );
    }
    return obj;
  }

  /** `v` as a list; undefined when absent or not a list (reported). */
  list(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.problem(path, `must be a list, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /**
   * `v` as a string with `${VAR}`, `${VAR:-default}` expanded (`$${` is a literal `${`).
   * Numbers are not accepted: YAML turns `bucket: 2024` into a number, and quoting it is clearer
   * than silently converting. Undefined when absent or wrong (reported).
   */
  string(v: unknown, path: string, opts: { required?: boolean; nonEmpty?: boolean } = {}): string | undefined {
    if (v === undefined) {
      if (opts.required) this.problem(path, 'is required');
      return undefined;
    }
    if (typeof v !== 'string') {
      const quote = typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: "${String(v)}")` : '';
      this.problem(path, `must be a string, got ${describe(v)}${quote}`);
      return undefined;
    }
    const s = this.expand(v, path);
    if (s === undefined) return undefined;
    if ((opts.required || opts.nonEmpty) && s === '') {
      this.problem(path, 'must not be empty');
      return undefined;
    }
    return s;
  }

  /** `v` as a boolean; `"true"`/`"false"` are accepted only when they came from `${VAR}` expansion. */
  bool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || typeof v === 'boolean') return v;
    if (typeof v === 'string' && v.includes('${')) {
      const s = this.expand(v, path);
      if (s === undefined) return undefined;
      if (s === 'true' || s === 'false') return s === 'true';
      this.problem(path, `must be true or false, got ${describe(s)} from the environment`);
      return undefined;
    }
    this.problem(path, `must be true or false, got ${describe(v)}`);
    return undefined;
  }

  /** `v` as a byte size (see units.ts); strings are env-expanded first. */
  size(v: unknown, path: string): number | undefined {
    return this.unit(v, path, parseSize);
  }

  /** `v` as a duration in ms (see units.ts); strings are env-expanded first. */
  duration(v: unknown, path: string): number | undefined {
    return this.unit(v, path, parseDuration);
  }

  private unit(v: unknown, path: string, parse: (v: unknown) => number): number | undefined {
    if (v === undefined) return undefined;
    const value = typeof v === 'string' ? this.expand(v, path) : v;
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (e) {
      this.problem(path, (e as Error).message);
      return undefined;
    }
  }

  /** Expands environment references in `s`; undefined (with problems recorded) if any is unusable. */
  expand(s: string, path: string): string | undefined {
    let out = '';
    let ok = true;
    let i = 0;
    while (i < s.length) {
      const at = s.indexOf('$', i);
      if (at < 0) break;
      out += s.slice(i, at);
      if (s.startsWith('$${', at)) {
        out += '${';
        i = at + 3;
        continue;
      }
      if (s[at + 1] !== '{') {
        out += '$';
        i = at + 1;
        continue;
      }
      const close = s.indexOf('}', at);
      if (close < 0) {
        this.problem(path, `has an unterminated "\${" (write "$\${" for a literal "\${")`);
        return undefined;
      }
      const ref = s.slice(at + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(ref);
      if (!m) {
        this.problem(path, `has an invalid reference "\${${ref}}" (use \${NAME} or \${NAME:-default})`);
        ok = false;
      } else {
        const [, name, fallback] = m as unknown as [string, string, string | undefined];
        const value = this.env[name];
        // Like the shell's ${NAME:-default}: an empty variable also takes the default.
        if (fallback !== undefined && (value === undefined || value === '')) out += fallback;
        else if (value !== undefined) out += value;
        else {
          this.problem(path, `environment variable ${name} is not set (use \${${name}:-default} for a default)`);
          ok = false;
        }
      }
      i = close + 1;
    }
    return ok ? out + s.slice(i) : undefined;
  }
}
