/**
 * Turns a history into what the checker reasons about: the writes (by write id), the deletes, and the
 * observations — which state of which key an operation saw during [start, end]. Single-operation anomalies
 * (a value never written, of another key, of a failed write, from the future, a body or metadata that does
 * not match its value) are reported here; the operations that show them are left out of the ordering
 * checks, so one broken answer is not reported twice.
 *
 * Observations come from GET and HEAD (the write id in the metadata; 404 = absent), from listings (present
 * or absent, for every key of the history under the prefix), and from CopyObject, which reads its source:
 * the value it copied is known from the ETag it answered, or from the body a later read of the copy shows.
 */
import type { Op } from './history.js';
import { BOT, PRESENT } from './events.js';
import type { AnomalyKind } from './checker.js';

export interface Write {
  id: string;
  op: Op;
  /** Latest time by which it took effect (∞: not known to have), and the operation that shows it. */
  eff: number;
  effBy: Op;
}

export interface Obs {
  op: Op;
  key: string;
  /** A write id, BOT (absent) or PRESENT (listed, value unknown). */
  value: string;
  start: number;
  end: number;
}

type Report = (kind: AnomalyKind, key: string, message: string, ops: (Op | undefined)[]) => void;

const INF = Number.POSITIVE_INFINITY;
const isWrite = (o: Op) => o.kind === 'put' || o.kind === 'mpu' || o.kind === 'copy';

export function readObservations(ops: readonly Op[], report: Report) {
  const writes = new Map<string, Write>();
  /** put/mpu values by key and ETag: what a copy of that key, or a HEAD or listing, can be matched to. */
  const byEtag = new Map<string, Op>();
  const deletes: Op[] = [];
  const keys = new Set<string>();
  for (const o of ops) {
    if (o.kind !== 'list') keys.add(o.key);
    if (o.kind === 'delete') deletes.push(o);
    if (!isWrite(o)) continue;
    if (!o.write) throw new Error(`history: write #${o.id} has no write id`);
    if (writes.has(o.write)) throw new Error(`history: write id ${o.write} used twice (#${writes.get(o.write)!.op.id}, #${o.id})`);
    writes.set(o.write, { id: o.write, op: o, eff: INF, effBy: o });
    for (const e of o.etags ?? []) byEtag.set(`${o.key}\n${e}`, o);
  }
  /** Copies by destination key: a copy's value comes from its source key, which may hold copies too. */
  const copiesInto = new Map<string, Set<string>>();
  for (const w of writes.values()) if (w.op.kind === 'copy' && w.op.source) (copiesInto.get(w.op.key) ?? copiesInto.set(w.op.key, new Set()).get(w.op.key)!).add(w.op.source);
  const reachMemo = new Map<string, string[]>();
  /** The keys whose put/mpu values can end up at `key` (itself, and through copies). */
  const valueKeys = (key: string): string[] => {
    let r = reachMemo.get(key);
    if (r) return r;
    const seen = new Set<string>([key]);
    const todo = [key];
    while (todo.length) for (const s of copiesInto.get(todo.pop()!) ?? []) if (!seen.has(s)) (seen.add(s), todo.push(s));
    reachMemo.set(key, (r = [...seen]));
    return r;
  };
  /** The put/mpu value with this ETag that an object at `key` can hold. */
  const valueByEtag = (key: string, etag: string | undefined): Op | undefined => {
    if (etag === undefined) return undefined;
    for (const k of valueKeys(key)) {
      const v = byEtag.get(`${k}\n${etag}`);
      if (v) return v;
    }
    return undefined;
  };
  const observations: Obs[] = [];
  /** Copies of unknown outcome: the value they copied, as the first verified read of the copy shows it. */
  const copiedBy = new Map<string, Op>();

  for (const o of ops) {
    if ((o.kind !== 'get' && o.kind !== 'head') || o.outcome !== 'ok' || !o.seen) continue;
    const s = o.seen;
    if (s.write === null) {
      observations.push({ op: o, key: o.key, value: BOT, start: o.start, end: o.end });
      continue;
    }
    const w = s.write === '' ? undefined : writes.get(s.write);
    if (!w) {
      report('unknown-value', o.key, s.write === '' ? `#${o.id} read an object without a write id` : `#${o.id} read write id ${s.write}, which no client issued`, [o]);
      continue;
    }
    const wo = w.op;
    if (wo.key !== o.key) {
      report('foreign-value', o.key, `#${o.id} read ${w.id}, a value written to ${wo.key}`, [o, wo]);
      continue;
    }
    if (wo.outcome === 'fail') {
      report('failed-write-visible', o.key, `#${o.id} read ${w.id}, whose write failed definitely (${wo.error ?? 'error'})`, [o, wo]);
      continue;
    }
    if (wo.start > o.end) {
      report('future-read', o.key, `#${o.id} ended at ${o.end.toFixed(1)} with ${w.id}, which began only at ${wo.start.toFixed(1)}`, [o, wo]);
      continue;
    }
    // The bytes and the metadata must be those of the value this write stored: its own (PUT, multipart),
    // or for a copy the one its answer named, else one its source could hold.
    const want = wo.kind === 'copy' ? valueByEtag(wo.source!, wo.etag) : wo;
    let expect = want;
    let bodyBad = false;
    if (o.kind === 'get') {
      if (s.bodyError) {
        bodyBad = true;
        report('corrupt-body', o.key, `#${o.id} (metadata ${w.id}): ${s.bodyError}`, [o, wo]);
      } else {
        const origin = s.origin === undefined ? undefined : writes.get(s.origin)?.op;
        const originOk =
          origin && origin.kind !== 'copy' && (wo.kind === 'copy' ? valueKeys(wo.source!).includes(origin.key) : origin === wo) && (!want || want === origin);
        if (!originOk) {
          report(
            'corrupt-body',
            o.key,
            `#${o.id}: metadata names ${w.id} but the body is value ${s.origin ?? '?'} of ${s.bodyKey ?? '?'}${want ? ` (expected ${want.write})` : ''}`,
            [o, wo, origin],
          );
          bodyBad = true;
        } else expect = origin;
      }
    } else if (!expect && s.etag !== undefined) {
      expect = valueByEtag(wo.source!, s.etag);
      if (!expect) report('corrupt-metadata', o.key, `#${o.id} (${w.id}): ETag ${s.etag} is no value ${wo.source} could hold`, [o, wo]);
    }
    if (!bodyBad && expect && ((s.etag !== undefined && !(expect.etags ?? []).includes(s.etag)) || (s.size !== undefined && s.size !== expect.size))) {
      report('corrupt-metadata', o.key, `#${o.id} (${w.id}): ETag ${s.etag} / size ${s.size}, the value has ${(expect.etags ?? []).join(' or ')} / ${expect.size}`, [o, wo, expect]);
    }
    if (wo.kind === 'copy' && wo.etag === undefined && expect && !copiedBy.has(w.id)) copiedBy.set(w.id, expect);
    observations.push({ op: o, key: o.key, value: w.id, start: o.start, end: o.end });
  }

  // CopyObject reads its source.
  for (const o of ops) {
    if (o.kind !== 'copy' || !o.source) continue;
    if (o.outcome === 'fail' && /NoSuchKey|404/.test(o.error ?? '')) {
      observations.push({ op: o, key: o.source, value: BOT, start: o.start, end: o.end });
      continue;
    }
    let origin: Op | undefined;
    if (o.outcome === 'ok' && o.etag !== undefined) {
      origin = valueByEtag(o.source, o.etag);
      if (!origin) {
        report('unknown-value', o.source, `copy #${o.id} answered ETag ${o.etag}, which no value ${o.source} could hold has`, [o]);
        continue;
      }
    } else origin = copiedBy.get(o.write!);
    // The source's register holds write ids of writes to it: only a value written there directly names one.
    if (!origin || origin.key !== o.source) continue;
    if (origin.outcome === 'fail') {
      report('failed-write-visible', o.source, `copy #${o.id} copied ${origin.write}, whose write failed definitely`, [o, origin]);
      continue;
    }
    // A copy of unknown outcome may have been carried out after the client gave up.
    if (o.outcome === 'ok' && origin.start > o.end) {
      report('future-read', o.source, `copy #${o.id} ended at ${o.end.toFixed(1)} with ${origin.write}, which began only at ${origin.start.toFixed(1)}`, [o, origin]);
      continue;
    }
    observations.push({ op: o, key: o.source, value: origin.write!, start: o.start, end: o.outcome === 'ok' ? o.end : INF });
  }

  // Listings: every key of the history under the prefix is present or absent.
  const sortedKeys = [...keys].sort();
  for (const o of ops) {
    if (o.kind !== 'list' || o.outcome !== 'ok' || !o.listed) continue;
    const listed = new Map(o.listed.map((l) => [l.key, l]));
    for (const [k, l] of listed) {
      if (!keys.has(k)) report('list-phantom', k, `listing #${o.id} shows ${k}, a key no client wrote`, [o]);
      else if (!knownEtag(k, l.etag, l.size)) {
        report('corrupt-metadata', k, `listing #${o.id} shows ${k} with ETag ${l.etag} / size ${l.size}, which no value written there has`, [o]);
      }
    }
    for (const k of sortedKeys) {
      if (!k.startsWith(o.key)) continue;
      observations.push({ op: o, key: k, value: listed.has(k) ? PRESENT : BOT, start: o.start, end: o.end });
    }
  }
  return { writes, observations, deletes, keys };

  function knownEtag(key: string, etag: string, size: number): boolean {
    return valueByEtag(key, etag)?.size === size;
  }
}
