/**
 * The zone test (Gibbons & Korach; Golab, Li & Shah) for the values of one key. A value's cluster is its
 * write and the reads that returned it; its zone runs from the earliest end in the cluster (the value had
 * taken effect by then) to the latest start (it was still current after that). When the earliest end comes
 * first, the zone is "forward": the value was current over the whole interval, so no other value may have
 * been current inside it — two forward zones must not overlap, and no other cluster may fit entirely inside
 * one (its write would have taken effect in the middle). With unique values this is exact for the writes
 * and reads of values; absences (404, deletes) are checked by the pairwise rules in checker.ts.
 */
import type { Op } from './history.js';
import type { Obs, Write } from './observations.js';

interface Zone {
  w: Write;
  low: number;
  lowOp: Op;
  high: number;
  highOp: Op;
}

export interface ZoneConflict {
  a: Write;
  b: Write;
  why: string;
  ops: Op[];
}

export function zoneConflicts(writes: readonly Write[], obs: readonly Obs[]): ZoneConflict[] {
  const zones = new Map<string, Zone>();
  for (const w of writes) {
    zones.set(w.id, { w, low: w.op.outcome === 'ok' ? w.op.end : Number.POSITIVE_INFINITY, lowOp: w.op, high: w.op.start, highOp: w.op });
  }
  for (const o of obs) {
    const z = zones.get(o.value);
    if (!z) continue;
    if (o.end < z.low) (z.low = o.end), (z.lowOp = o.op);
    if (o.start > z.high) (z.high = o.start), (z.highOp = o.op);
  }
  const forward = [...zones.values()].filter((z) => z.low < z.high).sort((a, b) => a.low - b.low);
  const backward = [...zones.values()].filter((z) => z.low >= z.high && Number.isFinite(z.low));
  const t = (x: number) => x.toFixed(1);
  const out: ZoneConflict[] = [];
  const opsOf = (...zs: Zone[]) => zs.flatMap((z) => [z.w.op, z.lowOp, z.highOp]);

  let widest: Zone | undefined;
  for (const z of forward) {
    if (widest && z.low < widest.high) {
      out.push({
        a: widest.w,
        b: z.w,
        why: `${widest.w.id} and ${z.w.id} were each current over overlapping intervals ([${t(widest.low)}, ${t(widest.high)}] and [${t(z.low)}, ${t(z.high)}]): no order of the writes explains these reads`,
        ops: opsOf(widest, z),
      });
    }
    if (!widest || z.high > widest.high) widest = z;
  }

  // Prefix maxima of `high` over forward zones sorted by `low`.
  const prefix: Zone[] = [];
  for (const z of forward) prefix.push(prefix.length && prefix[prefix.length - 1]!.high >= z.high ? prefix[prefix.length - 1]! : z);
  for (const b of backward) {
    let lo = 0;
    let hi = forward.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (forward[mid]!.low < b.high) lo = mid + 1;
      else hi = mid;
    }
    const f = lo > 0 ? prefix[lo - 1]! : undefined;
    if (f && f !== b && b.low < f.high) {
      out.push({
        a: f.w,
        b: b.w,
        why: `${f.w.id} was current over [${t(f.low)}, ${t(f.high)}], yet ${b.w.id} took effect inside that interval (its cluster lies between ${t(b.high)} and ${t(b.low)})`,
        ops: opsOf(f, b),
      });
    }
  }
  return out;
}
