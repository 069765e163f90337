import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AdminDeps, Readiness } from './admin/deps.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { BackendError } from './backends/backend.js';
import { createBackend, FsBackend } from './backends/index.js';
import { DEFAULTS } from './config/defaults.js';
import type { Config, ServerMode } from './config/types.js';
import { BackendRegistry } from './core/backends.js';
import { BackendFleet } from './core/backend-fleet.js';
import { ChangeBus } from './core/changes.js';
import { expectFsIdentities, recordFsIdentities, startFsSweeps } from './core/fs-upkeep.js';
import { HealthTracker, startHealthProbes, type HealthOptions } from './core/health.js';
import { DegradedReader } from './core/degraded.js';
import { CoreObjectStore } from './core/objects.js';
import { DbTenantDirectory, ensureDemoTenant, syncTenants } from './core/tenants.js';
import { loadMasterKey } from './core/secrets.js';
import { sealPlaintextSecrets } from './core/secret-store.js';
import { CredentialManager } from './core/credentials.js';
import { BucketManager } from './core/bucket-admin.js';
import { startBucketPurge } from './core/purge.js';
import { CoreMultipartStore } from './core/multipart.js';
import type { WriteDeps } from './core/writes.js';
import { listBackendRecords, listBucketRecords } from './core/fleet.js';
import { taskCounts, type Clock } from './core/tasks.js';
import { JobControl } from './core/job-kinds.js';
import { UsageMeter } from './core/usage.js';
import { UsageReports } from './core/usage-report.js';
import { createLogger, type Logger } from './log.js';
import type { Db } from './meta/db.js';
import { withBreaker, type BreakerDb, type BreakerOptions } from './meta/breaker.js';
import { openDatabase } from './meta/open.js';
import { formatHostPort, probeListen } from './listen.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startS3Server, type DrainOutcome, type S3Server } from './s3/server.js';
import { startWorkers } from './workers/index.js';
import type { WorkerRunner } from './workers/runner.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A running orchestrator. */
export interface Orchestrator {
  readonly s3Port: number;
  readonly adminPort: number;
  readonly db: Db;
  /** The metadata database breaker (`db` goes through it). */
  readonly dbBreaker: BreakerDb;
  readonly store: CoreObjectStore;
  readonly backends: BackendRegistry;
  readonly metrics: Metrics;
  /**
   * The change bus (LISTEN/NOTIFY with a periodic fallback): caches of runtime rows (backends,
   * credentials, buckets) subscribe to their topic here; writers notify in their transaction.
   */
  readonly changes: ChangeBus;
  /** The backends as runtime rows: the catalog following them and the control behind BackendService. */
  readonly fleet: BackendFleet;
  /** What this instance runs (`server.mode`, or StartOptions.mode). */
  readonly mode: ServerMode;
  /**
   * Applies a new configuration's declared entries without a restart (SIGHUP): the backends it declares,
   * then every hook added with {@link onReload} (buckets, credentials). Settings other than declared entries
   * (listen addresses, database, workers…) need a restart. Rejects when applying failed; what was applied
   * before the failure stays.
   */
  reload(config: Config): Promise<void>;
  /** Adds a step to {@link reload} (run in order, after the backends). */
  onReload(hook: (config: Config) => Promise<void>): void;
  /** The zero-config bucket's credential (only in demo mode). */
  readonly demo?: { bucket: string; accessKeyId: string; secretAccessKey: string; created: boolean };
  /** The address actually bound by each listener, `host:port`. */
  readonly s3Address: string;
  readonly adminAddress: string;
  /** Wakes the background workers (tests use it to run the cleanup queue now). */
  wakeWorkers(): void;
  /**
   * Graceful stop, in order: the S3 listener stops accepting; requests in flight may finish for up to
   * `deadlineMs` (default `server.shutdown_timeout`), the rest are aborted through the normal write-abort
   * path (their reservations released at once); then the workers, probes and sweeps stop, the admin
   * server closes, the backends close and the database closes last; a final line is logged.
   * Idempotent; a second call with `deadlineMs: 0` cuts a running drain short.
   */
  stop(opts?: { deadlineMs?: number }): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Run the background workers in this process (default true; false also when the mode is `api`). */
  workers?: boolean;
  /** What to run; overrides `server.mode` (the CLI's `serve --mode`). */
  mode?: ServerMode;
  /** The clock leases, heartbeats and janitors are judged by (tests move it; default the database's). */
  clock?: Clock;
  /** Told each start-up step as it begins (the CLI prints them: a first start may take seconds). */
  progress?: (step: string) => void;
  /** Health tuning (thresholds, probe intervals); tests shorten the probe intervals. */
  health?: Omit<HealthOptions, 'now'> & { probeTickMs?: number };
  /** Database breaker tuning (tests shorten it; meta/breaker.ts has the defaults). */
  dbBreaker?: Omit<BreakerOptions, 'log' | 'onChange'>;
}

/** How often unhealthy or idle backends are probed, and leftover sweeps run. */
const PROBE_TICK_MS = 1_000;
const FS_SWEEP_EVERY_MS = 15 * 60_000;

/**
 * Starts everything a configuration describes: database (migrated), backends (checked), tenants (synced),
 * the S3 data plane, the admin plane and the background workers.
 */
export async function startOrchestrator(config: Config, opts: StartOptions = {}): Promise<Orchestrator> {
  const log = opts.log ?? createLogger();
  const progress = opts.progress ?? (() => {});
  const { s3: s3Cfg, admin: adminCfg } = config.server;
  const mode: ServerMode = opts.mode ?? config.server.mode ?? 'all';
  // Before anything is created: a listener that cannot be bound fails the start with the reason.
  progress(`checking the listeners (S3 ${formatHostPort(s3Cfg.host, s3Cfg.port)}, admin ${formatHostPort(adminCfg.host, adminCfg.port)})`);
  if (mode !== 'worker') await probeListen('server.s3.listen', s3Cfg.host, s3Cfg.port);
  await probeListen('server.admin.listen', adminCfg.host, adminCfg.port);
  const metrics = createMetrics();
  const instanceId = randomUUID();
  progress(config.database.url ? 'connecting to PostgreSQL and migrating the schema' : `opening the embedded database in ${config.database.path}`);
  const opened = await openDatabase(config.database, { log, zeroConfig: config.demo });
  const schemaVersion = opened.schemaVersion;
  // Every user of the database goes through the breaker: while PostgreSQL is unreachable, statements fail
  // at once (503) instead of queueing behind the pool, and GET/HEAD are answered from the backends.
  const dbBreaker = withBreaker(opened.db, {
    ...opts.dbBreaker,
    log,
    onChange: (state) => {
      metrics.dbBreakerState.set({ state: 'open' }, state === 'open' ? 1 : 0);
      metrics.dbBreakerState.set({ state: 'closed' }, state === 'closed' ? 1 : 0);
      metrics.dbBreakerTransitions.inc({ to: state });
    },
  });
  const db = dbBreaker.db;
  const changes = new ChangeBus(db, { log: log.child({ component: 'changes' }) });
  // Monthly usage per backend and bucket: counted in memory, flushed every few seconds (core/usage.ts).
  const usage = new UsageMeter(db, { instance: instanceId, log: log.child({ component: 'usage' }) });
  // What is running, for the ordered stop below (a failed start stops what it had started).
  let s3: S3Server | undefined;
  let admin: AdminServer | undefined;
  let workers: WorkerRunner | undefined;
  let registry: BackendRegistry | undefined;
  let fleet: BackendFleet | undefined;
  const loops: { stop(): Promise<void> }[] = [];
  let stopping = false;
  const shutdownTimeoutMs = config.server.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs;
  const stopAll = async (deadlineMs: number): Promise<void> => {
    stopping = true;
    const started = Date.now();
    let drained: DrainOutcome | undefined;
    const step = async (name: string, fn: () => Promise<unknown> | undefined) => {
      await Promise.resolve()
        .then(fn)
        .catch((err: unknown) => log.error('shutdown step failed', { step: name, err }));
    };
    await step('drain S3 requests', async () => {
      if (!s3) return;
      log.info('shutting down: S3 listener closed, letting requests in flight finish', { inFlight: s3.inFlight, deadlineMs });
      drained = await s3.drain(deadlineMs);
    });
    await step('workers', () => workers?.stop());
    await step('probes and sweeps', () => Promise.all(loops.map((l) => l.stop())));
    await step('change bus', () => changes.stop());
    await step('backend fleet', () => fleet?.stop());
    await step('admin server', () => admin?.close());
    await step('backends', () => registry?.close());
    await step('usage counters', () => usage.stop());
    await step('database', () => db.close());
    log.info('stopped', { ...(drained ?? {}), durationMs: Date.now() - started });
  };
  try {
    const raw = config.backends.map((b) => createBackend(b));
    const fsBackends = raw.filter((b): b is FsBackend => b instanceof FsBackend);
    const health = new HealthTracker(raw.map((b) => b.name), { ...(config.breaker ? { breaker: config.breaker } : {}), ...opts.health });
    health.onChange((h, previous) => {
      const fields = { backend: h.name, from: previous, to: h.state, ...(h.lastError ? { lastError: h.lastError.message } : {}) };
      if (h.state === 'healthy') log.info('backend health changed', fields);
      else log.warn('backend health changed', fields);
    });
    health.onTransition((t, h) => {
      metrics.backendBreakerTransitions.inc({ backend: t.backend, to: t.to });
      const fields = { backend: t.backend, from: t.from, to: t.to, reason: t.reason, ...(h.lastError ? { lastError: h.lastError.message } : {}) };
      if (t.to === 'open') log.warn('backend circuit breaker opened: no new writes, read last', fields);
      else log.info(`backend circuit breaker ${t.to === 'closed' ? 'closed' : 'half-open'}`, fields);
    });
    registry = new BackendRegistry(raw, metrics, health, usage);
    metrics.setBackendHealth(() => health.all());
    progress(`checking ${raw.length} backend${raw.length === 1 ? '' : 's'} (${raw.map((b) => b.name).join(', ')})`);
    await expectFsIdentities(db, fsBackends);
    await checkBackends(registry, health, log);
    await recordFsIdentities(db, fsBackends, log);
    progress('loading the master key');
    const secrets = await loadMasterKey({
      ...(config.server.masterKeyFile ? { file: config.server.masterKeyFile } : {}),
      ...(process.env.S3O_MASTER_KEY !== undefined ? { env: process.env.S3O_MASTER_KEY } : {}),
      ...(config.database.url ? {} : { dataDir: config.database.path }),
    });
    const resealed = await sealPlaintextSecrets(db, secrets);
    if (Object.keys(resealed).length > 0) log.info('sealed secrets stored in plain text by an earlier version', { columns: resealed });
    // The config file's backends are the desired state of the rows they declare; the registry then follows
    // the rows (API-added backends included) on every instance.
    fleet = new BackendFleet({ db, bus: changes, registry, health, secrets, log: log.child({ component: 'backends' }), fsBackends });
    fleet.catalog.adopt(config.backends);
    progress('applying the configured backends');
    await fleet.applyDeclared(config.backends, config.source);
    fleet.follow();
    const reloadHooks: ((next: Config) => Promise<void>)[] = [];
    // SIGHUP re-applies the declared buckets and credentials too (core/tenants.ts).
    reloadHooks.push((next) => syncTenants(db, next.buckets, secrets, { ...(next.source ? { file: next.source } : {}), changes }));
    await syncTenants(db, config.buckets, secrets, { ...(config.source ? { file: config.source } : {}), changes });
    const demo = config.demo ? await ensureDemoTenant(db, secrets) : undefined;
    const tenants = new DbTenantDirectory(db, secrets, changes);
    const writeDeps: WriteDeps = {
      db,
      backends: registry,
      strategy: config.placement.strategy,
      replicas: config.placement.replicas,
      ...(config.placement.writeQuorum !== undefined ? { writeQuorum: config.placement.writeQuorum } : {}),
      cleanupDelayMs: config.workers.cleanupDelayMs,
      heartbeatMs: Math.max(1_000, Math.floor(config.workers.staleWriteMs / 4)),
      staleMs: config.workers.staleWriteMs,
      ...(opts.clock ? { clock: opts.clock } : {}),
      log,
    };
    const store = new CoreObjectStore(writeDeps, tenants, new DegradedReader({ backends: registry, log, metrics }));
    const multipart = new CoreMultipartStore(writeDeps, store);
    progress('starting the S3 and admin listeners');
    if (mode !== 'worker') s3 = await startS3Server({ store, multipart, tenants, config: config.server.s3, metrics, log: log.child({ plane: 's3' }), usage });
    const reg = registry;
    metrics.setBackendUsage(async () =>
      (await listBackendRecords(db)).filter((r) => reg.get(r.name)).map((r) => ({ backend: r.name, usedBytes: r.usedBytes })),
    );
    metrics.setTaskCounts(() => taskCounts(db));
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
        s3Listen: formatHostPort(s3Cfg.host, s3Port),
        adminListen: formatHostPort(adminCfg.host, adminPort),
        instanceId,
      }),
      listBackends: async () => {
        // Every backend row not removed, in placement order (those this instance has not built last).
        const pos = new Map(reg.names.map((n, i) => [n, i]));
        const rows = (await listBackendRecords(db)).filter((r) => r.state !== 'removed');
        rows.sort((a, b) => (pos.get(a.name) ?? Number.MAX_SAFE_INTEGER) - (pos.get(b.name) ?? Number.MAX_SAFE_INTEGER));
        return rows.map((r) => {
          const h = health.get(r.name);
          return {
            name: r.name,
            type: r.type === 'fs' ? 'fs' : 's3',
            quotaBytes: r.quotaBytes,
            usedBytes: r.usedBytes,
            reservedBytes: r.reservedBytes,
            objectCount: r.objectCount,
            healthy: h?.state === 'healthy',
            ...(h ? { health: h } : {}),
            state: r.state,
            source: r.source,
            ...(r.zone ? { zone: r.zone } : {}),
            readPriority: reg.readPriority(r.name),
          };
        });
      },
      listBuckets: () => listBucketRecords(db),
      jobs: new JobControl(db, {
        strategy: config.placement.strategy,
        backendOrder: () => [...reg.names],
        cleanupDelayMs: config.workers.cleanupDelayMs,
        wake: () => workers?.wake(),
      }),
      locate: (bucket, key) => store.locate(bucket, key),
      backendControl: fleet.control,
      credentials: new CredentialManager(db, secrets, changes),
      buckets: new BucketManager(db, changes, (q, bucket) =>
        startBucketPurge(q, bucket, { cleanupDelayMs: config.workers.cleanupDelayMs, createdBy: 'BucketService.DeleteBucket' }),
      ),
      usage: new UsageReports(db, usage),
      ...(mode === 'worker' ? { rpcs: false } : {}),
      ready: () => readiness(db, health, () => stopping),
    };
    admin = await startAdminServer(adminDeps, { host: adminCfg.host, port: adminCfg.port });
    const s3Port = s3?.port ?? 0;
    const adminPort = admin.port;
    if (opts.workers !== false && mode !== 'api') {
      const w = config.workers;
      const replication = {
        replicas: config.placement.replicas,
        strategy: config.placement.strategy,
        cleanupDelayMs: w.cleanupDelayMs,
        ...(w.repairBandwidth !== undefined ? { repairBandwidth: w.repairBandwidth } : {}),
        ...(w.scrubIntervalMs !== undefined ? { scrubIntervalMs: w.scrubIntervalMs } : {}),
        ...(w.scrubRate !== undefined ? { scrubRate: w.scrubRate } : {}),
        ...(w.scrubDeepIntervalMs !== undefined ? { scrubDeepIntervalMs: w.scrubDeepIntervalMs } : {}),
        ...(w.scrubBandwidth !== undefined ? { scrubBandwidth: w.scrubBandwidth } : {}),
      };
      workers = startWorkers(
        {
          db,
          backends: registry,
          log,
          metrics,
          owner: instanceId,
          replication,
          ...(opts.clock ? { clock: opts.clock } : {}),
          ...(config.placement.rebalanceOnAdd ? { rebalanceOnAdd: { strategy: config.placement.strategy, order: () => [...reg.names] } } : {}),
        },
        config.workers,
        log,
      );
    }
    loops.push(startHealthProbes(health, registry, log, { tickMs: opts.health?.probeTickMs ?? PROBE_TICK_MS }));
    // Crash leftovers older than the stale-write timeout (at least 10 minutes) belong to no live write.
    const leftoverAge = Math.max(config.workers.staleWriteMs, 10 * 60_000);
    loops.push(startFsSweeps(db, fsBackends, { olderThanMs: leftoverAge, everyMs: FS_SWEEP_EVERY_MS }, log));
    changes.start();
    usage.start();
    let stopped: Promise<void> | undefined;
    const server = s3;
    const runningFleet = fleet;
    return {
      s3Port,
      adminPort,
      s3Address: formatHostPort(s3Cfg.host, s3Port),
      adminAddress: formatHostPort(adminCfg.host, adminPort),
      db,
      dbBreaker,
      store,
      backends: registry,
      metrics,
      changes,
      fleet: runningFleet,
      mode,
      reload: async (next) => {
        // Misconfigured new or changed backends refuse the whole file, as they would refuse a start.
        await runningFleet.checkDeclared(next.backends);
        await runningFleet.applyDeclared(next.backends, next.source);
        for (const hook of reloadHooks) await hook(next);
      },
      onReload: (hook) => {
        reloadHooks.push(hook);
      },
      ...(demo ? { demo } : {}),
      wakeWorkers: () => workers?.wake(),
      stop: (o = {}) => {
        if (stopped && o.deadlineMs === 0) void server?.drain(0);
        return (stopped ??= stopAll(o.deadlineMs ?? shutdownTimeoutMs));
      },
    };
  } catch (err) {
    await stopAll(0);
    throw err;
  }
}

/**
 * Checks every backend at start-up and records the outcome as its first health probe. A misconfigured
 * backend (bucket missing, credentials refused) stops the start with an error naming it; one that is merely
 * unreachable (or an fs directory whose disk is not mounted) is logged and starts unavailable, so a provider
 * outage cannot prevent a restart; the periodic probe notices when it is back.
 */
async function checkBackends(registry: BackendRegistry, health: HealthTracker, log: Logger): Promise<void> {
  await Promise.all(
    registry.all().map(async (b) => {
      try {
        await b.check();
        health.recordProbe(b.name);
      } catch (err) {
        if (err instanceof BackendError && err.kind === 'Unavailable') {
          log.warn('backend unavailable at start-up; continuing without it until it answers', { backend: b.name, err });
          health.recordProbe(b.name, err);
          return;
        }
        throw new Error(`backend ${b.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }),
  );
}

/**
 * /readyz: ready when the metadata database answers, at least one backend is not unavailable, and the
 * instance is not shutting down. The reasons say which condition failed; unhealthy backends are listed
 * (informational) either way.
 */
async function readiness(db: Db, health: HealthTracker, stopping: () => boolean): Promise<Readiness> {
  const reasons: string[] = [];
  if (stopping()) reasons.push('shutting down');
  try {
    await db.query('SELECT 1');
  } catch {
    reasons.push('metadata database unreachable');
  }
  const all = health.all();
  const notHealthy = all.filter((h) => h.state !== 'healthy');
  if (all.length > 0 && all.every((h) => h.state === 'unavailable')) reasons.push('no backend is available');
  return {
    ready: reasons.length === 0,
    reasons,
    backends: notHealthy.map((h) => `${h.name} ${h.state} since ${h.since.toISOString()}${h.lastError ? `: ${h.lastError.message}` : ''}`),
  };
}
