import { abortAbandonedUploads, abortStaleWrites, runCleanupBatch, type CleanupDeps } from '../core/cleanup.js';
import type { WorkersConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { WorkerRunner, type Worker } from './runner.js';

const BATCH = 32;

/** The cleanup queue consumer: deletes orphaned physical keys and releases their quota. */
export function cleanupWorker(deps: CleanupDeps): Worker {
  return {
    name: 'cleanup',
    step: async () => ((await runCleanupBatch(deps, BATCH)) === BATCH ? 'busy' : 'idle'),
  };
}

/** Aborts writes whose instance stopped heart-beating (crashed mid-upload). */
export function janitorWorker(deps: Pick<CleanupDeps, 'db'>, staleMs: number): Worker {
  return {
    name: 'stale-writes',
    step: async () => ((await abortStaleWrites(deps.db, staleMs)) > 0 ? 'busy' : 'idle'),
  };
}

/** Aborts multipart uploads older than the configured age (their parts go through the cleanup queue). */
export function abandonedUploadsWorker(deps: Pick<CleanupDeps, 'db'>, maxAgeMs: number): Worker {
  return {
    name: 'abandoned-uploads',
    step: async () => ((await abortAbandonedUploads(deps.db, maxAgeMs)) > 0 ? 'busy' : 'idle'),
  };
}

/** Starts every background worker of this instance. */
export function startWorkers(deps: CleanupDeps, cfg: WorkersConfig, log: Logger): WorkerRunner {
  const runner = new WorkerRunner(log);
  runner.start(cleanupWorker(deps), cfg.cleanupIntervalMs);
  runner.start(janitorWorker(deps, cfg.staleWriteMs), Math.max(cfg.staleWriteMs / 4, 1_000));
  runner.start(abandonedUploadsWorker(deps, cfg.abandonedUploadMs), Math.min(Math.max(cfg.abandonedUploadMs / 24, 1_000), 3_600_000));
  return runner;
}
