/**
 * Byte sizes and durations as people write them in configuration files.
 *
 * Both parsers are exact: they work on the decimal digits with BigInt instead of floating point, so
 * `1.1 KB` is 1100 bytes (not 1100.0000000000002) and a value that would need a fraction of a byte or
 * of a millisecond is rejected instead of silently rounded. Errors are plain `Error`s whose message
 * says what is wrong with the value; config/load.ts prefixes the file and key path.
 */

/** Multipliers by unit. SI units are powers of 1000 and IEC units powers of 1024, exactly. */
const SIZE_UNITS: ReadonlyMap<string, bigint> = new Map([
  ['b', 1n],
  ['kb', 1000n],
  ['mb', 1000n ** 2n],
  ['gb', 1000n ** 3n],
  ['tb', 1000n ** 4n],
  ['pb', 1000n ** 5n],
  ['kib', 1024n],
  ['mib', 1024n ** 2n],
  ['gib', 1024n ** 3n],
  ['tib', 1024n ** 4n],
  ['pib', 1024n ** 5n],
]);

/** Duration units in the only order they may appear in (largest first), as ms multipliers. */
const DURATION_UNITS: readonly (readonly [string, bigint])[] = [
  ['d', 86_400_000n],
  ['h', 3_600_000n],
  ['m', 60_000n],
  ['s', 1_000n],
  ['ms', 1n],
];

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** `value * multiplier` for a decimal string, or undefined when the product is not a whole number. */
function scaleDecimal(digits: string, multiplier: bigint): bigint | undefined {
  const [whole, frac = ''] = digits.split('.');
  const scaled = BigInt(whole + frac) * multiplier;
  const divisor = 10n ** BigInt(frac.length);
  return scaled % divisor === 0n ? scaled / divisor : undefined;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

/**
 * Parses a byte size: a non-negative integer number, or a string such as `10GiB`, `500MB`, `1.5 GB`,
 * `512KiB`, `100B`, `1024` or `0`. Units are case-insensitive; `KB`/`MB`/`GB`/`TB`/`PB` are SI (1000)
 * and `KiB`/`MiB`/`GiB`/`TiB`/`PiB` are IEC (1024). Bare `K`/`M`/`G` are rejected as ambiguous.
 * @throws Error for negatives, fractions of a byte, values above 2^53-1 and anything else.
 */
export function parseSize(v: unknown): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0 || !Number.isInteger(v)) {
      throw new Error(`must be a whole, non-negative number of bytes, got ${v}`);
    }
    if (v > Number.MAX_SAFE_INTEGER) throw new Error(`is too large (${v} bytes)`);
    return v;
  }
  if (typeof v !== 'string') {
    throw new Error(`must be a size such as "10GiB" or "500MB", got ${describe(v)}`);
  }
  const m = /^\s*(-?)(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(v);
  if (!m) throw new Error(`must be a size such as "10GiB" or "500MB", got ${describe(v)}`);
  const [, minus, digits, unitRaw] = m as unknown as [string, string, string, string];
  if (minus) throw new Error(`must not be negative, got ${describe(v)}`);
  const unit = unitRaw.toLowerCase();
  const multiplier = unit === '' ? 1n : SIZE_UNITS.get(unit);
  if (multiplier === undefined) {
    const hint = ['k', 'm', 'g', 't', 'p'].includes(unit)
      ? ` (write "${unitRaw}B" for powers of 1000 or "${unitRaw}iB" for powers of 1024)`
      : ' (units: B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)';
    throw new Error(`has an unknown unit "${unitRaw}"${hint}, got ${describe(v)}`);
  }
  const bytes = scaleDecimal(digits, multiplier);
  if (bytes === undefined) throw new Error(`is not a whole number of bytes, got ${describe(v)}`);
  if (bytes > MAX_SAFE) throw new Error(`is too large, got ${describe(v)}`);
  return Number(bytes);
}

/**
 * Parses a duration into milliseconds: `250ms`, `30s`, `5m`, `1h`, `7d`, `1.5h`, or compounds such as
 * `1h30m` / `1h 30m 15s` (units largest first, each at most once). `0` (number or string) is zero.
 * Any other bare number is rejected rather than guessed at: `timeout: 60` could mean seconds or
 * milliseconds, and a wrong guess is off by a factor of 1000.
 * @throws Error for negatives, unknown units, fractions of a millisecond and anything else.
 */
export function parseDuration(v: unknown): number {
  if (v === 0 || v === '0') return 0;
  if (typeof v === 'number') {
    throw new Error(`needs a unit, e.g. "${v}s" or "${v}ms", got the bare number ${v}`);
  }
  if (typeof v !== 'string') {
    throw new Error(`must be a duration such as "30s", "5m" or "1h30m", got ${describe(v)}`);
  }
  const text = v.trim();
  if (text.startsWith('-')) throw new Error(`must not be negative, got ${describe(v)}`);
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    throw new Error(`needs a unit, e.g. "${text}s" or "${text}ms", got ${describe(v)}`);
  }
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;
  let total = 0n;
  let lastRank = -1;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const [, digits, unit] = m as unknown as [string, string, string];
    const rank = DURATION_UNITS.findIndex(([u]) => u === unit);
    if (rank < 0) {
      throw new Error(`has an unknown unit "${unit}" (units: ms, s, m, h, d), got ${describe(v)}`);
    }
    if (rank <= lastRank) {
      throw new Error(`must list units largest first, each once (e.g. "1h30m"), got ${describe(v)}`);
    }
    lastRank = rank;
    const ms = scaleDecimal(digits, DURATION_UNITS[rank]![1]);
    if (ms === undefined) throw new Error(`is not a whole number of milliseconds, got ${describe(v)}`);
    total += ms;
    consumed = re.lastIndex;
  }
  if (lastRank < 0 || consumed !== text.length) {
    throw new Error(`must be a duration such as "30s", "5m" or "1h30m", got ${describe(v)}`);
  }
  if (total > MAX_SAFE) throw new Error(`is too large, got ${describe(v)}`);
  return Number(total);
}

/**
 * Formats a byte count for people: exact SI or IEC units when the count is a whole multiple
 * (`10 GB`, `512 KiB`), otherwise two decimals in IEC units (`1.23 GiB`).
 */
export function formatSize(bytes: number): string {
  if (bytes === 0) return '0 B';
  const si = ['PB', 'TB', 'GB', 'MB', 'KB'] as const;
  const iec = ['PiB', 'TiB', 'GiB', 'MiB', 'KiB'] as const;
  for (let i = 0; i < si.length; i++) {
    const siDiv = 1000 ** (si.length - i);
    const iecDiv = 1024 ** (iec.length - i);
    if (bytes % siDiv === 0) return `${bytes / siDiv} ${si[i]}`;
    if (bytes % iecDiv === 0) return `${bytes / iecDiv} ${iec[i]}`;
  }
  for (let i = 0; i < iec.length; i++) {
    const div = 1024 ** (iec.length - i);
    if (bytes >= div) return `${(bytes / div).toFixed(2)} ${iec[i]}`;
  }
  return `${bytes} B`;
}

/** Formats milliseconds in the units parseDuration reads, largest first (`1h30m`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = BigInt(ms);
  let out = '';
  for (const [unit, mult] of DURATION_UNITS) {
    const n = rest / mult;
    if (n > 0n) out += `${n}${unit}`;
    rest %= mult;
  }
  return out;
}
