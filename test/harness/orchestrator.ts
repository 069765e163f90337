import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import type { BackendConfig, Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';
import { freshDatabase, type TestDatabase } from './db.js';
import { assertLedger, assertNoStrayBytes } from './ledger.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from './s3rver.js';

/** Credentials of the default test bucket `data`. */
export const TEST_CREDS = { accessKeyId: 'AKIATESTORCHESTRATOR1', secretAccessKey: 'test-secret-key-0123456789abcdef' } as const;
/** A second tenant: bucket `other`, its own key; must never see `data`. */
export const OTHER_CREDS = { accessKeyId: 'AKIATESTORCHESTRATOR2', secretAccessKey: 'other-secret-key-0123456789abcdef' } as const;
/** A credential granted on both `data` and `other` (cross-bucket copies). */
export const BOTH_CREDS = { accessKeyId: 'AKIATESTORCHESTRATOR3', secretAccessKey: 'both-secret-key-0123456789abcdef' } as const;

export interface TestOrchestratorOptions {
  /** Where the test's schema lives (default: the machine's PostgreSQL; see harness/db.ts). */
  engine?: 'embedded' | 'postgres';
  /** s3rver-backed backends `s3-1`..`s3-n` (default 2). */
  s3rvers?: number;
  /** fs backends `fs-1`..`fs-n` (default 1). */
  fsBackends?: number;
  /** Quota per backend name. */
  quotas?: Record<string, number>;
  strategy?: 'pack' | 'spread';
  /** Extra backends appended after the generated ones (e.g. one pointing at a dead port). */
  extraBackends?: BackendConfig[];
  /** Put extra backends first in the order. */
  extraFirst?: boolean;
  /** Extra `database` keys of the config file (snake_case YAML form), e.g. `{ lock_timeout: '200ms' }`. */
  database?: Record<string, unknown>;
  /** Start workers (default true). */
  workers?: boolean;
  virtualHostDomains?: string[];
  /** `buckets[].cors` of the config file (snake_case YAML form), by bucket name. */
  bucketCors?: Record<string, unknown[]>;
  /** `server.s3.idle_timeout` in ms (default: the configuration default). */
  s3IdleTimeoutMs?: number;
  /** The `breaker` section of the config file (snake_case YAML form), e.g. `{ failures: 2, cooldown: '1s' }`. */
  breaker?: Record<string, unknown>;
  /** Extra `placement` keys of the config file (snake_case YAML form), e.g. `{ replicas: 2, write_quorum: 1 }`. */
  placement?: Record<string, unknown>;
  /** Resolved `workers` settings applied over the harness's (e.g. `{ scrubDeepIntervalMs: 1_000 }`). */
  workerSettings?: Partial<Config['workers']>;
}

/** A running orchestrator over real s3rver and fs backends, with clients for it. */
export interface TestOrchestrator {
  orch: Orchestrator;
  config: Config;
  endpoint: string;
  adminUrl: string;
  /** An @aws-sdk/client-s3 client with default settings for bucket `data`. */
  client: S3Client;
  /** A client with OTHER_CREDS (bucket `other`). */
  otherClient: S3Client;
  servers: S3rverInstance[];
  dataDir: string;
  db: TestDatabase;
  stop(): Promise<void>;
}

/** An S3 client for the orchestrator with the SDK's default settings (checksums, signing) except the endpoint. */
export function clientFor(endpoint: string, creds: { accessKeyId: string; secretAccessKey: string } = TEST_CREDS): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
}

export async function startTestOrchestrator(opts: TestOrchestratorOptions = {}): Promise<TestOrchestrator> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 's3o-test-'));
  const db = await freshDatabase(opts.engine);
  const servers = await Promise.all(Array.from({ length: opts.s3rvers ?? 2 }, () => startS3rver()));
  const quota = (name: string) => opts.quotas?.[name] ?? 0;
  const generated: BackendConfig[] = [
    ...servers.map((s, i) => s3BackendConfig(s, `s3-${i + 1}`, { quotaBytes: quota(`s3-${i + 1}`) })),
    ...Array.from({ length: opts.fsBackends ?? 1 }, (_, i) => ({
      type: 'fs' as const,
      name: `fs-${i + 1}`,
      path: path.join(dataDir, `fs-${i + 1}`),
      quotaBytes: quota(`fs-${i + 1}`),
    })),
  ];
  const extra = opts.extraBackends ?? [];
  const backends = opts.extraFirst ? [...extra, ...generated] : [...generated, ...extra];
  const both = { access_key_id: BOTH_CREDS.accessKeyId, secret_access_key: BOTH_CREDS.secretAccessKey };
  const corsOf = (bucket: string) => (opts.bucketCors?.[bucket] ? { cors: opts.bucketCors[bucket] } : {});
  const base = resolveConfig(
    {
      server: {
        s3: {
          listen: '127.0.0.1:0',
          ...(opts.virtualHostDomains ? { virtual_host_domains: opts.virtualHostDomains } : {}),
          ...(opts.s3IdleTimeoutMs ? { idle_timeout: `${opts.s3IdleTimeoutMs}ms` } : {}),
        },
        admin: { listen: '127.0.0.1:0', token: 'admin-test-token' },
      },
      database: {
        ...(db.config.url ? { url: db.config.url, schema: db.config.schema } : { path: db.config.path }),
        ...(opts.database ?? {}),
      },
      placement: { strategy: opts.strategy ?? 'pack', ...(opts.placement ?? {}) },
      ...(opts.breaker ? { breaker: opts.breaker } : {}),
      backends: [{ name: 'placeholder', type: 'fs', path: dataDir }],
      buckets: [
        { name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }, both], ...corsOf('data') },
        { name: 'other', credentials: [{ access_key_id: OTHER_CREDS.accessKeyId, secret_access_key: OTHER_CREDS.secretAccessKey }, both], ...corsOf('other') },
      ],
    },
    'test-harness',
  );
  const config: Config = { ...base, backends, workers: { ...base.workers, cleanupDelayMs: 0, cleanupIntervalMs: 100, ...(opts.workerSettings ?? {}) } };
  const log = createLogger({ test: true }, (process.env.S3O_LOG_LEVEL as 'debug' | undefined) ?? 'error');
  let orch: Orchestrator;
  try {
    orch = await startOrchestrator(config, { log, workers: opts.workers ?? true });
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const endpoint = `http://127.0.0.1:${orch.s3Port}`;
  const client = clientFor(endpoint);
  const otherClient = clientFor(endpoint, OTHER_CREDS);
  let stopping: Promise<void> | undefined;
  return {
    orch,
    config,
    endpoint,
    adminUrl: `http://127.0.0.1:${orch.adminPort}`,
    client,
    otherClient,
    servers,
    dataDir,
    db,
    stop: () =>
      (stopping ??= (async () => {
        client.destroy();
        otherClient.destroy();
        try {
          // Every test file ends with the quota ledger recomputed from the rows, and no stray bytes.
          await assertLedger(orch.db, 'orchestrator ledger');
          await assertNoStrayBytes(orch.db, orch.backends.all(), 'orchestrator');
        } finally {
          await orch.stop();
          await Promise.all(servers.map((s) => s.stop()));
          await db.drop();
          await rm(dataDir, { recursive: true, force: true });
        }
      })()),
  };
}

/**
 * Runs the task queue until no delete-copy task is left (or the timeout passes); returns how many remain.
 * Tasks backing off after a failure count too: a task is gone only once its bytes are deleted and released.
 */
export async function drainCleanup(t: TestOrchestrator, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await t.orch.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM tasks WHERE kind = 'delete-copy'`);
    const n = rows[0]!.n;
    if (n === 0 || Date.now() > deadline) return n;
    t.orch.wakeWorkers();
    await new Promise((r) => setTimeout(r, 50));
  }
}
