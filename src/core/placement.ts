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
 *   to the one holding fewer bytes, then configuration order.
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
    if (!r || exclude.has(name)) return false;
    return r.quota_bytes === 0 || r.used_bytes + r.reserved_bytes + size <= r.quota_bytes;
  });
  if (strategy === 'pack') return eligible;
  const ratio = (r: BackendRow) => (r.quota_bytes === 0 ? 0 : (r.used_bytes + r.reserved_bytes) / r.quota_bytes);
  const pos = new Map(configuredOrder.map((n, i) => [n, i]));
  return [...eligible].sort((a, b) => {
    const ra = byName.get(a)!;
    const rb = byName.get(b)!;
    return (
      ratio(ra) - ratio(rb) ||
      ra.used_bytes + ra.reserved_bytes - (rb.used_bytes + rb.reserved_bytes) ||
      pos.get(a)! - pos.get(b)!
    );
  });
}
