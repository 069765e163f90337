import { createHash } from 'node:crypto';
import type { Backend, BackendListEntry, PhysicalMeta } from '../backends/backend.js';
import { byteCompare } from '../backends/fs-util.js';
import { logicalPrefix, versionIdOf } from '../backends/layout.js';
import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as aq from '../meta/queries/audit.js';
import { pool } from './fsck.js';

/**
 * `s3-orchestrator rebuild --from-backends`: reconstructs an EMPTY metadata database from what the
 * backends hold. Every backend is listed in full, in byte order, and the listings are merged by logical
 * prefix (`<bucket>/<h0:2>/<h2:32>/`: every generation of one key on every backend), so memory stays
 * bounded by one key's generations whatever the number of objects. Per key:
 * - the newest generation (the greatest version id: ids start with their write's time) becomes the live
 *   version; its identity, content headers, user metadata, multipart ETag and part sizes come from the
 *   meta stored with the bytes; a single PUT's ETag (not known when its bytes were stored) is recomputed
 *   as the MD5 of the bytes, read once from one copy;
 * - every backend holding that generation's bytes (at the original key or a copy key) becomes a copy;
 * - older generations, duplicate copies on one backend and copies whose size disagrees are queued for
 *   deletion (delete-copy tasks counted in the ledger, after `deleteDelayMs`), so an operator can still
 *   stop the workers and look before they run.
 * Buckets found that the configuration does not declare are created (source `admin`, with no grants).
 * Finally the quota counters and bucket statistics are computed from the rows. What cannot be recovered
 * is listed in docs/operations.md.
 */

export interface RebuildOptions {
  /** Delay of the deletions of bytes not kept (default 1 hour). */
  deleteDelayMs?: number;
  /** Examples kept per class in the report (default 10). */
  examples?: number;
  progress?: (line: string) => void;
}

export interface RebuildReport {
  /** Objects listed per backend. */
  listed: Record<string, number>;
  buckets: { found: string[]; created: string[] };
  versions: number;
  copies: number;
  bytes: number;
  multipart: number;
  /** ETags recomputed by reading the bytes (single PUTs). */
  etagsComputed: number;
  /** Physical objects queued for deletion: older generations, duplicates, disagreeing copies. */
  queuedDeletions: { count: number; bytes: number; examples: { backend: string; physicalKey: string; reason: string }[] };
  /** Keys whose newest generation could not be rebuilt (no readable meta, or meta that does not match). */
  skipped: { count: number; examples: { backend: string; physicalKey: string; reason: string }[] };
  /** Objects whose key is not in the physical layout (left alone). */
  foreign: number;
}

/** The database is not empty: rebuild refuses to touch it. */
export class RebuildRefused extends Error {
  override readonly name = 'RebuildRefused';
}

/** `<bucket>/<h0:2>/<h2:32>/<version id>[.<6 hex>]`. */
const LAYOUT = /^([^/]+)\/[0-9a-f]{2}\/[0-9a-f]{30}\/[0-9a-f]{32}(\.[0-9a-f]{6})?$/;
const PAGE = 1000;
/** Keys written per transaction, and planned (HEADs, ETag reads) at once. */
const BATCH_KEYS = 64;
const PLAN_CONCURRENCY = 8;

/** One backend's listing, read page by page, yielding only keys of the physical layout. */
class Cursor {
  #entries: BackendListEntry[] = [];
  #i = 0;
  #done = false;
  #after: string | undefined;
  listed = 0;
  foreign = 0;
  constructor(readonly backend: Backend) {}

  async peek(): Promise<BackendListEntry | undefined> {
    for (;;) {
      while (this.#i >= this.#entries.length) {
        if (this.#done) return undefined;
        const page = await this.backend.list('', { ...(this.#after !== undefined ? { startAfter: this.#after } : {}), limit: PAGE });
        this.#entries = page.entries;
        this.#i = 0;
        this.listed += page.entries.length;
        if (page.entries.length > 0) this.#after = page.entries.at(-1)!.key;
        if (!page.truncated || page.entries.length === 0) this.#done = true;
      }
      const e = this.#entries[this.#i]!;
      if (LAYOUT.test(e.key)) return e;
      this.foreign++;
      this.#i++;
    }
  }

  next(): void {
    this.#i++;
  }
}

const prefixOf = (key: string) => key.slice(0, key.lastIndexOf('/') + 1);

/** A physical object of one key, on one backend. */
interface Found {
  backend: Backend;
  entry: BackendListEntry;
  versionId: string;
}

/**
 * Creates the configured buckets (source `config`) before a rebuild, so objects found in them land in the
 * buckets `serve` will sync credentials onto at its next start.
 */
export async function declareBuckets(db: Db, names: readonly string[]): Promise<void> {
  await db.tx(async (q) => {
    for (const n of names) await run(q, aq.ensureBucket(n, 'config'));
  });
}

/** Rebuilds the database from `backends`. The backends' rows and the configured buckets must exist. */
export async function rebuildFromBackends(db: Db, backends: readonly Backend[], opts: RebuildOptions = {}): Promise<RebuildReport> {
  const held = (await run<{ versions: number; copies: number; uploads: number; deletions: number }>(db, aq.contentCounts())).rows[0]!;
  if (held.versions + held.copies + held.uploads + held.deletions > 0) {
    throw new RebuildRefused(
      `the metadata database is not empty (${held.versions} object versions, ${held.copies} copies, ${held.uploads} multipart uploads, ` +
        `${held.deletions} queued deletions): rebuild --from-backends only fills an empty database; point database.url or ` +
        `database.path at a new one`,
    );
  }
  const ex = opts.examples ?? 10;
  const report: RebuildReport = {
    listed: {},
    buckets: { found: [], created: [] },
    versions: 0,
    copies: 0,
    bytes: 0,
    multipart: 0,
    etagsComputed: 0,
    queuedDeletions: { count: 0, bytes: 0, examples: [] },
    skipped: { count: 0, examples: [] },
    foreign: 0,
  };
  const writer = new PlanWriter(report, await existingBuckets(db), opts.deleteDelayMs ?? 60 * 60_000, ex);
  const cursors = backends.map((b) => new Cursor(b));
  let groups = 0;
  let batch: { prefix: string; group: Found[] }[] = [];
  // Keys are planned a few at a time (HEADs, ETag reads) and written in one transaction per batch.
  const flush = async () => {
    const plans = await pool(batch, PLAN_CONCURRENCY, (b) => planKey(b.prefix, b.group));
    batch = [];
    await db.tx(async (q) => {
      for (const plan of plans) await writer.write(q, plan);
    });
  };
  for (;;) {
    const heads = await Promise.all(cursors.map((c) => c.peek()));
    let min: string | undefined;
    for (const h of heads) if (h && (min === undefined || byteCompare(prefixOf(h.key), min) < 0)) min = prefixOf(h.key);
    if (min === undefined) break;
    const group: Found[] = [];
    for (const c of cursors) {
      for (let h = await c.peek(); h && prefixOf(h.key) === min; h = await c.peek()) {
        group.push({ backend: c.backend, entry: h, versionId: versionIdOf(h.key)! });
        c.next();
      }
    }
    batch.push({ prefix: min, group });
    if (batch.length >= BATCH_KEYS) await flush();
    if (++groups % 1000 === 0) opts.progress?.(`${groups} keys rebuilt`);
  }
  await flush();
  for (const c of cursors) {
    report.listed[c.backend.name] = c.listed;
    report.foreign += c.foreign;
  }
  // Counters from the rows: the drift of a fresh database's zero counters is exactly the ledger.
  await db.tx(async (q) => {
    await run(q, aq.correctBackendCounters());
    await run(q, aq.correctBucketCounters());
  });
  return report;
}

async function existingBuckets(db: Db): Promise<Set<string>> {
  return new Set((await run<{ name: string }>(db, aq.bucketNames())).rows.map((r) => r.name));
}

/** Writes the plans of keys into the database and counts them in the report. */
class PlanWriter {
  readonly #seen = new Set<string>();
  constructor(
    private readonly report: RebuildReport,
    private readonly existing: ReadonlySet<string>,
    private readonly delayMs: number,
    private readonly examples: number,
  ) {}

  async write(q: Queryable, plan: KeyPlan): Promise<void> {
    const r = this.report;
    if (plan.skip) {
      r.skipped.count++;
      if (r.skipped.examples.length < this.examples) r.skipped.examples.push(plan.skip);
    }
    const v = plan.version;
    if (v) {
      if (!this.#seen.has(v.bucket)) {
        this.#seen.add(v.bucket);
        r.buckets.found.push(v.bucket);
        if (!this.existing.has(v.bucket)) {
          await run(q, aq.ensureBucket(v.bucket, 'admin'));
          r.buckets.created.push(v.bucket);
        }
      }
      await run(q, aq.insertRebuiltVersion(v));
      for (const c of plan.copies) await run(q, aq.insertRebuiltCopy(v.versionId, c.backend.name, c.entry.key, c.entry.size));
      r.versions++;
      r.copies += plan.copies.length;
      r.bytes += v.size;
      if (v.partSizes) r.multipart++;
      if (plan.etagComputed) r.etagsComputed++;
    }
    for (const d of plan.drop) {
      await run(q, aq.queueCountedDelete(d.found.backend.name, d.found.entry.key, d.found.entry.size, `rebuild: ${d.reason}`, this.delayMs));
      r.queuedDeletions.count++;
      r.queuedDeletions.bytes += d.found.entry.size;
      if (r.queuedDeletions.examples.length < this.examples) {
        r.queuedDeletions.examples.push({ backend: d.found.backend.name, physicalKey: d.found.entry.key, reason: d.reason });
      }
    }
  }
}

interface KeyPlan {
  version?: aq.RebuiltVersion;
  copies: Found[];
  etagComputed: boolean;
  drop: { found: Found; reason: string }[];
  skip?: { backend: string; physicalKey: string; reason: string };
}

/** Decides what one key's physical objects become: the live version and its copies, and what goes. */
async function planKey(prefix: string, group: Found[]): Promise<KeyPlan> {
  const newestId = group.reduce((m, f) => (f.versionId > m ? f.versionId : m), '');
  const newest = group.filter((f) => f.versionId === newestId);
  const plan: KeyPlan = { copies: [], etagComputed: false, drop: group.filter((f) => f.versionId !== newestId).map((found) => ({ found, reason: 'older generation' })) };
  const heads = await Promise.all(newest.map((f) => f.backend.head(f.entry.key).catch(() => null)));
  const metas = heads.map((h) => h?.meta).filter((m): m is PhysicalMeta => m !== undefined);
  const meta = metas.find((m) => m.partSizes !== undefined) ?? metas.find((m) => m.etag !== undefined) ?? metas[0];
  const first = newest[0]!;
  if (!meta || meta.versionId !== newestId || logicalPrefix(meta.bucket, meta.key) !== prefix) {
    // Without its logical key the generation cannot be published, and the older ones stay as they are too.
    plan.drop = [];
    plan.skip = { backend: first.backend.name, physicalKey: first.entry.key, reason: meta ? 'its stored meta names another key or version' : 'no readable meta' };
    return plan;
  }
  const size = chooseSize(newest, meta);
  const keep = new Map<string, Found>();
  for (const f of newest) {
    if (f.entry.size !== size) {
      plan.drop.push({ found: f, reason: `size ${f.entry.size}, the generation has ${size}` });
      continue;
    }
    const other = keep.get(f.backend.name);
    // One copy per backend; the version's own key wins over a copy key.
    if (!other) keep.set(f.backend.name, f);
    else if (other.entry.key.length > f.entry.key.length) {
      plan.drop.push({ found: other, reason: 'duplicate copy on one backend' });
      keep.set(f.backend.name, f);
    } else plan.drop.push({ found: f, reason: 'duplicate copy on one backend' });
  }
  plan.copies = [...keep.values()];
  let etag = meta.etag ?? metas.find((m) => m.etag !== undefined)?.etag;
  try {
    if (plan.copies.length === 0) throw new Error(`no copy has the ${size} bytes its parts add up to`);
    if (etag === undefined) {
      // Every copy is read: the ETag becomes what scrub verifies copies against, so it must not come from
      // a damaged copy. Copies in the minority go; a tie publishes nothing.
      const sums = await Promise.all(plan.copies.map((c) => md5Of(c).catch(() => undefined)));
      const votes = new Map<string, number>();
      for (const m of sums) if (m !== undefined) votes.set(m, (votes.get(m) ?? 0) + 1);
      const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1]);
      if (ranked.length === 0) throw new Error('no copy could be read to compute the ETag');
      if (ranked.length > 1 && ranked[0]![1] === ranked[1]![1]) throw new Error(`its copies hold different bytes (MD5 ${[...votes.keys()].join(', ')})`);
      etag = ranked[0]![0];
      const agreeing = plan.copies.filter((_, i) => sums[i] === etag);
      for (const [i, c] of plan.copies.entries()) {
        if (sums[i] !== etag && sums[i] !== undefined) plan.drop.push({ found: c, reason: `bytes differ from the other copies (MD5 ${sums[i]})` });
      }
      // An unreadable copy stays a copy: scrub will judge it against the ETag.
      plan.copies = plan.copies.filter((c, i) => sums[i] === undefined || agreeing.includes(c));
      plan.etagComputed = true;
    }
  } catch (err) {
    // Nothing of the key is published, and nothing of it is deleted: fsck will show its bytes.
    return { copies: [], etagComputed: false, drop: [], skip: { backend: first.backend.name, physicalKey: first.entry.key, reason: err instanceof Error ? err.message : String(err) } };
  }
  const modified = plan.copies.map((c) => c.entry.modifiedMs).filter((m): m is number => m !== undefined);
  plan.version = {
    versionId: newestId,
    bucket: meta.bucket,
    key: meta.key,
    size,
    etag,
    contentType: meta.contentType ?? null,
    contentEncoding: meta.contentEncoding ?? null,
    contentDisposition: meta.contentDisposition ?? null,
    contentLanguage: meta.contentLanguage ?? null,
    cacheControl: meta.cacheControl ?? null,
    expires: meta.expires ?? null,
    userMeta: meta.userMeta ?? {},
    partSizes: meta.partSizes ?? null,
    // When the bytes landed (the write was published right after), else when the write began.
    createdAt: new Date(modified.length > 0 ? Math.min(...modified) : parseInt(newestId.slice(0, 12), 16)),
  };
  return plan;
}

/** The generation's size: the parts' sum for a multipart object, else the size most copies have. */
function chooseSize(newest: readonly Found[], meta: PhysicalMeta): number {
  if (meta.partSizes) return meta.partSizes.reduce((a, b) => a + b, 0);
  const votes = new Map<number, number>();
  for (const f of newest) votes.set(f.entry.size, (votes.get(f.entry.size) ?? 0) + 1);
  return [...votes.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]![0];
}

/** The MD5 of a copy's bytes, streamed; rejects when the copy cannot be read to its end. */
async function md5Of(c: Found): Promise<string> {
  const hash = createHash('md5');
  let n = 0;
  for await (const chunk of await c.backend.get(c.entry.key)) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  if (n !== c.entry.size) throw new Error(`${c.backend.name}: ${c.entry.key} read ${n} of ${c.entry.size} bytes`);
  return hash.digest('hex');
}
