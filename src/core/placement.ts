import type { BackendRow } from '../meta/queries/backends.js';

/** How new objects are spread over backends (`placement.strategy`). */
export type PlacementStrategy = 'pack' | 'spread';

/**
 * Orders the backends that could take `size` more bytes, best first. The order is only a preference:
 * the reservation (an atomic conditional UPDATE) decides, so two writers racing for the last bytes of a
 * backend cannot both win — the loser moves on to the next candidate.
 *
 * - pack: configuration order (fill the first backend, then the next).
 * - spread: lowest (used + reserved) / quota first; an unlimited backend counts as ratio 0 and ties go
 *   to the one holding fewer bytes, then configuration order. Both figures are divided by the backend's
 *   weight (`backends.weight`, default 1), so a weight-2 backend is filled to twice the share.
 * A backend of weight 0 takes no new copies under either strategy.
 */
export function rankBackends(
  rows: readonly BackendRow[],
  configuredOrder: readonly string[],
  strategy: PlacementStrategy,
  size: number,
  exclude: ReadonlySet<string> = new Set(),
): string[] {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const eligible = configuredOrder.filter((name) => {
    const r = byName.get(name);
    if (!r || exclude.has(name) || !writable(r)) return false;
    return r.quota_bytes === 0 || r.used_bytes + r.reserved_bytes + size <= r.quota_bytes;
  });
  if (strategy === 'pack') return eligible;
  // A backend's weight scales its share: fill ratio and bytes held are compared per unit of weight.
  const ratio = (r: BackendRow) => (r.quota_bytes === 0 ? 0 : (r.used_bytes + r.reserved_bytes) / r.quota_bytes) / weightOf(r);
  const held = (r: BackendRow) => (r.used_bytes + r.reserved_bytes) / weightOf(r);
  const pos = new Map(configuredOrder.map((n, i) => [n, i]));
  return [...eligible].sort((a, b) => {
    const ra = byName.get(a)!;
    const rb = byName.get(b)!;
    return (
      ratio(ra) - ratio(rb) ||
      held(ra) - held(rb) ||
      pos.get(a)! - pos.get(b)!
    );
  });
}

/**
 * Only an active backend with a weight above 0 takes new copies (read_only, draining and removed ones, and
 * weight 0, do not).
 */
function writable(r: BackendRow): boolean {
  return (r.state === undefined || r.state === 'active') && weightOf(r) > 0;
}

/** `backends.weight` (schema 6); 1 for rows read without it. */
function weightOf(r: BackendRow): number {
  return r.weight ?? 1;
}

/** Room left on a backend; Infinity when it has no quota. */
function freeBytes(r: BackendRow): number {
  return r.quota_bytes === 0 ? Infinity : r.quota_bytes - r.used_bytes - r.reserved_bytes;
}

/**
 * Orders backends for a multipart upload, whose total size is unknown when it starts and whose parts must
 * all live on one backend (native multipart): the backend with the MOST free room first (unlimited ones
 * first, then configuration order), whatever the strategy — with `pack`, the first backend in order may
 * have only a few MiB left and the upload would fail part-way while others are empty. Only backends with
 * room for `minSize` (one minimum-size part) qualify.
 */
export function rankForMultipart(rows: readonly BackendRow[], configuredOrder: readonly string[], minSize: number): string[] {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const pos = new Map(configuredOrder.map((n, i) => [n, i]));
  return configuredOrder
    .filter((n) => {
      const r = byName.get(n);
      return r !== undefined && writable(r) && freeBytes(r) >= minSize;
    })
    .sort((a, b) => {
      const fa = freeBytes(byName.get(a)!);
      const fb = freeBytes(byName.get(b)!);
      if (fa !== fb) return fa === Infinity ? -1 : fb === Infinity ? 1 : fb - fa;
      return pos.get(a)! - pos.get(b)!;
    });
}

/**
 * The next backend to try for one more copy of a version: the first of `ranked` not yet tried whose zone
 * no chosen copy has (a backend without a zone is its own zone), else the first not yet tried at all —
 * copies go to distinct zones when they can, and to distinct backends always.
 */
export function nextTarget(
  ranked: readonly string[],
  tried: ReadonlySet<string>,
  chosenZones: ReadonlySet<string>,
  zoneOf: (name: string) => string | undefined,
): string | undefined {
  const open = ranked.filter((n) => !tried.has(n));
  return open.find((n) => !chosenZones.has(zoneKey(n, zoneOf(n)))) ?? open[0];
}

/** The zone a copy on `name` occupies for {@link nextTarget}. */
export function zoneKey(name: string, zone: string | undefined | null): string {
  return zone ?? `backend:${name}`;
}

/**
 * `ranked` reordered so that consecutive backends are in distinct zones while zones remain: zones take
 * turns (in the order of their best-ranked backend), each giving its next backend in rank order. The first
 * N of the result are the best-ranked backends spread over as many zones as possible.
 */
export function spreadZones(ranked: readonly string[], zoneOf: (name: string) => string | undefined): string[] {
  const groups = new Map<string, string[]>();
  for (const n of ranked) {
    const z = zoneKey(n, zoneOf(n));
    const g = groups.get(z);
    if (g) g.push(n);
    else groups.set(z, [n]);
  }
  const out: string[] = [];
  const lists = [...groups.values()];
  for (let i = 0; out.length < ranked.length; i++) for (const g of lists) if (i < g.length) out.push(g[i]!);
  return out;
}
