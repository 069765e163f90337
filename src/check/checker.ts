/**
 * The consistency checker: reads a history (history.ts) and reports every way it contradicts the S3
 * guarantees the orchestrator promises, per key (each key a linearizable register whose writes are PUT,
 * CompleteMultipartUpload and CopyObject, and whose deletes are DeleteObject):
 *
 * - a read returns a value that was written (never one that was not, failed definitely, belongs to another
 *   key, or began after the read ended), whole (never short, spliced or with metadata of another value);
 * - a read never returns a value known to have been replaced before it began: if anything showed another
 *   state of the key (a write took effect, a delete was acknowledged, another read saw another value or
 *   404) strictly after the value had taken effect and strictly before the read began, the value is gone
 *   for good. This covers stale reads, lost acknowledged writes, deleted objects coming back, and
 *   operations of unknown outcome that are seen, then not, then seen again;
 * - a 404 (or a listing without the key) needs a delete that may have taken effect after everything that
 *   was seen before it; a listing with the key needs a write that may have taken effect after the last
 *   absence seen before it;
 * - no two values each provably current over overlapping intervals (the zone test of Gibbons & Korach,
 *   for the order anomalies no single pair of operations shows).
 *
 * When an operation "took effect": an acknowledged one by its end, one of unknown outcome by the end of
 * the first read that saw it (never, for the checker, if none did: its effect may still come). Everything
 * is indexed per key and sorted once: O(n log n) for n operations.
 */
import { describeOp, type Op } from './history.js';
import { BOT, EventIndex, LatestEffect, PRESENT, type Event } from './events.js';
import { readObservations, type Obs, type Write } from './observations.js';
import { zoneConflicts } from './zones.js';

export type AnomalyKind =
  | 'unknown-value'
  | 'foreign-value'
  | 'failed-write-visible'
  | 'future-read'
  | 'corrupt-body'
  | 'corrupt-metadata'
  | 'stale-read'
  | 'stale-404'
  | 'list-missing'
  | 'list-phantom'
  | 'order';

export interface Anomaly {
  kind: AnomalyKind;
  key: string;
  message: string;
  /** The minimal sub-history that shows it, sorted by start. */
  ops: Op[];
}

export interface CheckResult {
  anomalies: Anomaly[];
  /** Operations by kind and outcome. */
  counts: Record<string, { ok: number; fail: number; unknown: number }>;
  keys: number;
}

const INF = Number.POSITIVE_INFINITY;

function subHistory(ops: (Op | undefined)[]): Op[] {
  const seen = new Set<number>();
  return ops.filter((o): o is Op => !!o && !seen.has(o.id) && !!seen.add(o.id)).sort((a, b) => a.start - b.start || a.id - b.id);
}

/** Checks a history; see the module comment for what is checked. */
export function checkHistory(ops: readonly Op[]): CheckResult {
  const anomalies: Anomaly[] = [];
  const report = (kind: AnomalyKind, key: string, message: string, witness: (Op | undefined)[]) =>
    anomalies.push({ kind, key, message, ops: subHistory(witness) });

  const counts: CheckResult['counts'] = {};
  for (const o of ops) {
    const c = (counts[o.kind] ??= { ok: 0, fail: 0, unknown: 0 });
    c[o.outcome]++;
  }

  const { writes, observations, deletes, keys } = readObservations(ops, report);

  // When each write took effect at the latest: its acknowledgement, or the first read that saw it.
  for (const w of writes.values()) {
    w.eff = w.op.outcome === 'ok' ? w.op.end : INF;
    w.effBy = w.op;
  }
  for (const ob of observations) {
    if (ob.value === BOT || ob.value === PRESENT) continue;
    const w = writes.get(ob.value)!;
    if (ob.end < w.eff) {
      w.eff = ob.end;
      w.effBy = ob.op;
    }
  }

  // Per key: the events (states provably current at some point of an interval) and the mutations.
  const byKey = new Map<string, { val: Event[]; bot: Event[]; pres: Event[]; writes: Write[]; deletes: { start: number; eff: number; op: Op }[]; obs: Obs[] }>();
  const forKey = (k: string) => {
    let e = byKey.get(k);
    if (!e) byKey.set(k, (e = { val: [], bot: [], pres: [], writes: [], deletes: [], obs: [] }));
    return e;
  };
  for (const w of writes.values()) {
    if (w.op.outcome === 'fail') continue;
    const e = forKey(w.op.key);
    e.writes.push(w);
    e.val.push({ value: w.id, start: w.op.start, end: w.eff, ops: [w.op, w.effBy], what: 'write' });
  }
  for (const d of deletes) {
    if (d.outcome === 'fail') continue;
    const e = forKey(d.key);
    const eff = d.outcome === 'ok' ? d.end : INF;
    e.deletes.push({ start: d.start, eff, op: d });
    e.bot.push({ value: BOT, start: d.start, end: eff, ops: [d], what: 'delete' });
  }
  for (const ob of observations) {
    const e = forKey(ob.key);
    e.obs.push(ob);
    if (ob.value === BOT) e.bot.push({ value: BOT, start: ob.start, end: ob.end, ops: [ob.op], what: ob.op.kind === 'list' ? 'listed' : 'absent' });
    else if (ob.value === PRESENT) e.pres.push({ value: PRESENT, start: ob.start, end: ob.end, ops: [ob.op], what: 'listed' });
    else e.val.push({ value: ob.value, start: ob.start, end: ob.end, ops: [ob.op, writes.get(ob.value)!.op], what: 'read' });
  }

  const reported = new Set<string>();
  const t = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '∞');
  for (const [key, e] of byKey) {
    const val = new EventIndex(e.val);
    const bot = new EventIndex(e.bot);
    const pres = new EventIndex(e.pres);
    const lastDelete = new LatestEffect(e.deletes);
    const lastWrite = new LatestEffect(e.writes.map((w) => ({ start: w.op.start, eff: w.eff, w })));
    const earliest = (...c: (Event | undefined)[]) => c.reduce<Event | undefined>((a, b) => (b && (!a || b.end < a.end) ? b : a), undefined);

    for (const ob of e.obs) {
      if (ob.value === BOT) {
        // Absent: some delete (or the initial state) must be able to come after everything seen before.
        const cand = lastDelete.latestBefore(ob.end);
        const since = cand ? cand.eff : -INF;
        if (since === INF) continue;
        const ev = earliest(val.earliestAfter(since), pres.earliestAfter(since));
        if (ev && ev.end < ob.start) {
          const listing = ob.op.kind === 'list';
          report(
            listing ? 'list-missing' : 'stale-404',
            key,
            `${listing ? 'listing without the key' : '404'} (#${ob.op.id}, began ${t(ob.start)}) although ${eventText(ev)} ended by ${t(ev.end)}, ` +
              (cand ? `after the last delete that could explain it (#${cand.op.id}, acknowledged ${t(cand.eff)})` : 'and no delete began before the read ended'),
            [ob.op, ...ev.ops, cand?.op],
          );
        }
        continue;
      }
      if (ob.value === PRESENT) {
        // Listed: some write must be able to come after every absence seen before.
        const cand = lastWrite.latestBefore(ob.end);
        if (!cand) {
          report('list-phantom', key, `listing (#${ob.op.id}) shows a key no write had begun to create`, [ob.op]);
          continue;
        }
        if (cand.eff === INF) continue;
        const ev = bot.earliestAfter(cand.eff);
        if (ev && ev.end < ob.start) {
          report(
            'list-phantom',
            key,
            `listing (#${ob.op.id}, began ${t(ob.start)}) shows the key although ${eventText(ev)} ended by ${t(ev.end)}, after the last write that could explain it (${cand.w.id}, in effect by ${t(cand.eff)})`,
            [ob.op, ...ev.ops, cand.w.op, cand.w.effBy],
          );
        }
        continue;
      }
      // A value: nothing may have replaced it between its effect and the read's start.
      const w = writes.get(ob.value)!;
      const ev = earliest(val.earliestAfter(w.eff, w.id), bot.earliestAfter(w.eff));
      if (ev && ev.end < ob.start) {
        reported.add(pairKey(w.id, ev.value));
        report(
          'stale-read',
          key,
          `#${ob.op.id} (began ${t(ob.start)}) returned ${w.id}, in effect by ${t(w.eff)}, although ${eventText(ev)} began after that and ended by ${t(ev.end)}`,
          [ob.op, w.op, w.effBy, ...ev.ops],
        );
      }
    }

    for (const c of zoneConflicts(e.writes, e.obs)) {
      const pk = pairKey(c.a.id, c.b.id);
      if (reported.has(pk)) continue;
      reported.add(pk);
      report('order', key, c.why, c.ops);
    }
  }
  anomalies.sort((a, b) => (a.ops[0]?.start ?? 0) - (b.ops[0]?.start ?? 0));
  return { anomalies, counts, keys: keys.size };
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}

function eventText(ev: Event): string {
  const op = ev.ops[0]!;
  switch (ev.what) {
    case 'write':
      return `write ${ev.value} (#${op.id}, began ${op.start.toFixed(1)})`;
    case 'delete':
      return `delete #${op.id} (acknowledged)`;
    case 'read':
      return `#${op.id} read ${ev.value}`;
    case 'absent':
      return `#${op.id} read 404`;
    case 'listed':
      return ev.value === BOT ? `listing #${op.id} without the key` : `listing #${op.id} with the key`;
  }
}

/** A readable report: counts, then each anomaly with its sub-history (at most `limit` of them). */
export function formatResult(r: CheckResult, limit = 20): string {
  const lines: string[] = [];
  const kinds = Object.keys(r.counts).sort();
  lines.push(`operations: ${kinds.map((k) => `${k} ${r.counts[k]!.ok}/${r.counts[k]!.fail}/${r.counts[k]!.unknown}`).join(', ')} (ok/failed/unknown), ${r.keys} keys`);
  if (r.anomalies.length === 0) {
    lines.push('anomalies: none');
    return lines.join('\n') + '\n';
  }
  const byKind = new Map<string, number>();
  for (const a of r.anomalies) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + 1);
  lines.push(`anomalies: ${r.anomalies.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`);
  for (const a of r.anomalies.slice(0, limit)) {
    lines.push(`- ${a.kind} on ${a.key}: ${a.message}`);
    for (const o of a.ops) lines.push(`    ${describeOp(o)}`);
  }
  if (r.anomalies.length > limit) lines.push(`… and ${r.anomalies.length - limit} more`);
  return lines.join('\n') + '\n';
}
