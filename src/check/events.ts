/**
 * Per-key indexes the checker queries in O(log n): events sorted by start, with suffix minima of their
 * ends, so "is there an event that began after t and ended before u (with a value other than v)?" is one
 * binary search.
 */
import type { Op } from './history.js';

/** Something that was provably the key's state at some point of [start, end]. */
export interface Event {
  /** The write id current during the event; BOT for "absent"; PRESENT for "present, value unknown". */
  value: string;
  start: number;
  end: number;
  /** The operations that prove it (first: the one that names the event). */
  ops: Op[];
  /** What it is, for messages. */
  what: 'write' | 'delete' | 'read' | 'absent' | 'listed';
}

export const BOT = '\u22a5';
export const PRESENT = '\u2203';

/** Events sorted by start, answering "the earliest-ending event starting after t" with up to one value excluded. */
export class EventIndex {
  private readonly starts: number[];
  /** Suffix bests: [i] = the two earliest-ending events among events[i..] with distinct values. */
  private readonly best1: (Event | undefined)[];
  private readonly best2: (Event | undefined)[];

  constructor(events: Event[]) {
    const sorted = events.filter((e) => Number.isFinite(e.end)).sort((a, b) => a.start - b.start);
    this.starts = sorted.map((e) => e.start);
    const n = sorted.length;
    this.best1 = new Array<Event | undefined>(n + 1);
    this.best2 = new Array<Event | undefined>(n + 1);
    let b1: Event | undefined;
    let b2: Event | undefined;
    for (let i = n - 1; i >= 0; i--) {
      const e = sorted[i]!;
      if (!b1 || e.end < b1.end) {
        if (b1 && e.value !== b1.value) b2 = b1;
        b1 = e;
      } else if (e.value !== b1.value && (!b2 || e.end < b2.end)) {
        b2 = e;
      }
      this.best1[i] = b1;
      this.best2[i] = b2;
    }
  }

  /** The earliest-ending event that starts strictly after `after` and whose value is not `exclude`. */
  earliestAfter(after: number, exclude?: string): Event | undefined {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! > after) hi = mid;
      else lo = mid + 1;
    }
    const b1 = this.best1[lo];
    return b1 && b1.value === exclude ? this.best2[lo] : b1;
  }
}

/** Mutations sorted by start, answering "the latest possible effect among those that started before t". */
export class LatestEffect<T extends { start: number; eff: number }> {
  private readonly starts: number[];
  private readonly best: T[];

  constructor(items: T[]) {
    const sorted = [...items].sort((a, b) => a.start - b.start);
    this.starts = sorted.map((m) => m.start);
    this.best = [];
    let b: T | undefined;
    for (const m of sorted) {
      if (!b || m.eff > b.eff) b = m;
      this.best.push(b);
    }
  }

  /** Among items starting strictly before `before`, the one whose effect may come latest. */
  latestBefore(before: number): T | undefined {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < before) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.best[lo - 1];
  }
}
