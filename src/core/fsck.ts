import type { Backend, BackendListEntry } from '../backends/backend.js';
import { byteCompare } from '../backends/fs-util.js';
import { versionIdOf } from '../backends/layout.js';
import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as aq from '../meta/queries/audit.js';
import { enqueueRepairTask, markCopyBad, queueLateBytes } from './copies.js';

/**
 * `s3-orchestrator fsck`: compares the metadata database with every backend, against the LIVE database
 * (the normal case: an operator runs it while the orchestrator serves). Each backend is listed in full,
 * page by page, and merged with its copy rows read in the same (byte) order, so memory stays bounded
 * whatever the number of objects. What the merge flags is only a candidate: each one is checked again
 * against the database and the backend (a HEAD) before it is reported or repaired, so a write committed or
 * a deletion completed while the listing ran is never a finding. Objects younger than the grace period are
 * never called orphans (a write may be about to commit them).
 *
 * With `repair`, in transactions through the copy layer: orphans get a delete-copy task that releases
 * nothing, missing or wrong-size copies are marked bad (which queues their repair), versions below their
 * replica count without a repair in progress get one, and drifted counters are corrected by the drift.
 */

export interface FsckOptions {
  /** Enqueue the fixes (default: report only). */
  repair?: boolean;
  /** Objects modified less than this long ago are not orphans (default 10 minutes). */
  graceMs?: number;
  /** Replicas of buckets without their own count (`placement.replicas`). */
  defaultReplicas: number;
  /** Examples kept per finding class (default 10). */
  examples?: number;
  /** The clock for the grace period (tests). */
  now?: () => number;
  /** Progress lines (the CLI prints them on stderr). */
  progress?: (line: string) => void;
}

/** A finding class: how many, and the first few. */
export interface FindingClass<E> {
  count: number;
  examples: E[];
}

export interface OrphanExample {
  backend: string;
  physicalKey: string;
  size: number;
}

export interface CopyExample {
  backend: string;
  physicalKey: string;
  versionId: string;
  bucket: string;
  key: string;
  expectedSize: number;
  /** The size found, null when the object is missing. */
  actualSize: number | null;
}

export interface UnderReplicatedExample {
  versionId: string;
  bucket: string;
  key: string;
  liveCopies: number;
  replicas: number;
}

export interface CounterExample {
  /** Backend or bucket name. */
  name: string;
  field: string;
  actual: number;
  expected: number;
}

export interface BackendScan {
  name: string;
  /** Objects listed, and their bytes. */
  objects: number;
  bytes: number;
  /** Why the backend could not be (fully) checked; its copies are then left alone. */
  error?: string;
}

export interface FsckReport {
  backends: BackendScan[];
  /** Physical objects no copy row, delete-copy task or multipart upload names. */
  orphans: FindingClass<OrphanExample> & { bytes: number };
  /** Unreferenced objects younger than the grace period (not counted as orphans). */
  youngUnreferenced: number;
  /**
   * Candidates the merge flagged that the re-check dismissed (a row committed, a deletion completed or an
   * object that came or went while the listing ran). Always 0 on a quiet deployment.
   */
  dismissed: number;
  /** Objects whose key does not follow the physical layout (never repaired: not ours to delete). */
  foreign: FindingClass<OrphanExample>;
  /** Live copies whose physical object is missing. */
  missing: FindingClass<CopyExample>;
  /** Live copies whose physical object has another size. */
  wrongSize: FindingClass<CopyExample>;
  /** Copies already marked bad (awaiting repair): information, not a finding. */
  knownBad: number;
  /** Live versions with fewer live copies than their replicas and no repair queued or running. */
  underReplicated: FindingClass<UnderReplicatedExample>;
  /** Versions below their replicas whose repair is queued or running: information. */
  repairing: number;
  /** Backend counters (used_bytes, object_count, reserved_bytes) that differ from the ledger. */
  backendCounters: FindingClass<CounterExample>;
  /** Bucket counters (objects, bytes) that differ from their live versions. */
  bucketCounters: FindingClass<CounterExample>;
  /** Backends that hold copies but are not configured (their copies cannot be checked). */
  unconfigured: string[];
  /** What --repair did (absent without it). */
  repaired?: { orphansQueued: number; copiesMarkedBad: number; repairsQueued: number; backendsCorrected: number; bucketsCorrected: number };
}

/** Candidates are re-checked in batches of this many (bounded memory, few statements). */
const BATCH = 500;
const PAGE = 1000;
const HEAD_CONCURRENCY = 16;
/** `<bucket>/<h0:2>/<h2:32>/<version id>[.<6 hex>]`: what the orchestrator writes. */
const LAYOUT = /^[^/]+\/[0-9a-f]{2}\/[0-9a-f]{30}\/[0-9a-f]{32}(\.[0-9a-f]{6})?$/;

/** Whether the report holds findings (exit code 1). */
export function hasFindings(r: FsckReport): boolean {
  return (
    r.orphans.count + r.missing.count + r.wrongSize.count + r.underReplicated.count + r.backendCounters.count + r.bucketCounters.count > 0
  );
}

/** Runs fsck over the configured `backends`. Throws only when the database fails. */
export async function runFsck(db: Db, backends: readonly Backend[], opts: FsckOptions): Promise<FsckReport> {
  const ex = opts.examples ?? 10;
  const report: FsckReport = {
    backends: [],
    orphans: { count: 0, bytes: 0, examples: [] },
    youngUnreferenced: 0,
    dismissed: 0,
    foreign: { count: 0, examples: [] },
    missing: { count: 0, examples: [] },
    wrongSize: { count: 0, examples: [] },
    knownBad: 0,
    underReplicated: { count: 0, examples: [] },
    repairing: 0,
    backendCounters: { count: 0, examples: [] },
    bucketCounters: { count: 0, examples: [] },
    unconfigured: [],
  };
  if (opts.repair) report.repaired = { orphansQueued: 0, copiesMarkedBad: 0, repairsQueued: 0, backendsCorrected: 0, bucketsCorrected: 0 };
  const rows = (await run<{ name: string; state: string }>(db, aq.backendRows())).rows;
  const configured = new Set(backends.map((b) => b.name));
  for (const r of rows) if (!configured.has(r.name)) report.unconfigured.push(r.name);
  const known = new Set(rows.map((r) => r.name));
  for (const b of backends) {
    if (!known.has(b.name)) continue; // never started with this backend: nothing of ours can be there
    opts.progress?.(`listing backend ${b.name}`);
    report.backends.push(await new BackendChecker(db, b, opts, report, ex).run());
  }
  opts.progress?.('checking replica counts');
  await checkReplicas(db, opts, report, ex);
  opts.progress?.('checking counters');
  await checkCounters(db, opts, report, ex);
  return report;
}

function push<E>(c: FindingClass<E>, e: E, max: number): void {
  c.count++;
  if (c.examples.length < max) c.examples.push(e);
}

/** Runs `fn` over `items` with at most `n` at a time (results in order). */
export async function pool<T, R>(items: readonly T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** The merge of one backend's listing with its copy rows, and the re-check of what it flags. */
class BackendChecker {
  readonly #scan: BackendScan;
  #promised = new Set<string>();
  #rows: aq.AuditCopyRow[] = [];
  #at = 0;
  #after = '';
  #rowsDone = false;
  #orphans: BackendListEntry[] = [];
  #suspects: { row: aq.AuditCopyRow; listed: number | null }[] = [];

  constructor(
    private readonly db: Db,
    private readonly backend: Backend,
    private readonly opts: FsckOptions,
    private readonly report: FsckReport,
    private readonly ex: number,
  ) {
    this.#scan = { name: backend.name, objects: 0, bytes: 0 };
  }

  async run(): Promise<BackendScan> {
    for (const r of (await run<{ physical_key: string }>(this.db, aq.promisedKeys(this.backend.name))).rows) this.#promised.add(r.physical_key);
    let startAfter: string | undefined;
    for (;;) {
      let page: Awaited<ReturnType<Backend['list']>>;
      try {
        page = await this.backend.list('', { ...(startAfter !== undefined ? { startAfter } : {}), limit: PAGE });
      } catch (err) {
        // A backend that cannot be listed is not checked: none of its copies is called missing.
        this.#scan.error = `listing failed: ${err instanceof Error ? err.message : String(err)}`;
        return this.#scan;
      }
      for (const e of page.entries) await this.#entry(e);
      if (!page.truncated || page.entries.length === 0) break;
      startAfter = page.entries.at(-1)!.key;
    }
    for (let r = await this.#row(); r; r = await this.#row()) {
      this.#dbOnly(r);
      this.#at++;
      await this.#flush(false);
    }
    await this.#flush(true);
    return this.#scan;
  }

  /** The next copy row in byte order (paged by keyset), or undefined after the last. */
  async #row(): Promise<aq.AuditCopyRow | undefined> {
    if (this.#at < this.#rows.length) return this.#rows[this.#at];
    if (this.#rowsDone) return undefined;
    this.#rows = (await run<aq.AuditCopyRow>(this.db, aq.copiesPage(this.backend.name, this.#after, PAGE))).rows;
    this.#at = 0;
    if (this.#rows.length < PAGE) this.#rowsDone = true;
    if (this.#rows.length === 0) return undefined;
    this.#after = this.#rows.at(-1)!.physical_key;
    return this.#rows[0];
  }

  async #entry(e: BackendListEntry): Promise<void> {
    this.#scan.objects++;
    this.#scan.bytes += e.size;
    let r = await this.#row();
    while (r && byteCompare(r.physical_key, e.key) < 0) {
      this.#dbOnly(r);
      this.#at++;
      r = await this.#row();
    }
    if (r && r.physical_key === e.key) {
      if (r.state === 'live' && r.size !== e.size) this.#suspects.push({ row: r, listed: e.size });
      if (r.state === 'bad') this.report.knownBad++;
      this.#at++;
    } else {
      this.#backendOnly(e);
    }
    await this.#flush(false);
  }

  #dbOnly(r: aq.AuditCopyRow): void {
    if (r.state === 'live') this.#suspects.push({ row: r, listed: null });
    else if (r.state === 'bad') this.report.knownBad++;
    // A pending copy is a write (or repair) in progress: its bytes may not be there yet.
  }

  #backendOnly(e: BackendListEntry): void {
    if (this.#promised.has(e.key)) return; // awaiting its deletion, or an upload assembling in place
    if (!LAYOUT.test(e.key) || versionIdOf(e.key) === undefined) {
      push(this.report.foreign, { backend: this.backend.name, physicalKey: e.key, size: e.size }, this.ex);
      return;
    }
    const now = this.opts.now?.() ?? Date.now();
    if (e.modifiedMs !== undefined && now - e.modifiedMs < (this.opts.graceMs ?? 10 * 60_000)) {
      this.report.youngUnreferenced++;
      return;
    }
    this.#orphans.push(e);
  }

  async #flush(all: boolean): Promise<void> {
    if (this.#orphans.length >= BATCH || (all && this.#orphans.length > 0)) await this.#confirmOrphans(this.#orphans.splice(0));
    if (this.#suspects.length >= BATCH || (all && this.#suspects.length > 0)) await this.#confirmSuspects(this.#suspects.splice(0));
  }

  /** Orphan candidates that are still unaccounted for now and still exist are orphans. */
  async #confirmOrphans(batch: BackendListEntry[]): Promise<void> {
    const name = this.backend.name;
    const accounted = new Set(
      (await run<{ physical_key: string }>(this.db, aq.accountedKeys(name, batch.map((e) => e.key)))).rows.map((r) => r.physical_key),
    );
    const heads = await pool(batch, HEAD_CONCURRENCY, async (e) => (accounted.has(e.key) ? null : this.backend.head(e.key).catch(() => null)));
    const confirmed = batch.filter((_, i) => heads[i] !== null);
    this.report.dismissed += batch.length - confirmed.length;
    for (const e of confirmed) {
      push(this.report.orphans, { backend: name, physicalKey: e.key, size: e.size }, this.ex);
      this.report.orphans.bytes += e.size;
    }
    if (!this.opts.repair || confirmed.length === 0) return;
    await this.db.tx(async (q) => {
      // Checked again in the transaction that queues the deletions (the task itself refuses referenced keys).
      const keys = confirmed.map((e) => e.key);
      const now = new Set((await run<{ physical_key: string }>(q, aq.accountedKeys(name, keys))).rows.map((r) => r.physical_key));
      for (const k of keys) {
        if (now.has(k)) continue;
        await queueLateBytes(q, name, k, 'fsck-orphan');
        this.report.repaired!.orphansQueued++;
      }
    });
  }

  /** Live copies that looked missing or of the wrong size: re-read the row, HEAD the object. */
  async #confirmSuspects(batch: { row: aq.AuditCopyRow; listed: number | null }[]): Promise<void> {
    const name = this.backend.name;
    const current = new Map(
      (await run<aq.AuditCopyRow & { bucket: string; key: string }>(this.db, aq.copiesAt(name, batch.map((s) => s.row.physical_key)))).rows.map(
        (r) => [r.physical_key, r],
      ),
    );
    const still = batch.map((s) => current.get(s.row.physical_key)).filter((r): r is aq.AuditCopyRow & { bucket: string; key: string } => r?.state === 'live');
    const heads = await pool(still, HEAD_CONCURRENCY, async (r) => {
      try {
        const h = await this.backend.head(r.physical_key);
        return { ok: true as const, size: h ? h.size : null };
      } catch {
        return { ok: false as const, size: null }; // unreachable now: not a finding either way
      }
    });
    const bad: { row: aq.AuditCopyRow; reason: string }[] = [];
    this.report.dismissed += batch.length - still.length;
    still.forEach((r, i) => {
      const h = heads[i]!;
      if (h.ok && h.size === r.size) this.report.dismissed++;
      if (!h.ok || h.size === r.size) return;
      const e: CopyExample = {
        backend: name,
        physicalKey: r.physical_key,
        versionId: r.version_id,
        bucket: r.bucket,
        key: r.key,
        expectedSize: r.size,
        actualSize: h.size,
      };
      if (h.size === null) push(this.report.missing, e, this.ex);
      else push(this.report.wrongSize, e, this.ex);
      bad.push({ row: r, reason: h.size === null ? 'fsck: physical object missing' : `fsck: size ${h.size}, expected ${r.size}` });
    });
    if (!this.opts.repair || bad.length === 0) return;
    await this.db.tx(async (q) => {
      for (const b of bad) if (await markCopyBad(q, b.row.version_id, name, b.reason)) this.report.repaired!.copiesMarkedBad++;
    });
  }
}

async function checkReplicas(db: Db, opts: FsckOptions, report: FsckReport, ex: number): Promise<void> {
  type Row = { version_id: string; bucket: string; key: string; replicas: number; live: number; queued: boolean; total: number; total_queued: number };
  const limit = opts.repair ? 1_000_000 : ex;
  const { rows } = await run<Row>(db, aq.underReplicated(opts.defaultReplicas, limit));
  const total = rows[0]?.total ?? 0;
  const queued = rows[0]?.total_queued ?? 0;
  report.underReplicated.count = total - queued;
  report.repairing = queued;
  for (const r of rows) {
    if (r.queued || report.underReplicated.examples.length >= ex) continue;
    report.underReplicated.examples.push({ versionId: r.version_id, bucket: r.bucket, key: r.key, liveCopies: r.live, replicas: r.replicas });
  }
  if (!opts.repair) return;
  const todo = rows.filter((r) => !r.queued);
  for (let i = 0; i < todo.length; i += BATCH) {
    await db.tx(async (q) => {
      for (const r of todo.slice(i, i + BATCH)) {
        if ((await enqueueRepairTask(q, r.version_id, 'fsck: below its replica count')) !== undefined) report.repaired!.repairsQueued++;
      }
    });
  }
}

async function checkCounters(db: Db, opts: FsckOptions, report: FsckReport, ex: number): Promise<void> {
  for (const r of (await run<aq.BackendLedgerRow>(db, aq.backendLedger())).rows) {
    const fields: [string, number, number][] = [
      ['used_bytes', r.used_bytes, r.want_used],
      ['object_count', r.object_count, r.want_objects],
      ['reserved_bytes', r.reserved_bytes, r.want_reserved],
    ];
    for (const [field, actual, expected] of fields) if (actual !== expected) push(report.backendCounters, { name: r.name, field, actual, expected }, ex);
  }
  for (const r of (await run<aq.BucketLedgerRow>(db, aq.bucketLedger())).rows) {
    if (r.objects !== r.want_objects) push(report.bucketCounters, { name: r.name, field: 'objects', actual: r.objects, expected: r.want_objects }, ex);
    if (r.bytes !== r.want_bytes) push(report.bucketCounters, { name: r.name, field: 'bytes', actual: r.bytes, expected: r.want_bytes }, ex);
  }
  if (!opts.repair || report.backendCounters.count + report.bucketCounters.count === 0) return;
  await db.tx(async (q) => {
    report.repaired!.backendsCorrected = (await run(q, aq.correctBackendCounters())).rowCount;
    report.repaired!.bucketsCorrected = (await run(q, aq.correctBucketCounters())).rowCount;
  });
}
