/**
 * Wiring of replication's task kinds (copy-version, repair-version, converge-replicas, scrub, scrub-deep)
 * and of its upkeep (replica convergence after a change of the wanted counts; the scrub tasks queued),
 * for the worker layer.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BackendRegistry } from './backends.js';
import type { PlacementStrategy } from './placement.js';
import { convergeChangedBuckets, convergeReplicasHandler, repairVersionHandler } from './repair.js';
import { copyVersionHandler, type ReplicationDeps } from './replicate.js';
import { deepScrubHandler, ensureScrubTasks, scrubHandler } from './scrub.js';
import type { Clock, Db, TaskHandler } from './tasks.js';
import { Bandwidth } from './verify.js';

/** Replication settings from the configuration (`placement.*`, `workers.*`). */
export interface ReplicationSettings {
  /** `placement.replicas`. */
  replicas: number;
  /** `placement.strategy`. */
  strategy: PlacementStrategy;
  /** `workers.cleanup_delay`: how long the bytes of a retired copy are kept. */
  cleanupDelayMs: number;
  /** `workers.repair_bandwidth`: bytes per second copy-version may stream on this instance; 0 = unlimited. */
  repairBandwidth: number;
  /** `workers.scrub_interval`: a copy is HEAD-checked again once its last check is older than this; 0 = off. */
  scrubIntervalMs: number;
  /** `workers.scrub_rate`: cheap checks per second. */
  scrubRate: number;
  /** `workers.scrub_deep_interval`: time between two deep passes (every copy re-read); 0 = off. */
  scrubDeepIntervalMs: number;
  /** `workers.scrub_bandwidth`: bytes per second the deep pass reads; 0 = unlimited. */
  scrubBandwidth: number;
}

/** The defaults config/load.ts applies (and hand-built configurations get). */
export const REPLICATION_DEFAULTS: ReplicationSettings = {
  replicas: 1,
  strategy: 'pack',
  cleanupDelayMs: 30_000,
  repairBandwidth: 0,
  scrubIntervalMs: 7 * 24 * 3_600_000,
  scrubRate: 10,
  scrubDeepIntervalMs: 30 * 24 * 3_600_000,
  scrubBandwidth: 10 * 1024 * 1024,
};

/** What the handlers run over. */
export interface ReplicationBase {
  db: Db;
  backends: BackendRegistry;
  log: Logger;
  metrics?: Metrics;
  clock?: Clock;
}

function deps(base: ReplicationBase, s: ReplicationSettings): ReplicationDeps {
  return {
    db: base.db,
    backends: base.backends,
    log: base.log,
    ...(base.metrics ? { metrics: base.metrics } : {}),
    ...(base.clock ? { clock: base.clock } : {}),
    replicas: s.replicas,
    strategy: s.strategy,
    cleanupDelayMs: s.cleanupDelayMs,
    bandwidth: new Bandwidth(s.repairBandwidth),
  };
}

/** The handlers of replication's task kinds; each call has its own bandwidth limits (call it once per instance). */
export function replicationTaskHandlers(base: ReplicationBase, settings: Partial<ReplicationSettings> = {}): TaskHandler[] {
  const s = { ...REPLICATION_DEFAULTS, ...settings };
  const d = deps(base, s);
  const scrub = {
    intervalMs: s.scrubIntervalMs,
    rate: s.scrubRate,
    deepIntervalMs: s.scrubDeepIntervalMs,
    bandwidth: new Bandwidth(s.scrubBandwidth),
  };
  return [copyVersionHandler(d), repairVersionHandler(d), convergeReplicasHandler(d), scrubHandler(d, scrub), deepScrubHandler(d, scrub)];
}

/**
 * Periodic upkeep (every instance, cheap): queues the convergence of buckets whose wanted replica count
 * changed, and the scrub tasks when they are on and not queued. Returns 0 (never "busy").
 */
export async function replicationUpkeep(base: ReplicationBase, settings: Partial<ReplicationSettings> = {}): Promise<number> {
  const s = { ...REPLICATION_DEFAULTS, ...settings };
  const queued = await convergeChangedBuckets({ db: base.db, replicas: s.replicas, ...(base.clock ? { clock: base.clock } : {}) });
  if (queued.length > 0) base.log.info('replica counts changed; converging', { buckets: queued });
  await base.db.tx((q) => ensureScrubTasks(q, { intervalMs: s.scrubIntervalMs, deepIntervalMs: s.scrubDeepIntervalMs }, base.clock));
  return 0;
}
