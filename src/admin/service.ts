import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  AdminService,
  BackendState,
  BackendType,
  BreakerState,
  CopyState,
  HealthState,
  type GetStatusResponseSchema,
  type ListBackendsResponseSchema,
  type ListBucketsResponseSchema,
  type LocateObjectRequest,
  type LocateObjectResponseSchema,
} from '../../gen/s3o/admin/v1/admin_pb.js';
import { CoreError, isDbBusy, isDbUnavailable, type CoreErrorCode } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { AdminDeps } from './deps.js';

/** CoreError codes a caller can act on; everything else is Internal and only logged. */
const CORE_TO_CONNECT: Partial<Record<CoreErrorCode, Code>> = {
  NoSuchKey: Code.NotFound,
  NoSuchBucket: Code.NotFound,
  InvalidArgument: Code.InvalidArgument,
  ServiceUnavailable: Code.Unavailable,
};

/**
 * The one place domain errors become Connect errors. Known CoreErrors keep their message; anything else
 * (including ConnectErrors we did not raise on purpose) becomes Internal, and its cause goes to the log,
 * never to the client.
 */
export function toConnectError(err: unknown, log: Logger, method: string): ConnectError {
  if (err instanceof ConnectError && err.code !== Code.Internal && err.code !== Code.Unknown) return err;
  if (isDbUnavailable(err)) {
    log.warn('admin rpc failed: metadata database unavailable', { method, err });
    return new ConnectError('the metadata database is unavailable; retry later', Code.Unavailable);
  }
  if (isDbBusy(err)) {
    log.warn('admin rpc failed: metadata database busy', { method, err });
    return new ConnectError('the metadata database is too busy to answer in time; retry later', Code.Unavailable);
  }
  if (err instanceof CoreError) {
    const code = CORE_TO_CONNECT[err.code];
    if (code !== undefined) return new ConnectError(err.message, code);
  }
  log.error('admin rpc failed', { method, err });
  return new ConnectError('internal error', Code.Internal);
}

const HEALTH_STATE = {
  healthy: HealthState.HEALTHY,
  degraded: HealthState.DEGRADED,
  unavailable: HealthState.UNAVAILABLE,
} as const;

/** A non-negative duration in ms (fractions kept to the nanosecond) as a google.protobuf.Duration. */
function msDuration(ms: number): { seconds: bigint; nanos: number } {
  const total = Math.round(Math.max(0, ms) * 1e6);
  return { seconds: BigInt(Math.floor(total / 1e9)), nanos: total % 1e9 };
}

const BREAKER_STATE = {
  closed: BreakerState.CLOSED,
  half_open: BreakerState.HALF_OPEN,
  open: BreakerState.OPEN,
} as const;

const BACKEND_STATE = {
  active: BackendState.ACTIVE,
  read_only: BackendState.READ_ONLY,
  draining: BackendState.DRAINING,
  removed: BackendState.REMOVED,
} as const;

/** Converts a non-negative count or byte size to the uint64 the wire carries. */
function u64(n: number): bigint {
  return BigInt(Math.max(0, Math.trunc(n)));
}

/**
 * `s3o.admin.v1.AdminService`: read-only views over {@link AdminDeps}. Handlers translate between the
 * dependency's plain objects and the wire messages and map errors through {@link toConnectError}.
 */
export class AdminServiceImpl implements ServiceImpl<typeof AdminService> {
  readonly #deps: AdminDeps;
  readonly #now: () => number;

  /** `now` is injectable so uptime can be checked without timing assumptions. */
  constructor(deps: AdminDeps, now: () => number = Date.now) {
    this.#deps = deps;
    this.#now = now;
  }

  async getStatus(): Promise<MessageInitShape<typeof GetStatusResponseSchema>> {
    return this.#guard('GetStatus', async () => {
      const [s, backends, buckets] = await Promise.all([
        this.#deps.status(),
        this.#deps.listBackends(),
        this.#deps.listBuckets(),
      ]);
      return {
        version: s.version,
        startedAt: timestampFromDate(s.startedAt),
        uptime: durationFromMs(Math.max(0, this.#now() - s.startedAt.getTime())),
        databaseEngine: s.dbEngine,
        schemaVersion: s.schemaVersion,
        s3ListenAddress: s.s3Listen,
        adminListenAddress: s.adminListen,
        instanceId: s.instanceId,
        backendCount: backends.length,
        healthyBackendCount: backends.filter((b) => b.healthy).length,
        bucketCount: buckets.length,
        objectCount: u64(buckets.reduce((n, b) => n + b.objectCount, 0)),
        totalBytes: u64(buckets.reduce((n, b) => n + b.totalBytes, 0)),
      };
    });
  }

  async listBackends(): Promise<MessageInitShape<typeof ListBackendsResponseSchema>> {
    return this.#guard('ListBackends', async () => ({
      backends: (await this.#deps.listBackends()).map((b) => ({
        name: b.name,
        type: b.type === 's3' ? BackendType.S3 : BackendType.FS,
        quotaBytes: u64(b.quotaBytes),
        usedBytes: u64(b.usedBytes),
        reservedBytes: u64(b.reservedBytes),
        objectCount: u64(b.objectCount),
        healthy: b.healthy,
        state: BACKEND_STATE[b.state],
        source: b.source,
        zone: b.zone ?? '',
        readPriority: b.readPriority ?? 0,
        ...(b.health
          ? {
              healthState: HEALTH_STATE[b.health.state],
              healthSince: timestampFromDate(b.health.since),
              lastError: b.health.lastError?.message ?? '',
              ...(b.health.lastError ? { lastErrorAt: timestampFromDate(b.health.lastError.at) } : {}),
              ...(b.health.lastOkAt ? { lastOkAt: timestampFromDate(b.health.lastOkAt) } : {}),
              breakerState: BREAKER_STATE[b.health.breaker],
              breakerSince: timestampFromDate(b.health.breakerSince),
              ...(b.health.openedAt ? { openedAt: timestampFromDate(b.health.openedAt) } : {}),
              openReason: b.health.openReason ?? '',
              consecutiveFailures: b.health.consecutiveFailures,
              ...(b.health.latencyMs !== undefined ? { latency: msDuration(b.health.latencyMs) } : {}),
            }
          : {}),
      })),
    }));
  }

  async listBuckets(): Promise<MessageInitShape<typeof ListBucketsResponseSchema>> {
    return this.#guard('ListBuckets', async () => ({
      buckets: (await this.#deps.listBuckets()).map((b) => ({
        name: b.name,
        createdAt: timestampFromDate(b.createdAt),
        objectCount: u64(b.objectCount),
        totalBytes: u64(b.totalBytes),
        accessKeyIds: [...b.accessKeyIds].sort(),
      })),
    }));
  }

  async locateObject(
    req: LocateObjectRequest,
    _ctx?: HandlerContext,
  ): Promise<MessageInitShape<typeof LocateObjectResponseSchema>> {
    return this.#guard('LocateObject', async () => {
      if (req.bucket === '') throw new ConnectError('bucket is required', Code.InvalidArgument);
      if (req.key === '') throw new ConnectError('key is required', Code.InvalidArgument);
      const { version, copies } = await this.#deps.locate(req.bucket, req.key).catch((err: unknown) => {
        // Say which of the two is missing: the bucket, or the key in an existing bucket.
        if (err instanceof CoreError && err.code === 'NoSuchBucket') {
          throw new ConnectError(`bucket ${JSON.stringify(req.bucket)} does not exist`, Code.NotFound);
        }
        if (err instanceof CoreError && err.code === 'NoSuchKey') {
          throw new ConnectError(`bucket ${JSON.stringify(req.bucket)} has no object with key ${JSON.stringify(req.key)}`, Code.NotFound);
        }
        throw err;
      });
      return {
        bucket: version.bucket,
        key: version.key,
        versionId: version.versionId,
        size: u64(version.size),
        etag: version.etag,
        lastModified: timestampFromDate(version.lastModified),
        copies: copies.map((c) => ({
          backend: c.backend,
          physicalKey: c.physicalKey,
          size: u64(c.size),
          state: c.state === 'live' ? CopyState.LIVE : CopyState.PENDING,
        })),
      };
    });
  }

  async #guard<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toConnectError(err, this.#deps.log, method);
    }
  }
}
