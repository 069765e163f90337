/**
 * Scrub: verifies that copies still hold what the database says, and hands bad ones to repair.
 *
 * Two singleton tasks, each re-queueing itself in its completing transaction (so exactly one instance
 * works on each pass at a time, a crashed pass resumes from the lease, and nothing runs twice):
 * - `scrub` (cheap pass): HEAD of the least recently verified live copies (index object_copies_verified),
 *   those not verified within `workers.scrub_interval`, on backends this instance sees as available; a
 *   copy that is missing or has the wrong size is marked bad ({@link markCopyBad} queues its repair), the
 *   others get `verified_at = now()`; a version whose live copy count differs from its bucket's replica
 *   count gets a `repair-version` (so a copy-version task that died is made up for within a scrub
 *   interval). Paced at `workers.scrub_rate` copies per second.
 * - `scrub-deep` (deep pass): walks every live copy in primary-key order (the cursor is the task's
 *   payload) and re-reads it whole, paced by `workers.scrub_bandwidth`, checking the size and the ETag
 *   recomputed from the bytes: the MD5 of a single-part object, or md5-of-part-md5s-N of a multipart object
 *   over its stored part sizes. An object whose ETag cannot be recomputed (multipart without stored part
 *   sizes, or an ETag that is not an MD5) is checked by size only. A pass starts every
 *   `workers.scrub_deep_interval`.
 * A copy whose backend cannot be reached is skipped (neither verified nor marked): an outage is not
 * corruption, and the breaker and repair deal with it.
 */
import type { Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as rq from '../meta/queries/replication.js';
import { markCopiesVerified, markCopyBad } from './copies.js';
import { verifyCopy } from './repair.js';
import type { ReplicationDeps } from './replicate.js';
import { enqueueTask, type Clock, type TaskEffect, type TaskHandler } from './tasks.js';
import { expectedBytes, type Bandwidth } from './verify.js';

/** Scrub's pace (`workers.scrub_*`). */
export interface ScrubSettings {
  /** A copy is HEAD-checked again once its last verification is older than this, ms; 0 turns the cheap pass off. */
  intervalMs: number;
  /** Cheap checks per second. */
  rate: number;
  /** A deep pass (every copy re-read) starts this long after the previous one ended, ms; 0 turns it off. */
  deepIntervalMs: number;
  /** Shared limit on the bytes the deep pass reads (`workers.scrub_bandwidth`). */
  bandwidth: Bandwidth;
}

/** When nothing is due, the cheap pass looks again after this long. */
const IDLE_MS = 60_000;
/** HEADs in flight at once. */
const HEAD_CONCURRENCY = 8;
/** Copies one run of the deep pass re-reads. */
const DEEP_PAGE = 16;

interface Verdict {
  ok: { versionId: string; backend: string }[];
  bad: { versionId: string; backend: string; reason: string }[];
}

/** Records what a pass found, in its completing transaction. */
async function record(q: Queryable, v: Verdict): Promise<void> {
  await markCopiesVerified(q, v.ok);
  for (const b of v.bad) await markCopyBad(q, b.versionId, b.backend, b.reason);
}

/**
 * Queues the scrub tasks that are on and not queued yet (singletons; a no-op when they are). The first
 * cheap pass starts within a minute, the first deep pass one `scrub_deep_interval` after the task was
 * first queued (a new deployment has nothing to re-read; an upgraded one is not read whole at its start).
 */
export async function ensureScrubTasks(q: Queryable, s: Pick<ScrubSettings, 'intervalMs' | 'deepIntervalMs'>, clock?: Clock): Promise<void> {
  if (s.intervalMs > 0) await enqueueTask(q, 'scrub', {}, { singletonKey: 'scrub', delayMs: Math.min(IDLE_MS, s.intervalMs) }, clock);
  if (s.deepIntervalMs > 0) await enqueueTask(q, 'scrub-deep', {}, { singletonKey: 'scrub-deep', delayMs: s.deepIntervalMs }, clock);
}

/** The cheap pass (see the module comment). */
export function scrubHandler(deps: ReplicationDeps, s: ScrubSettings): TaskHandler {
  return {
    kind: 'scrub',
    async run(): Promise<TaskEffect | void> {
      if (s.intervalMs <= 0 || s.rate <= 0) return;
      const started = Date.now();
      const batch = Math.max(1, Math.min(500, Math.round(s.rate * 10)));
      const health = deps.backends.health;
      const reachable = deps.backends.names.filter((n) => !health || health.isAvailable(n));
      const skew = deps.clock?.skewMs() ?? 0;
      const { rows } = await run<rq.ScrubRow>(deps.db, rq.scrubCandidates(reachable, s.intervalMs, batch, skew, deps.replicas));
      // Versions whose live copy count is off get a repair (a singleton: queued once however many copies say so).
      const offCount = [...new Set(rows.filter((r) => r.live !== r.want).map((r) => r.version_id))];
      const verdict: Verdict = { ok: [], bad: [] };
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < rows.length) {
          const c = rows[next++]!;
          const id = { versionId: c.version_id, backend: c.backend };
          try {
            const head = await deps.backends.get(c.backend)!.head(c.physical_key);
            if (!head) verdict.bad.push({ ...id, reason: 'scrub: missing' });
            else if (head.size !== c.size) verdict.bad.push({ ...id, reason: `scrub: size ${head.size}, expected ${c.size}` });
            else verdict.ok.push(id);
          } catch (err) {
            deps.metrics?.scrubChecked.inc({ pass: 'cheap', outcome: 'error' });
            deps.log.warn('scrub could not check a copy', { backend: c.backend, physicalKey: c.physical_key, err });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, rows.length) }, worker));
      deps.metrics?.scrubChecked.inc({ pass: 'cheap', outcome: 'ok' }, verdict.ok.length);
      deps.metrics?.scrubChecked.inc({ pass: 'cheap', outcome: 'bad' }, verdict.bad.length);
      const full = rows.length === batch;
      const delayMs = full ? Math.max(0, (batch / s.rate) * 1000 - (Date.now() - started)) : Math.min(IDLE_MS, s.intervalMs);
      return async (q) => {
        await record(q, verdict);
        if (offCount.length > 0) await run(q, rq.enqueuePerVersion('repair-version', 'repair:', offCount, { reason: 'scrub: replica count' }, skew));
        await enqueueTask(q, 'scrub', {}, { singletonKey: 'scrub', delayMs }, deps.clock);
      };
    },
  };
}

/** Payload of the `scrub-deep` task: where the pass is. */
interface DeepPayload {
  after?: { versionId: string; backend: string };
}

/** The deep pass (see the module comment). */
export function deepScrubHandler(deps: ReplicationDeps, s: ScrubSettings): TaskHandler {
  return {
    kind: 'scrub-deep',
    async run(task, ctx): Promise<TaskEffect | void> {
      if (s.deepIntervalMs <= 0) return;
      const p = task.payload as DeepPayload;
      const { rows } = await run<rq.ScrubRow>(deps.db, rq.deepScrubPage(p.after ?? null, DEEP_PAGE));
      const verdict: Verdict = { ok: [], bad: [] };
      for (const c of rows) {
        const id = { versionId: c.version_id, backend: c.backend };
        const v = await verifyCopy(
          deps.backends,
          { backend: c.backend, physicalKey: c.physical_key },
          expectedBytes(c.size, c.etag, c.part_sizes),
          s.bandwidth,
        );
        if (v.outcome === 'ok') {
          verdict.ok.push(id);
          deps.metrics?.scrubBytes.inc(c.size);
        } else if (v.outcome === 'bad') verdict.bad.push({ ...id, reason: `deep scrub: ${v.detail ?? 'bad'}` });
        else deps.log.warn('deep scrub could not read a copy', { backend: c.backend, physicalKey: c.physical_key, detail: v.detail });
        deps.metrics?.scrubChecked.inc({ pass: 'deep', outcome: v.outcome === 'unreachable' ? 'error' : v.outcome });
        if (!(await ctx.heartbeat({ after: id }))) throw new Error('the deep scrub lost its lease');
      }
      const last = rows.at(-1);
      const next: DeepPayload = rows.length === DEEP_PAGE && last ? { after: { versionId: last.version_id, backend: last.backend } } : {};
      const delayMs = next.after ? 0 : s.deepIntervalMs;
      if (!next.after) deps.log.info('deep scrub pass finished', { lastPage: rows.length });
      return async (q) => {
        await record(q, verdict);
        await enqueueTask(q, 'scrub-deep', next, { singletonKey: 'scrub-deep', delayMs }, deps.clock);
      };
    },
  };
}
