/**
 * Reading the usage counters (UsageService.GetUsage, `admin usage`): per backend and per bucket, what is
 * stored now (the quota counters and bucket stats) and, per calendar month of a range, the requests by
 * class and the bytes in and out counted by core/usage.ts.
 */
import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as uq from '../meta/queries/usage.js';
import { ControlError, invalidField } from './control-errors.js';
import { listBackendRecords, listBucketRecords } from './fleet.js';
import { monthStart, type UsageMeter } from './usage.js';

/** One calendar month's counters. */
export interface MonthUsage {
  /** `YYYY-MM` (UTC). */
  month: string;
  requestsA: number;
  requestsB: number;
  bytesIn: number;
  bytesOut: number;
}

/** One backend or bucket: what it stores now and its counters per month of the range (oldest first). */
export interface UsageEntry {
  name: string;
  storedBytes: number;
  storedObjects: number;
  /** Every month of the range, zeros where nothing was counted. */
  months: MonthUsage[];
}

/** The answer of {@link UsageReports.get}. */
export interface UsageReport {
  fromMonth: string;
  toMonth: string;
  backends: UsageEntry[];
  buckets: UsageEntry[];
}

/** What to report: neither name = every backend and bucket; one or both names = only those. */
export interface UsageQuery {
  backend?: string;
  bucket?: string;
  /** `YYYY-MM`; default `toMonth`. */
  fromMonth?: string;
  /** `YYYY-MM`; default the current month (UTC). */
  toMonth?: string;
}

/** The longest range one report covers. */
export const MAX_USAGE_MONTHS = 120;

/** `YYYY-MM` as a month index (year * 12 + month - 1), or an InvalidArgument naming `field`. */
function parseMonth(field: string, value: string): number {
  const m = /^(\d{4})-(\d{2})$/.exec(value);
  const month = m ? Number(m[2]) : 0;
  if (!m || month < 1 || month > 12 || Number(m[1]) < 1970) {
    throw invalidField(field, `expected a month as YYYY-MM (1970-01 or later), got ${JSON.stringify(value)}`);
  }
  return Number(m[1]) * 12 + month - 1;
}

function monthName(index: number): string {
  return `${String(Math.floor(index / 12)).padStart(4, '0')}-${String((index % 12) + 1).padStart(2, '0')}`;
}

/** Reads usage for the admin API; flushes this instance's own counts first, so they are current. */
export class UsageReports {
  readonly #db: Db;
  readonly #meter: UsageMeter | undefined;
  readonly #now: () => number;

  constructor(db: Db, meter?: UsageMeter, now: () => number = Date.now) {
    this.#db = db;
    this.#meter = meter;
    this.#now = now;
  }

  /**
   * The report. Throws ControlError InvalidArgument naming `from_month` / `to_month` (not YYYY-MM, from
   * after to, a range over {@link MAX_USAGE_MONTHS}), NotFound for a backend or bucket that neither exists
   * nor has counters.
   */
  async get(q: UsageQuery): Promise<UsageReport> {
    const current = monthStart(this.#now()).slice(0, 7);
    const to = parseMonth('to_month', q.toMonth || current);
    const from = q.fromMonth ? parseMonth('from_month', q.fromMonth) : to;
    if (from > to) throw invalidField('from_month', `${monthName(from)} is after to_month ${monthName(to)}`);
    if (to - from + 1 > MAX_USAGE_MONTHS) {
      throw invalidField('from_month', `the range ${monthName(from)}..${monthName(to)} spans ${to - from + 1} months; at most ${MAX_USAGE_MONTHS}`);
    }
    // This instance's counts reach the database now; other instances' lag by at most their flush interval.
    await this.#meter?.flush().catch(() => {});
    const range = { from: `${monthName(from)}-01`, to: `${monthName(to)}-01` };
    const months = Array.from({ length: to - from + 1 }, (_, i) => monthName(from + i));
    const all = q.backend === undefined && q.bucket === undefined;
    const backends = all || q.backend !== undefined ? await this.#backends(range, months, q.backend) : [];
    const buckets = all || q.bucket !== undefined ? await this.#buckets(range, months, q.bucket) : [];
    return { fromMonth: monthName(from), toMonth: monthName(to), backends, buckets };
  }

  async #backends(range: { from: string; to: string }, months: string[], only?: string): Promise<UsageEntry[]> {
    const records = (await listBackendRecords(this.#db)).filter((r) => (only === undefined ? r.state !== 'removed' : r.name === only));
    const stored = new Map(records.map((r) => [r.name, { bytes: r.usedBytes, objects: r.objectCount }]));
    return this.#entries('backend', range, months, stored, only, 'backend');
  }

  async #buckets(range: { from: string; to: string }, months: string[], only?: string): Promise<UsageEntry[]> {
    const records = (await listBucketRecords(this.#db)).filter((r) => only === undefined || r.name === only);
    const stored = new Map(records.map((r) => [r.name, { bytes: r.totalBytes, objects: r.objectCount }]));
    return this.#entries('bucket', range, months, stored, only, 'bucket');
  }

  async #entries(
    scope: uq.UsageScope,
    range: { from: string; to: string },
    months: string[],
    stored: Map<string, { bytes: number; objects: number }>,
    only: string | undefined,
    field: string,
  ): Promise<UsageEntry[]> {
    if (only !== undefined && !stored.has(only)) {
      const { rows } = await run<{ found: boolean }>(this.#db, uq.usageExists(scope, only));
      if (!rows[0]?.found) throw new ControlError('NotFound', `no ${scope} named ${JSON.stringify(only)}`, { field });
    }
    const { rows } = await run<uq.UsageRow>(this.#db, uq.selectUsage(scope, range.from, range.to, only));
    const counted = new Map<string, Map<string, uq.UsageRow>>();
    for (const r of rows) {
      let byMonth = counted.get(r.name);
      if (!byMonth) counted.set(r.name, (byMonth = new Map()));
      byMonth.set(r.month, r);
    }
    const names = [...new Set([...stored.keys(), ...counted.keys()])].sort();
    return names.map((name) => {
      const s = stored.get(name);
      return {
        name,
        storedBytes: s?.bytes ?? 0,
        storedObjects: s?.objects ?? 0,
        months: months.map((month) => {
          const r = counted.get(name)?.get(month);
          return {
            month,
            requestsA: r?.requests_a ?? 0,
            requestsB: r?.requests_b ?? 0,
            bytesIn: r?.bytes_in ?? 0,
            bytesOut: r?.bytes_out ?? 0,
          };
        }),
      };
    });
  }
}
