import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, durationMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  JobKind,
  JobService,
  JobState,
  type ApplyRebalanceResponseSchema,
  type CancelDrainRequest,
  type CancelDrainResponseSchema,
  type CancelJobRequest,
  type CancelJobResponseSchema,
  type DrainBackendRequest,
  type DrainBackendResponseSchema,
  type GetJobRequest,
  type GetJobResponseSchema,
  type JobSchema,
  type ListJobsRequest,
  type ListJobsResponseSchema,
  type PauseJobRequest,
  type PauseJobResponseSchema,
  type PlanRebalanceRequest,
  type PlanRebalanceResponseSchema,
  type ResumeJobRequest,
  type ResumeJobResponseSchema,
  type WatchJobRequest,
  type WatchJobResponseSchema,
} from '../../gen/s3o/admin/v1/jobs_pb.js';
import { FieldViolationSchema } from '../../gen/s3o/admin/v1/backends_pb.js';
import type { JobControl } from '../core/job-kinds.js';
import { JobError, type JobKind as CoreJobKind, type JobRecord, type JobState as CoreJobState } from '../core/jobs.js';
import type { Logger } from '../log.js';
import { toConnectError } from './service.js';

const KIND_TO_WIRE: Record<CoreJobKind, JobKind> = {
  drain: JobKind.DRAIN,
  rebalance: JobKind.REBALANCE,
  'purge-bucket': JobKind.PURGE_BUCKET,
};
const KIND_FROM_WIRE = new Map(Object.entries(KIND_TO_WIRE).map(([k, v]) => [v, k as CoreJobKind]));

const STATE_TO_WIRE: Record<CoreJobState, JobState> = {
  running: JobState.RUNNING,
  paused: JobState.PAUSED,
  cancelling: JobState.CANCELLING,
  cancelled: JobState.CANCELLED,
  done: JobState.DONE,
  failed: JobState.FAILED,
};
const STATE_FROM_WIRE = new Map(Object.entries(STATE_TO_WIRE).map(([k, v]) => [v, k as CoreJobState]));

const TERMINAL: ReadonlySet<CoreJobState> = new Set(['cancelled', 'done', 'failed']);

/** How far back WatchJob measures the rate. */
const RATE_WINDOW_MS = 10_000;

function u64(n: number): bigint {
  return BigInt(Math.max(0, Math.trunc(n)));
}

/** A measured rate, for the progress of a watched job. */
interface Rate {
  bytesPerSecond: number;
  itemsPerSecond: number;
}

/** A job record as the wire carries it; `rate` adds the rate and the ETA (WatchJob). */
export function jobToWire(j: JobRecord, rate?: Rate): MessageInitShape<typeof JobSchema> {
  const p = j.progress;
  let etaMs: number | undefined;
  if (rate && j.state === 'running') {
    const bytesLeft = p.bytesTotal - p.bytesDone;
    const itemsLeft = p.itemsTotal - p.itemsDone;
    if (rate.bytesPerSecond > 0 && bytesLeft > 0) etaMs = (bytesLeft / rate.bytesPerSecond) * 1000;
    else if (rate.itemsPerSecond > 0 && itemsLeft > 0) etaMs = (itemsLeft / rate.itemsPerSecond) * 1000;
    else if (itemsLeft === 0 && p.planned) etaMs = 0;
  }
  return {
    id: u64(j.id),
    kind: KIND_TO_WIRE[j.kind],
    target: j.target,
    state: STATE_TO_WIRE[j.state],
    message: j.message,
    passes: j.passes,
    createdBy: j.createdBy,
    createdAt: timestampFromDate(j.createdAt),
    updatedAt: timestampFromDate(j.updatedAt),
    ...(j.finishedAt ? { finishedAt: timestampFromDate(j.finishedAt) } : {}),
    progress: {
      itemsTotal: u64(p.itemsTotal),
      itemsDone: u64(p.itemsDone),
      bytesTotal: u64(p.bytesTotal),
      bytesDone: u64(p.bytesDone),
      planned: p.planned,
      queued: u64(p.queued),
      running: u64(p.running),
      dead: u64(p.dead),
      errors: u64(p.errors),
      lastError: p.lastError ?? '',
      bytesPerSecond: rate?.bytesPerSecond ?? 0,
      itemsPerSecond: rate?.itemsPerSecond ?? 0,
      ...(etaMs !== undefined ? { eta: durationFromMs(Math.round(etaMs)) } : {}),
    },
  };
}

/** INVALID_ARGUMENT naming the field at fault (message and FieldViolation detail). */
function invalid(field: string, message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument, undefined, [{ desc: FieldViolationSchema, value: { field, description: message } }]);
}

/** A request id (uint64 on the wire) as a job id; INVALID_ARGUMENT naming the field when it is not one. */
function jobId(id: bigint, field = 'id'): number {
  if (id <= 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(field, `${field} must be a positive job id`);
  return Number(id);
}

/** Who asked, for the job's record: the client's user agent (the admin API has no user identities). */
function requester(ctx: HandlerContext | undefined): string {
  return `admin-api${ctx?.requestHeader.get('user-agent') ? ` (${ctx.requestHeader.get('user-agent')})` : ''}`.slice(0, 200);
}

/** Sleeps `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * `s3o.admin.v1.JobService` over {@link JobControl}. Job errors map to NOT_FOUND, INVALID_ARGUMENT (the
 * field named) and FAILED_PRECONDITION (the reason); the rest goes through {@link toConnectError}.
 */
export class JobServiceImpl implements ServiceImpl<typeof JobService> {
  readonly #jobs: JobControl;
  readonly #log: Logger;

  constructor(jobs: JobControl, log: Logger) {
    this.#jobs = jobs;
    this.#log = log;
  }

  async listJobs(req: ListJobsRequest): Promise<MessageInitShape<typeof ListJobsResponseSchema>> {
    return this.#guard('ListJobs', async () => {
      if (req.limit > 1000) throw invalid('limit', 'limit must be at most 1000');
      const kind = req.kind === JobKind.UNSPECIFIED ? undefined : KIND_FROM_WIRE.get(req.kind);
      if (req.kind !== JobKind.UNSPECIFIED && kind === undefined) throw invalid('kind', `kind ${req.kind} is not a job kind`);
      const states = req.states.map((s) => {
        const st = STATE_FROM_WIRE.get(s);
        if (st === undefined) throw invalid('states', `states: ${s} is not a job state`);
        return st;
      });
      const jobs = await this.#jobs.list({
        ...(kind ? { kind } : {}),
        states,
        ...(req.beforeId > 0n ? { beforeId: jobId(req.beforeId, 'before_id') } : {}),
        limit: req.limit === 0 ? 100 : req.limit,
      });
      return { jobs: jobs.map((j) => jobToWire(j)) };
    });
  }

  async getJob(req: GetJobRequest): Promise<MessageInitShape<typeof GetJobResponseSchema>> {
    return this.#guard('GetJob', async () => ({ job: jobToWire(await this.#jobs.get(jobId(req.id))) }));
  }

  async *watchJob(req: WatchJobRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof WatchJobResponseSchema>> {
    const id = await this.#guard('WatchJob', async () => jobId(req.id));
    const intervalMs = req.interval ? durationMs(req.interval) : 1000;
    if (req.interval && (intervalMs < 100 || intervalMs > 60_000)) {
      throw invalid('interval', 'interval must be between 100ms and 1m');
    }
    const every = intervalMs === 0 ? 1000 : intervalMs;
    const samples: { at: number; bytes: number; items: number }[] = [];
    for (;;) {
      const job = await this.#guard('WatchJob', () => this.#jobs.get(id));
      const now = Date.now();
      samples.push({ at: now, bytes: job.progress.bytesDone, items: job.progress.itemsDone });
      while (samples.length > 2 && now - samples[0]!.at > RATE_WINDOW_MS) samples.shift();
      const first = samples[0]!;
      const secs = (now - first.at) / 1000;
      const rate = secs > 0 ? { bytesPerSecond: (job.progress.bytesDone - first.bytes) / secs, itemsPerSecond: (job.progress.itemsDone - first.items) / secs } : undefined;
      yield { job: jobToWire(job, rate ?? { bytesPerSecond: 0, itemsPerSecond: 0 }) };
      if (TERMINAL.has(job.state) || ctx.signal.aborted) return;
      await pause(every, ctx.signal);
      if (ctx.signal.aborted) return;
    }
  }

  async cancelJob(req: CancelJobRequest): Promise<MessageInitShape<typeof CancelJobResponseSchema>> {
    return this.#guard('CancelJob', async () => ({ job: jobToWire(await this.#jobs.cancel(jobId(req.id))) }));
  }

  async pauseJob(req: PauseJobRequest): Promise<MessageInitShape<typeof PauseJobResponseSchema>> {
    return this.#guard('PauseJob', async () => ({ job: jobToWire(await this.#jobs.pause(jobId(req.id))) }));
  }

  async resumeJob(req: ResumeJobRequest): Promise<MessageInitShape<typeof ResumeJobResponseSchema>> {
    return this.#guard('ResumeJob', async () => ({ job: jobToWire(await this.#jobs.resume(jobId(req.id))) }));
  }

  async drainBackend(req: DrainBackendRequest, ctx?: HandlerContext): Promise<MessageInitShape<typeof DrainBackendResponseSchema>> {
    return this.#guard('DrainBackend', async () => {
      const { job, existing } = await this.#jobs.drain(req.backend, requester(ctx));
      return { job: jobToWire(job), alreadyDraining: existing };
    });
  }

  async cancelDrain(req: CancelDrainRequest): Promise<MessageInitShape<typeof CancelDrainResponseSchema>> {
    return this.#guard('CancelDrain', async () => {
      const job = await this.#jobs.cancelDrain(req.backend);
      return job ? { job: jobToWire(job) } : {};
    });
  }

  async planRebalance(req: PlanRebalanceRequest): Promise<MessageInitShape<typeof PlanRebalanceResponseSchema>> {
    return this.#guard('PlanRebalance', async () => {
      if (req.maxMoves > 100_000) throw invalid('max_moves', 'max_moves must be at most 100000');
      const plan = await this.#jobs.planRebalance(req.maxMoves === 0 ? 1000 : req.maxMoves);
      return {
        strategy: plan.strategy,
        backends: plan.backends.map((b) => ({
          name: b.name,
          quotaBytes: u64(b.quotaBytes),
          bytesBefore: u64(b.liveBytes),
          bytesAfter: u64(b.projectedBytes),
          targetBytes: u64(b.targetBytes),
          copiesBefore: u64(b.liveCopies),
          copiesAfter: u64(b.projectedCopies),
        })),
        moves: plan.moves.map((m) => ({ versionId: m.versionId, bucket: m.bucket, key: m.key, size: u64(m.size), from: m.from, to: m.to })),
        moveCount: u64(plan.moveCount),
        moveBytes: u64(plan.moveBytes),
      };
    });
  }

  async applyRebalance(_req: unknown, ctx?: HandlerContext): Promise<MessageInitShape<typeof ApplyRebalanceResponseSchema>> {
    return this.#guard('ApplyRebalance', async () => ({ job: jobToWire(await this.#jobs.applyRebalance(requester(ctx))) }));
  }

  async #guard<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof JobError) {
        if (err.code === 'InvalidArgument') throw invalid(err.field ?? '', err.message);
        throw new ConnectError(err.message, err.code === 'NotFound' ? Code.NotFound : Code.FailedPrecondition);
      }
      throw toConnectError(err, this.#log, method);
    }
  }
}
