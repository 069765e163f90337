import type { Db } from '../meta/db.js';
import type { Logger } from '../log.js';
import { drainJob } from './drain.js';
import { finishJobs, jobPlanHandler, type JobKindImpl } from './jobs.js';
import { purgeJob } from './purge.js';
import { rebalanceJob } from './rebalance.js';
import type { TaskHandler } from './tasks.js';

/** Every job kind core knows (drain, rebalance, bucket purge). */
export const JOB_KIND_IMPLS: readonly JobKindImpl[] = [drainJob, rebalanceJob, purgeJob];

/** The planner task handler of every job kind (registered with the task worker). */
export function jobTaskHandlers(db: Db, log: Logger): TaskHandler[] {
  return [jobPlanHandler(db, JOB_KIND_IMPLS, log)];
}

/** One step of the jobs worker: settles the jobs with nothing left. Returns how many changed state. */
export function settleJobs(db: Db, log: Logger): Promise<number> {
  return finishJobs(db, JOB_KIND_IMPLS, log);
}
