import { randomUUID } from 'node:crypto';
import type { BackendRegistry } from '../core/backends.js';
import { deleteCopyHandler, foldBucketStats } from '../core/copies.js';
import { jobTaskHandlers, settleJobs } from '../core/job-kinds.js';
import type { PlacementStrategy } from '../core/placement.js';
import { replicationTaskHandlers, replicationUpkeep, type ReplicationSettings } from '../core/replication.js';
import { abortAbandonedUploads, abortStaleWrites, rollBackStuckCompletions } from '../core/sweepers.js';
import { purgeDeadTasks, systemClock, TaskPool, type Clock, type Db, type TaskHandler } from '../core/tasks.js';
import type { WorkersConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { WorkerRunner, type Worker } from './runner.js';

const BATCH = 32;
/** Counter deltas folded per step of the bucket-stats worker. */
const FOLD_BATCH = 10_000;
/** Dead tasks are kept this long for inspection (metrics, admin), then removed. */
export const DEAD_TASK_RETENTION_MS = 30 * 24 * 3_600_000;

export interface WorkerDeps {
  db: Db;
  backends: BackendRegistry;
  log: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** Identity of this instance (lease owner of the tasks it runs). */
  owner?: string;
  /** `placement.rebalance_on_add`: the strategy and placement order a rebalance started on an addition follows. */
  rebalanceOnAdd?: { strategy: PlacementStrategy; order: () => readonly string[] };
  /** Replication settings (placement.replicas, workers.repair_* and scrub_*); defaults when absent. */
  replication?: Partial<ReplicationSettings>;
}

/** The task handlers of every kind core defines. */
export function taskHandlers(deps: WorkerDeps): TaskHandler[] {
  return [deleteCopyHandler(deps.db, deps.backends, deps.log), ...jobTaskHandlers(deps.db, deps.log), ...replicationTaskHandlers(deps, deps.replication)];
}

/** The task queue consumer: claims due tasks of every kind and runs their handlers. */
export function taskWorker(deps: WorkerDeps): Worker {
  const handlers = taskHandlers(deps);
  const queue = { db: deps.db, log: deps.log, owner: deps.owner ?? randomUUID(), ...(deps.metrics ? { metrics: deps.metrics } : {}), ...(deps.clock ? { clock: deps.clock } : {}) };
  // A pool, not batches: each finished task frees a slot at once, so one slow task (a big move) never
  // holds back the claim of the next ones.
  const pool = new TaskPool(queue, handlers, BATCH);
  return {
    name: 'tasks',
    step: async () => {
      const claimed = await pool.fill();
      if (pool.running >= BATCH) {
        await pool.next();
        return 'busy';
      }
      return claimed > 0 ? 'busy' : 'idle';
    },
    stop: () => pool.drain(),
  };
}

/** A worker whose step does up to `limit` items and is busy while it keeps finding that many. */
function sweeper(name: string, sweep: () => Promise<number>): Worker {
  return { name, step: async () => ((await sweep()) > 0 ? 'busy' : 'idle') };
}

/** Starts every background worker of this instance. */
export function startWorkers(deps: WorkerDeps, cfg: WorkersConfig, log: Logger): WorkerRunner {
  const clock = deps.clock ?? systemClock;
  const runner = new WorkerRunner(log);
  const staleEvery = Math.max(cfg.staleWriteMs / 4, 1_000);
  runner.start(taskWorker(deps), cfg.cleanupIntervalMs);
  runner.start(sweeper('stale-writes', () => abortStaleWrites(deps.db, cfg.staleWriteMs, clock)), staleEvery);
  runner.start(sweeper('stuck-completions', () => rollBackStuckCompletions(deps.db, cfg.staleWriteMs, clock)), staleEvery);
  runner.start(
    sweeper('abandoned-uploads', () => abortAbandonedUploads(deps.db, cfg.abandonedUploadMs, clock)),
    Math.min(Math.max(cfg.abandonedUploadMs / 24, 1_000), 3_600_000),
  );
  // Busy while a fold takes a full batch (more deltas are waiting).
  runner.start(sweeper('bucket-stats', async () => ((await foldBucketStats(deps.db, FOLD_BATCH)) === FOLD_BATCH ? 1 : 0)), 5_000);
  runner.start(sweeper('dead-tasks', () => purgeDeadTasks(deps.db, DEAD_TASK_RETENTION_MS, clock)), 3_600_000);
  // Settles jobs with nothing left (done, failed, cancelled, or another planning pass).
  runner.start(sweeper('jobs', () => settleJobs(deps.db, deps.log, deps.rebalanceOnAdd)), 1_000);
  // Replica convergence after a change of the wanted counts, and the scrub tasks queued (cheap, idempotent).
  runner.start(sweeper('replication-upkeep', () => replicationUpkeep(deps, deps.replication)), 60_000);
  return runner;
}
