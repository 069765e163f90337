import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { BackendState, BackendType, HealthState } from '../../gen/s3o/admin/v1/admin_pb.js';
import {
  BackendService,
  ConfigOwnedSchema,
  FieldViolationSchema,
  ProbeFailureSchema,
  type AddBackendRequest,
  type ManagedBackendSchema,
  type UpdateBackendRequest,
} from '../../gen/s3o/admin/v1/backends_pb.js';
import type { BackendChanges, BackendControl, BackendView, NewBackend } from '../core/backend-control.js';
import { ControlError, type ControlErrorCode } from '../core/control-errors.js';
import type { Logger } from '../log.js';
import { toConnectError } from './service.js';

/**
 * s3o.admin.v1.BackendService over core/backend-control.ts: converts between wire messages and core's
 * plain objects, and maps ControlError to Connect codes with typed details (FieldViolation, ConfigOwned,
 * ProbeFailure) in {@link controlToConnect}.
 */

const CODES: Record<ControlErrorCode, Code> = {
  NotFound: Code.NotFound,
  AlreadyExists: Code.AlreadyExists,
  FailedPrecondition: Code.FailedPrecondition,
  InvalidArgument: Code.InvalidArgument,
};

/** Runs an RPC body, mapping a ControlError (or any failure) to the Connect error it stands for. */
export async function controlCall<T>(log: Logger, method: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw controlToConnect(err, log, method);
  }
}

/** A ControlError as a ConnectError with its details; anything else through the shared mapping. */
export function controlToConnect(err: unknown, log: Logger, method: string): ConnectError {
  if (!(err instanceof ControlError)) return toConnectError(err, log, method);
  const details = [];
  if (err.field !== undefined) details.push({ desc: FieldViolationSchema, value: { field: err.field, description: err.message } });
  if (err.configOwned) details.push({ desc: ConfigOwnedSchema, value: { file: err.configOwned.file, keyPath: err.configOwned.keyPath } });
  if (err.probe) details.push({ desc: ProbeFailureSchema, value: { ...err.probe } });
  return new ConnectError(err.message, CODES[err.code], undefined, details);
}

const STATE: Record<BackendView['state'], BackendState> = {
  active: BackendState.ACTIVE,
  read_only: BackendState.READ_ONLY,
  draining: BackendState.DRAINING,
  removed: BackendState.REMOVED,
};
const HEALTH: Record<string, HealthState> = {
  healthy: HealthState.HEALTHY,
  degraded: HealthState.DEGRADED,
  unavailable: HealthState.UNAVAILABLE,
};

function u64(n: number): bigint {
  return BigInt(Math.max(0, Math.trunc(n)));
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A core view as a ManagedBackend message (never a secret). */
export function toWire(v: BackendView): MessageInitShape<typeof ManagedBackendSchema> {
  const s = v.settings;
  const h = v.health as (BackendView['health'] & { breaker?: string }) | undefined;
  return {
    name: v.name,
    type: v.type === 's3' ? BackendType.S3 : v.type === 'fs' ? BackendType.FS : BackendType.UNSPECIFIED,
    ...(v.type === 's3'
      ? {
          s3: {
            endpoint: str(s.endpoint),
            region: str(s.region),
            bucket: str(s.bucket),
            prefix: str(s.prefix),
            accessKeyId: str(s.accessKeyId),
            secretAccessKey: '',
            forcePathStyle: s.forcePathStyle === true,
          },
        }
      : {}),
    ...(v.type === 'fs' ? { fs: { path: str(s.path) } } : {}),
    state: STATE[v.state],
    source: v.source,
    configRef: v.configRef ?? '',
    ...(v.removalRequestedAt ? { removalRequestedAt: timestampFromDate(v.removalRequestedAt) } : {}),
    quotaBytes: u64(v.quotaBytes),
    usedBytes: u64(v.usedBytes),
    reservedBytes: u64(v.reservedBytes),
    objectCount: u64(v.objectCount),
    zone: v.zone ?? '',
    readPriority: v.readPriority,
    weight: v.weight,
    loaded: v.loaded,
    healthState: h ? (HEALTH[h.state] ?? HealthState.UNSPECIFIED) : HealthState.UNSPECIFIED,
    breakerState: h?.breaker ?? '',
    lastError: h?.lastError?.message ?? '',
    ...(h ? { healthSince: timestampFromDate(h.since) } : {}),
    createdAt: timestampFromDate(v.createdAt),
    updatedAt: timestampFromDate(v.updatedAt),
    drainJobId: u64(v.drain?.jobId ?? 0),
    drainJobState: v.drain?.state ?? '',
  };
}

function fromAdd(req: AddBackendRequest): NewBackend {
  const knobs = {
    quotaBytes: Number(req.quotaBytes),
    ...(req.zone ? { zone: req.zone } : {}),
    readPriority: req.readPriority,
    ...(req.weight !== undefined ? { weight: req.weight } : {}),
  };
  switch (req.settings.case) {
    case 's3': {
      const s = req.settings.value;
      return {
        name: req.name,
        type: 's3',
        s3: {
          ...(s.endpoint ? { endpoint: s.endpoint } : {}),
          region: s.region,
          bucket: s.bucket,
          prefix: s.prefix,
          accessKeyId: s.accessKeyId,
          secretAccessKey: s.secretAccessKey,
          forcePathStyle: s.forcePathStyle,
        },
        ...knobs,
      };
    }
    case 'fs':
      return { name: req.name, type: 'fs', fs: { path: req.settings.value.path }, ...knobs };
    default:
      throw new ControlError('InvalidArgument', 'settings: one of s3 or fs is required', { field: 'settings' });
  }
}

function fromUpdate(req: UpdateBackendRequest): BackendChanges {
  return {
    ...(req.quotaBytes !== undefined ? { quotaBytes: Number(req.quotaBytes) } : {}),
    ...(req.readPriority !== undefined ? { readPriority: req.readPriority } : {}),
    ...(req.zone !== undefined ? { zone: req.zone } : {}),
    ...(req.weight !== undefined ? { weight: req.weight } : {}),
  };
}

function requireName(name: string): void {
  if (name === '') throw new ControlError('InvalidArgument', 'name: is required', { field: 'name' });
}

/** The BackendService handlers. */
export class BackendServiceImpl implements ServiceImpl<typeof BackendService> {
  readonly #control: BackendControl;
  readonly #log: Logger;

  constructor(control: BackendControl, log: Logger) {
    this.#control = control;
    this.#log = log;
  }

  #call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    return controlCall(this.#log, method, fn);
  }

  addBackend(req: AddBackendRequest) {
    return this.#call('AddBackend', async () => {
      requireName(req.name);
      return { backend: toWire(await this.#control.add(fromAdd(req))) };
    });
  }

  getBackend(req: { name: string }) {
    return this.#call('GetBackend', async () => {
      requireName(req.name);
      return { backend: toWire(await this.#control.get(req.name)) };
    });
  }

  listBackends(req: { includeRemoved: boolean }) {
    return this.#call('ListBackends', async () => ({
      backends: (await this.#control.list({ includeRemoved: req.includeRemoved })).map(toWire),
    }));
  }

  updateBackend(req: UpdateBackendRequest) {
    return this.#call('UpdateBackend', async () => {
      requireName(req.name);
      return { backend: toWire(await this.#control.update(req.name, fromUpdate(req))) };
    });
  }

  removeBackend(req: { name: string }) {
    return this.#call('RemoveBackend', async () => {
      requireName(req.name);
      await this.#control.remove(req.name);
      return {};
    });
  }
}
