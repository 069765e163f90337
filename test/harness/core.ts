import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Backend } from '../../src/backends/backend.js';
import { createBackend } from '../../src/backends/index.js';
import type { BackendConfig } from '../../src/config/types.js';
import { BackendRegistry } from '../../src/core/backends.js';
import type { HealthTracker } from '../../src/core/health.js';
import { syncConfigBackends } from '../../src/core/fleet.js';
import { ManualClock, runTaskBatch } from '../../src/core/tasks.js';
import { CoreObjectStore } from '../../src/core/objects.js';
import { DbTenantDirectory, syncTenants } from '../../src/core/tenants.js';
import type { PutObjectInput } from '../../src/core/types.js';
import type { WriteDeps } from '../../src/core/writes.js';
import { run } from '../../src/meta/run.js';
import { taskHandlers } from '../../src/workers/index.js';
import { createLogger } from '../../src/log.js';
import type { Db } from '../../src/meta/db.js';
import { openDatabase } from '../../src/meta/open.js';
import * as bq from '../../src/meta/queries/backends.js';
import { freshDatabase, type TestDatabase } from './db.js';
import { assertLedger, assertNoStrayBytes } from './ledger.js';

/** Core wired over a real database and real backends, without the S3 layer. */
export interface CoreFixture {
  db: Db;
  store: CoreObjectStore;
  registry: BackendRegistry;
  /** The write dependencies the store uses (tests build other core parts over them). */
  deps: WriteDeps;
  /** The clock leases and heartbeats are judged by: tests move it forward instead of sleeping. */
  clock: ManualClock;
  dir: string;
  /** Runs the task queue until nothing is due (by the fixture's clock). */
  drain(): Promise<void>;
  backendRow(name: string): Promise<bq.BackendRow>;
  close(): Promise<void>;
}

/** Opens a fresh database of `engine` with buckets `data` and `other`, over `backends` (fs ones under a temp dir). */
export async function coreFixture(
  engine: 'embedded' | 'postgres',
  backends: (dir: string) => BackendConfig[],
  strategy: 'pack' | 'spread' = 'pack',
  opts: { wrap?: (b: Backend) => Backend; health?: (names: string[]) => HealthTracker } = {},
): Promise<CoreFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-core-'));
  const tdb: TestDatabase = await freshDatabase(engine);
  const { db } = await openDatabase(tdb.config);
  const cfgs = backends(dir);
  const registry = new BackendRegistry(
    cfgs.map((c) => (opts.wrap ?? ((b: Backend) => b))(createBackend(c))),
    undefined,
    opts.health?.(cfgs.map((c) => c.name)),
  );
  // As at start-up: each backend checks itself (an fs backend creates its root and identity on first use).
  await Promise.all(registry.all().map((b) => b.check().catch(() => {})));
  await syncConfigBackends(db, cfgs);
  await syncTenants(db, [
    { name: 'data', credentials: [] },
    { name: 'other', credentials: [] },
  ]);
  const log = createLogger({}, 'error');
  const clock = new ManualClock();
  const deps: WriteDeps = { db, backends: registry, strategy, cleanupDelayMs: 0, heartbeatMs: 60_000, staleMs: 600_000, clock, log };
  const store = new CoreObjectStore(deps, new DbTenantDirectory(db));
  return {
    db,
    store,
    registry,
    deps,
    clock,
    dir,
    async drain() {
      const queue = { db, log, clock, owner: 'test' };
      // Replication follows the write settings of the moment (tests may change deps.replicas).
      const replication = { replicas: deps.replicas ?? 1, strategy: deps.strategy, cleanupDelayMs: deps.cleanupDelayMs };
      while ((await runTaskBatch(queue, taskHandlers({ db, backends: registry, log, clock, replication }), 64)) > 0) {
        // keep going until nothing is due
      }
    },
    async backendRow(name) {
      const { rows } = await run<bq.BackendRow>(db, bq.selectBackends());
      return rows.find((r) => r.name === name)!;
    },
    async close() {
      try {
        // Every test file ends with the quota ledger recomputed from the rows, and no stray bytes.
        await assertLedger(db, 'core fixture ledger');
        await assertNoStrayBytes(db, registry.all(), 'core fixture');
      } finally {
        await registry.close();
        await db.close();
        await tdb.drop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A PutObjectInput for a buffer, with digests computed the way the S3 layer does. */
export function putInput(bucket: string, key: string, data: Buffer | string, extra: Partial<PutObjectInput> = {}): PutObjectInput {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return {
    bucket,
    key,
    size: buf.length,
    body: Readable.from(buf.length ? [buf] : []),
    digests: () => ({ md5: createHash('md5').update(buf).digest('hex') }),
    headers: { contentType: 'text/plain' },
    userMeta: {},
    ...extra,
  };
}

/** Reads a stream to a Buffer (test helper: small objects only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
