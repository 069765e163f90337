import type { CorsRule } from './cors-rules.js';

/**
 * The resolved configuration: produced once by config/load.ts from YAML (or from the zero-config
 * defaults), frozen, with every default applied. Field docs are the reference; docs/configuration.md
 * mirrors them for users.
 */

/** `server.s3`: the S3 data plane. */
export interface S3ServerConfig {
  /** host:port to listen on (default `0.0.0.0:9000`; port 0 picks a free port). */
  host: string;
  port: number;
  /** Region reported by GetBucketLocation and required in SigV4 scopes (default `us-east-1`). */
  region: string;
  /** Domains for virtual-hosted-style requests: `bucket.<domain>` (default none). */
  virtualHostDomains: readonly string[];
  /** Idle timeout for a request body or response that makes no progress, ms (default 60s). */
  idleTimeoutMs: number;
}

/** What one instance runs (`server.mode`). */
export type ServerMode = 'all' | 'api' | 'worker';

/** `server.admin`: the Connect/gRPC admin plane, health and metrics. */
export interface AdminServerConfig {
  /** host:port (default `127.0.0.1:9001`). */
  host: string;
  port: number;
  /** Bearer token required on every admin RPC; undefined = no auth (only sensible on loopback). */
  token?: string;
}

/** `database`. */
export interface DatabaseConfig {
  /** `postgres://` URL; undefined → the embedded PostgreSQL server in `path`. */
  url?: string;
  /** Directory of the embedded PostgreSQL (default `./data/pg`): its cluster, password, lock and log. */
  path: string;
  /** Schema to use (default `public`; tests use one schema each). */
  schema: string;
  /** Most connections the pool opens at once (default 20). */
  poolSize: number;
  /** PostgreSQL statement_timeout for every statement, ms; 0 = none (default 30 s). */
  statementTimeoutMs: number;
  /** PostgreSQL lock_timeout, ms; 0 = none (default 10 s). */
  lockTimeoutMs: number;
  /** Longest wait for a connection (connecting, or for a free pooled one), ms (default 10 s). */
  connectTimeoutMs: number;
}

/** `placement`. */
export interface PlacementConfig {
  /** `pack`: fill backends in config order; `spread`: lowest used/quota ratio first. */
  strategy: 'pack' | 'spread';
  /** `placement.replicas`: copies of every version, each on a distinct backend (default 1). */
  replicas: number;
  /**
   * `placement.write_quorum`: copies that must be durable before a write is acknowledged; undefined = all
   * of the bucket's replicas. Capped at the bucket's replicas.
   */
  writeQuorum?: number;
  /**
   * `placement.rebalance_on_add`: start a rebalance job (docs/jobs.md) when an active backend that was
   * never seen before appears (in the file or through the admin API). Default false.
   */
  rebalanceOnAdd?: boolean;
}

interface BackendCommon {
  /** Unique name; used in metrics, the admin API and the database. [a-z0-9-_], at most 63 chars. */
  name: string;
  /** Bytes this backend may hold; 0 = unlimited. */
  quotaBytes: number;
  /** `backends[].zone`: a failure-domain label (provider, region); copies of a version go to distinct zones when they can. */
  zone?: string;
  /** `backends[].read_priority`: reads prefer copies on lower values among healthy backends (default 0). */
  readPriority?: number;
  /** `backends[].weight`: share of new copies under `spread` (0-1000, default 1); 0 takes no new copies. */
  weight?: number;
}

/** An S3-compatible provider. */
export interface S3BackendConfig extends BackendCommon {
  type: 's3';
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix inside the provider bucket ('' or ending in '/'). */
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** `connect_timeout`: longest wait for one TCP/TLS connection, ms (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * `first_byte_timeout`: longest wait for the provider's answer to start, ms (default 15 s): from the call's
   * start (connecting and the SDK's retries included) or, for uploads, from the body's last byte or any stall
   * in taking it. A provider silent that long fails the call once with `Unavailable`.
   */
  firstByteTimeoutMs?: number;
}

/** A local directory. */
export interface FsBackendConfig extends BackendCommon {
  type: 'fs';
  /** Absolute path of the directory. */
  path: string;
}

export type BackendConfig = S3BackendConfig | FsBackendConfig;

/** `buckets[]`: a virtual bucket and the credentials that may use it. */
export interface BucketConfig {
  name: string;
  credentials: readonly { accessKeyId: string; secretAccessKey: string }[];
  /** CORS rules; when present they replace the bucket's stored CORS configuration at start-up. */
  cors?: readonly CorsRule[];
  /** `buckets[].replicas`: copies of this bucket's versions; undefined follows `placement.replicas`. */
  replicas?: number;
}

/** `workers`: background work. */
export interface WorkersConfig {
  /** Poll interval of the cleanup queue when idle, ms (default 1s). */
  cleanupIntervalMs: number;
  /**
   * Delay before the bytes of an overwritten or deleted version are removed, ms (default 30s): reads that
   * started before the change can finish. Quota is released when the bytes are gone.
   */
  cleanupDelayMs: number;
  /** Multipart uploads started longer ago than this are aborted and their parts removed, ms (default 7 days). */
  abandonedUploadMs: number;
  /** Pending (in-progress) writes whose heartbeat is older than this are aborted, ms (default 10 min). */
  staleWriteMs: number;
  /** `workers.repair_bandwidth`: bytes per second repair and moves may stream on this instance; 0 = unlimited (default). */
  repairBandwidth?: number;
  /** `workers.scrub_interval`: a copy is HEAD-checked again once its last check is older than this, ms; 0 = off (default 7 days). */
  scrubIntervalMs?: number;
  /** `workers.scrub_rate`: cheap scrub checks per second, across instances (default 10). */
  scrubRate?: number;
  /** `workers.scrub_deep_interval`: time between two deep scrub passes (every copy re-read), ms; 0 = off (default 30 days). */
  scrubDeepIntervalMs?: number;
  /** `workers.scrub_bandwidth`: bytes per second the deep scrub reads; 0 = unlimited (default 10 MiB/s). */
  scrubBandwidth?: number;
}

/** `breaker`: the circuit breaker of every backend (core/health.ts). */
export interface BreakerConfig {
  /** Counted failures in a row that open the breaker (default 3). */
  failures: number;
  /** Share of failed calls (0 < r <= 1) over `windowMs` that opens it (default 0.5)... */
  errorRate: number;
  /** ...measured over this sliding window, ms (default 60 s)... */
  windowMs: number;
  /** ...once the window holds at least this many calls (default 20). */
  minRequests: number;
  /** How long an open breaker waits before letting trial calls through (half-open), ms (default 10 s). */
  cooldownMs: number;
  /** Successful trials (calls or probes) that close a half-open breaker (default 1). */
  probes: number;
}

export interface Config {
  /** The file the configuration came from, or undefined for zero-config defaults. */
  source?: string;
  server: {
    s3: S3ServerConfig;
    admin: AdminServerConfig;
    /**
     * `server.shutdown_timeout`: how long a graceful stop (SIGTERM) lets requests in flight finish before
     * aborting them, ms (default 30s; 0 aborts at once). Optional for hand-built configurations.
     */
    shutdownTimeoutMs?: number;
    /**
     * `server.master_key_file`: the AES-256 key (64 hex digits or base64, mode 0600) sealing the secrets the
     * database holds. Unset: `S3O_MASTER_KEY`, else (embedded database only) `<database.path>/master.key`,
     * generated on first start. See core/secrets.ts.
     */
    masterKeyFile?: string;
    /**
     * `server.mode` (or `serve --mode`): `all` (default) serves S3 and admin and runs the background
     * workers; `api` serves S3 and admin only; `worker` runs the background workers only (with /healthz,
     * /readyz and /metrics on the admin port, no RPCs). Optional for hand-built configurations.
     */
    mode?: ServerMode;
  };
  database: DatabaseConfig;
  placement: PlacementConfig;
  backends: readonly BackendConfig[];
  buckets: readonly BucketConfig[];
  workers: WorkersConfig;
  /** `breaker`; optional for hand-built configurations (core/health.ts defaults then). */
  breaker?: BreakerConfig;
  /**
   * Zero-config mode: when true, a bucket `demo` with generated credentials is created once and stored
   * in the database, and its keys are printed at start-up.
   */
  demo: boolean;
}
