import type { Db } from '../meta/db.js';
import type { Logger } from '../log.js';
import { cancelDrain, drainJob, startDrain, type DrainStarted } from './drain.js';
import {
  cancelJob,
  finishJobs,
  getJob,
  JobError,
  jobPlanHandler,
  listJobs,
  pauseJob,
  resumeJob,
  type JobKind,
  type JobKindImpl,
  type JobRecord,
  type JobState,
} from './jobs.js';
import type { PlacementStrategy } from './placement.js';
import { purgeJob, startBucketPurge } from './purge.js';
import { applyRebalance, planRebalance, rebalanceJob, rebalanceOnAdd, type RebalancePlan } from './rebalance.js';
import type { TaskHandler } from './tasks.js';

/** Every job kind core knows (drain, rebalance, bucket purge). */
export const JOB_KIND_IMPLS: readonly JobKindImpl[] = [drainJob, rebalanceJob, purgeJob];

/** The planner task handler of every job kind (registered with the task worker). */
export function jobTaskHandlers(db: Db, log: Logger): TaskHandler[] {
  return [jobPlanHandler(db, JOB_KIND_IMPLS, log)];
}

/**
 * One step of the jobs worker: starts a rebalance when a backend was added and `onAdd` is set
 * (`placement.rebalance_on_add`), then settles the jobs with nothing left. Returns how many changed state.
 */
export async function settleJobs(
  db: Db,
  log: Logger,
  onAdd?: { strategy: PlacementStrategy; order: () => readonly string[] },
): Promise<number> {
  if (onAdd) {
    const job = await rebalanceOnAdd(db, onAdd.order(), onAdd.strategy);
    if (job) log.info('backend added: rebalance started', { job: job.id, trigger: job.params.trigger });
  }
  return finishJobs(db, JOB_KIND_IMPLS, log);
}

/** What the job control plane needs to know about the running configuration. */
export interface JobControlOptions {
  /** `placement.strategy` (rebalance targets). */
  strategy: PlacementStrategy;
  /** Configured backend names in configuration order (rebalance considers these). */
  backendOrder: () => readonly string[];
  /** `workers.cleanup_delay` (a purge delays its physical deletions like a delete). */
  cleanupDelayMs: number;
  /** Called after a job was created or resumed, so this instance's workers pick it up at once. */
  wake?: () => void;
}

/**
 * The control plane of jobs, as the admin API uses it: one object over the database with every job
 * operation (list, get, pause, resume, cancel), drains, rebalances and bucket purges. Errors are
 * {@link JobError}s (NotFound, InvalidArgument naming the field, FailedPrecondition with the reason).
 */
export class JobControl {
  readonly #db: Db;
  readonly #opts: JobControlOptions;

  constructor(db: Db, opts: JobControlOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  get strategy(): PlacementStrategy {
    return this.#opts.strategy;
  }

  list(f: { kind?: JobKind; states?: readonly JobState[]; beforeId?: number; limit: number }): Promise<JobRecord[]> {
    return listJobs(this.#db, f);
  }

  async get(id: number): Promise<JobRecord> {
    checkId(id);
    const job = await getJob(this.#db, id);
    if (!job) throw new JobError('NotFound', `job ${id} does not exist`);
    return job;
  }

  pause(id: number): Promise<JobRecord> {
    checkId(id);
    return pauseJob(this.#db, id);
  }

  async resume(id: number): Promise<JobRecord> {
    checkId(id);
    const job = await resumeJob(this.#db, id);
    this.#opts.wake?.();
    return job;
  }

  cancel(id: number): Promise<JobRecord> {
    checkId(id);
    return cancelJob(this.#db, id, JOB_KIND_IMPLS);
  }

  async drain(backend: string, createdBy = ''): Promise<DrainStarted> {
    const started = await startDrain(this.#db, backend, createdBy);
    this.#opts.wake?.();
    return started;
  }

  cancelDrain(backend: string): Promise<JobRecord | undefined> {
    return cancelDrain(this.#db, backend, JOB_KIND_IMPLS);
  }

  planRebalance(maxMoves: number): Promise<RebalancePlan> {
    return planRebalance(this.#db, this.#opts.backendOrder(), this.#opts.strategy, maxMoves);
  }

  async applyRebalance(createdBy = ''): Promise<JobRecord> {
    const job = await applyRebalance(this.#db, this.#opts.backendOrder(), this.#opts.strategy, createdBy);
    this.#opts.wake?.();
    return job;
  }

  /** Empties a bucket and deletes it, as a job (BucketService.Delete with force). */
  async purgeBucket(bucket: string, createdBy = ''): Promise<JobRecord> {
    const { jobId } = await this.#db.tx((q) => startBucketPurge(q, bucket, { cleanupDelayMs: this.#opts.cleanupDelayMs, createdBy }));
    this.#opts.wake?.();
    return (await getJob(this.#db, jobId))!;
  }
}

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id <= 0) throw new JobError('InvalidArgument', 'id must be a positive job id', 'id');
}
