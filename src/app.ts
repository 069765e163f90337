import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AdminDeps } from './admin/deps.js';
import { startAdminServer } from './admin/server.js';
import { BackendError } from './backends/backend.js';
import { createBackend } from './backends/index.js';
import type { Config } from './config/types.js';
import { BackendRegistry } from './core/backends.js';
import { CoreObjectStore } from './core/objects.js';
import { DbTenantDirectory, ensureDemoTenant, syncTenants } from './core/tenants.js';
import { CoreMultipartStore } from './core/multipart.js';
import { run, type WriteDeps } from './core/writes.js';
import { createLogger, type Logger } from './log.js';
import type { Db } from './meta/db.js';
import { openDatabase } from './meta/open.js';
import * as bq from './meta/queries/backends.js';
import * as tq from './meta/queries/tenants.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startS3Server } from './s3/server.js';
import { startWorkers } from './workers/index.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A running orchestrator. */
export interface Orchestrator {
  readonly s3Port: number;
  readonly adminPort: number;
  readonly db: Db;
  readonly store: CoreObjectStore;
  readonly backends: BackendRegistry;
  readonly metrics: Metrics;
  /** The zero-config bucket's credential (only in demo mode). */
  readonly demo?: { bucket: string; accessKeyId: string; secretAccessKey: string; created: boolean };
  /** Wakes the background workers (tests use it to run the cleanup queue now). */
  wakeWorkers(): void;
  /** Stops serving, waits for workers, closes the database. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Run the background workers in this process (default true). */
  workers?: boolean;
}

/**
 * Starts everything a configuration describes: database (migrated), backends (checked), tenants (synced),
 * the S3 data plane, the admin plane and the background workers.
 */
export async function startOrchestrator(config: Config, opts: StartOptions = {}): Promise<Orchestrator> {
  const log = opts.log ?? createLogger();
  const metrics = createMetrics();
  const instanceId = randomUUID();
  const { db, schemaVersion } = await openDatabase(config.database, { log, zeroConfig: config.demo });
  const closers: Array<() => Promise<void>> = [() => db.close()];
  const stopAll = async () => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log.error('shutdown step failed', { err }));
  };
  try {
    const registry = new BackendRegistry(config.backends.map((b) => createBackend(b)), metrics);
    closers.push(() => registry.close());
    const healthy = await checkBackends(registry, log);
    await db.tx(async (q) => {
      for (const b of config.backends) await run(q, bq.upsertBackend(b.name, b.type, b.quotaBytes));
    });
    await syncTenants(db, config.buckets);
    const demo = config.demo ? await ensureDemoTenant(db) : undefined;
    const tenants = new DbTenantDirectory(db);
    const writeDeps: WriteDeps = {
      db,
      backends: registry,
      strategy: config.placement.strategy,
      cleanupDelayMs: config.workers.cleanupDelayMs,
      heartbeatMs: Math.max(1_000, Math.floor(config.workers.staleWriteMs / 4)),
      log,
    };
    const store = new CoreObjectStore(writeDeps, tenants);
    const multipart = new CoreMultipartStore(writeDeps, store);
    const s3 = await startS3Server({ store, multipart, tenants, config: config.server.s3, metrics, log: log.child({ plane: 's3' }) });
    closers.push(() => s3.close());
    metrics.setBackendUsage(async () => {
      const { rows } = await run<bq.BackendRow>(db, bq.selectBackends());
      return rows.filter((r) => registry.get(r.name)).map((r) => ({ backend: r.name, usedBytes: r.used_bytes }));
    });
    const startedAt = new Date();
    const adminDeps: AdminDeps = {
      registry: metrics.registry,
      log: log.child({ plane: 'admin' }),
      ...(config.server.admin.token ? { token: config.server.admin.token } : {}),
      status: async () => ({
        version: VERSION,
        startedAt,
        dbEngine: db.engine,
        schemaVersion,
        s3Listen: `${config.server.s3.host}:${s3.port}`,
        adminListen: `${config.server.admin.host}:${admin.port}`,
        instanceId,
      }),
      listBackends: async () => {
        const { rows } = await run<bq.BackendRow>(db, bq.selectBackends());
        const byName = new Map(rows.map((r) => [r.name, r]));
        return config.backends.map((b) => {
          const r = byName.get(b.name);
          return {
            name: b.name,
            type: b.type,
            quotaBytes: b.quotaBytes,
            usedBytes: r?.used_bytes ?? 0,
            reservedBytes: r?.reserved_bytes ?? 0,
            objectCount: r?.object_count ?? 0,
            healthy: healthy.get(b.name) ?? false,
          };
        });
      },
      listBuckets: async () => {
        const { rows } = await run<{ name: string; created_at: Date; object_count: number; total_bytes: number; access_key_ids: string[] }>(
          db,
          tq.selectBucketStats(),
        );
        return rows.map((r) => ({
          name: r.name,
          createdAt: r.created_at,
          objectCount: r.object_count,
          totalBytes: r.total_bytes,
          accessKeyIds: r.access_key_ids,
        }));
      },
      locate: (bucket, key) => store.locate(bucket, key),
      ready: async () => {
        try {
          await db.query('SELECT 1');
          return true;
        } catch {
          return false;
        }
      },
    };
    const admin = await startAdminServer(adminDeps, { host: config.server.admin.host, port: config.server.admin.port });
    closers.push(() => admin.close());
    const workers = opts.workers === false ? undefined : startWorkers({ db, backends: registry, log, metrics }, config.workers, log);
    if (workers) closers.push(() => workers.stop());
    let stopping: Promise<void> | undefined;
    return {
      s3Port: s3.port,
      adminPort: admin.port,
      db,
      store,
      backends: registry,
      metrics,
      ...(demo ? { demo } : {}),
      wakeWorkers: () => workers?.wake(),
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Checks every backend at start-up. A misconfigured backend (bucket missing, credentials refused) stops
 * the start with an error naming it; one that is merely unreachable is logged and marked unhealthy, so a
 * provider outage cannot prevent a restart.
 */
async function checkBackends(registry: BackendRegistry, log: Logger): Promise<Map<string, boolean>> {
  const healthy = new Map<string, boolean>();
  await Promise.all(
    registry.all().map(async (b) => {
      try {
        await b.check();
        healthy.set(b.name, true);
      } catch (err) {
        if (err instanceof BackendError && err.kind === 'Unavailable') {
          log.warn('backend unreachable at start-up; continuing without it until it answers', { backend: b.name, err });
          healthy.set(b.name, false);
          return;
        }
        throw new Error(`backend ${b.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }),
  );
  return healthy;
}
