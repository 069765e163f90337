import type { Registry } from 'prom-client';
import type { BackendHealth } from '../core/health.js';
import type { JobControl } from '../core/job-kinds.js';
import type { CopyLocation, ObjectVersion } from '../core/types.js';
import type { BackendControl } from '../core/backend-control.js';
import type { BucketManager } from '../core/bucket-admin.js';
import type { CredentialManager } from '../core/credentials.js';
import type { UsageReports } from '../core/usage-report.js';
import type { Logger } from '../log.js';

/** What {@link AdminDeps.status} reports about the running instance. */
export interface InstanceStatus {
  /** package.json version. */
  version: string;
  /** When the process started serving. */
  startedAt: Date;
  /** `embedded` or `postgres`. */
  dbEngine: string;
  /** Migration version the database is at. */
  schemaVersion: number;
  /** S3 listen address, host:port. */
  s3Listen: string;
  /** Admin listen address, host:port. */
  adminListen: string;
  /** Random id chosen at start-up. */
  instanceId: string;
}

/** One backend and its usage, as {@link AdminDeps.listBackends} reports it. */
export interface BackendUsage {
  name: string;
  type: 's3' | 'fs';
  /** 0 = unlimited. */
  quotaBytes: number;
  usedBytes: number;
  /** Bytes held by writes in progress. */
  reservedBytes: number;
  objectCount: number;
  /** True when `health.state` is healthy. */
  healthy: boolean;
  /** Live health (state, since, last error, last success); absent when not measured. */
  health?: BackendHealth;
  /** Runtime state from the backend's row. */
  state: 'active' | 'read_only' | 'draining' | 'removed';
  /** `config` or `admin`. */
  source: string;
  zone?: string;
  /** `read_priority` this instance reads with (lower first among healthy copies). */
  readPriority?: number;
}

/** What /readyz answers (see {@link AdminDeps.ready}). */
export interface Readiness {
  ready: boolean;
  /** Why the instance is not ready (empty when ready). */
  reasons: string[];
  /** Backends that are not healthy, one line each (informational: they do not make the instance unready). */
  backends: string[];
}

/** One virtual bucket and its usage, as {@link AdminDeps.listBuckets} reports it. */
export interface BucketUsage {
  name: string;
  createdAt: Date;
  objectCount: number;
  totalBytes: number;
  /** Access key ids only: the admin API never carries secrets. */
  accessKeyIds: string[];
}

/**
 * Everything the admin server needs from the rest of the process. Implemented by the orchestrator's
 * wiring over core/; kept small so the admin layer depends on nothing else.
 */
export interface AdminDeps {
  status(): Promise<InstanceStatus>;
  /** Backends in configuration order. */
  listBackends(): Promise<BackendUsage[]>;
  /** Buckets sorted by name. */
  listBuckets(): Promise<BucketUsage[]>;
  /** The live version and its copies; throws CoreError('NoSuchKey' | 'NoSuchBucket'). */
  locate(bucket: string, key: string): Promise<{ version: ObjectVersion; copies: CopyLocation[] }>;
  /**
   * Drives /readyz: ready when the metadata database answers, at least one backend is available and the
   * instance is not shutting down. A bare boolean is accepted too (true = ready).
   */
  ready(): Promise<Readiness | boolean>;
  /** Jobs, drains, rebalances and bucket purges (JobService); the service is not served without it. */
  jobs?: JobControl;
  /** Backends managed at runtime (BackendService); the service is not served without it. */
  backendControl?: BackendControl;
  /** Scoped S3 credentials (CredentialService); the service is not served without it. */
  credentials?: CredentialManager;
  /** Managed buckets (BucketService); the service is not served without it. */
  buckets?: BucketManager;
  /** Usage per backend and bucket (UsageService); the service is not served without it. */
  usage?: UsageReports;
  /** false: serve no RPC at all, only /healthz, /readyz and /metrics (`server.mode: worker`). */
  rpcs?: boolean;
  /** Served on GET /metrics. */
  registry: Registry;
  /** When set, every admin RPC requires `authorization: Bearer <token>`. */
  token?: string;
  log: Logger;
}
