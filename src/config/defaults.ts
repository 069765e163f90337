/**
 * Default values of every optional key, and the zero-config configuration used when the server
 * starts without a file. config/load.ts applies these defaults; docs/configuration.md lists them.
 */
import path from 'node:path';
import type { Config } from './types.js';

/** Defaults applied by config/load.ts when a key is absent. */
export const DEFAULTS = {
  s3Host: '0.0.0.0',
  s3Port: 9000,
  region: 'us-east-1',
  idleTimeoutMs: 60_000,
  adminHost: '127.0.0.1',
  adminPort: 9001,
  databasePath: './data/pg',
  databaseSchema: 'public',
  databasePoolSize: 20,
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  placement: 'pack',
  backendRegion: 'us-east-1',
  cleanupIntervalMs: 1_000,
  cleanupDelayMs: 30_000,
  staleWriteMs: 10 * 60_000,
  abandonedUploadMs: 7 * 24 * 3600_000,
  repairBandwidth: 0,
  scrubIntervalMs: 7 * 24 * 3600_000,
  scrubRate: 10,
  scrubDeepIntervalMs: 30 * 24 * 3600_000,
  scrubBandwidth: 10 * 1024 * 1024,
  shutdownTimeoutMs: 30_000,
  /** Zero-config mode listens on loopback only: nothing is exposed until the operator asks for it. */
  zeroConfigS3Host: '127.0.0.1',
} as const;

/** Freezes `value` and everything reachable from it, so a Config cannot be changed after loading. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/**
 * The configuration used when no file is given: the embedded PostgreSQL in `<dataDir>/pg`, two local
 * directory backends `local1` and `local2` under `<dataDir>/backends/`, no quotas, no configured
 * buckets, the S3 listener on loopback (127.0.0.1:9000; `--s3-listen 0.0.0.0:9000` exposes it), the default
 * admin listener, and `demo: true` (the demo bucket and its keys live in the database).
 * Paths are resolved against the current directory.
 */
export function zeroConfig(dataDir = './data'): Config {
  const root = path.resolve(dataDir);
  return deepFreeze<Config>({
    server: {
      s3: {
        host: DEFAULTS.zeroConfigS3Host,
        port: DEFAULTS.s3Port,
        region: DEFAULTS.region,
        virtualHostDomains: [],
        idleTimeoutMs: DEFAULTS.idleTimeoutMs,
      },
      admin: { host: DEFAULTS.adminHost, port: DEFAULTS.adminPort },
      shutdownTimeoutMs: DEFAULTS.shutdownTimeoutMs,
    },
    database: {
      path: path.join(root, 'pg'),
      schema: DEFAULTS.databaseSchema,
      poolSize: DEFAULTS.databasePoolSize,
      statementTimeoutMs: DEFAULTS.statementTimeoutMs,
      lockTimeoutMs: DEFAULTS.lockTimeoutMs,
      connectTimeoutMs: DEFAULTS.connectTimeoutMs,
    },
    placement: { strategy: DEFAULTS.placement, replicas: 1 },
    backends: ['local1', 'local2'].map((name) => ({
      name,
      type: 'fs' as const,
      path: path.join(root, 'backends', name),
      quotaBytes: 0,
    })),
    buckets: [],
    workers: {
      cleanupIntervalMs: DEFAULTS.cleanupIntervalMs,
      cleanupDelayMs: DEFAULTS.cleanupDelayMs,
      staleWriteMs: DEFAULTS.staleWriteMs,
      abandonedUploadMs: DEFAULTS.abandonedUploadMs,
      repairBandwidth: DEFAULTS.repairBandwidth,
      scrubIntervalMs: DEFAULTS.scrubIntervalMs,
      scrubRate: DEFAULTS.scrubRate,
      scrubDeepIntervalMs: DEFAULTS.scrubDeepIntervalMs,
      scrubBandwidth: DEFAULTS.scrubBandwidth,
    },
    demo: true,
  });
}
