/**
 * A running orchestrator for the operator tests (shutdown, health, fs identity): real fs and s3rver
 * backends, a fresh database, the log lines it wrote, and a way to restart it over the same database and
 * directories (a process restart, as an operator would do one).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator, type StartOptions } from '../../../src/app.js';
import { resolveConfig } from '../../../src/config/load.js';
import type { BackendConfig, Config } from '../../../src/config/types.js';
import type { Logger } from '../../../src/log.js';
import { openDatabase } from '../../../src/meta/open.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { assertLedger } from '../../harness/ledger.js';
import { TEST_CREDS } from '../../harness/orchestrator.js';

/** Log lines as `level msg {fields}` (fields JSON), to check what an operator would read. */
export function capturingLogger(lines: string[]): Logger {
  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      void lines.push(`${level} ${msg} ${JSON.stringify({ ...base, ...(fields ?? {}) }, (_k, v: unknown) => (v instanceof Error ? v.message : v))}`);
    return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error'), child: (f) => make({ ...base, ...f }) };
  };
  return make({});
}

export interface OperatorFixture {
  orch: Orchestrator;
  config: Config;
  endpoint: string;
  adminUrl: string;
  client: S3Client;
  dir: string;
  db: TestDatabase;
  log: string[];
  /** Stops the running orchestrator (if any) and starts a new one over the same database and backends. */
  restart(): Promise<void>;
  /** Stops everything and removes the directories and the database. */
  close(): Promise<void>;
}

/**
 * Starts an orchestrator over `backends(dir)` (fs paths under `dir`), bucket `data` with TEST_CREDS, a
 * fresh database and the given start options (health tuning, workers).
 */
export async function startFixture(
  backends: (dir: string) => BackendConfig[],
  opts: Omit<StartOptions, 'log'> & { shutdownTimeoutMs?: number } = {},
): Promise<OperatorFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-op-'));
  await chmod(dir, 0o755);
  const db = await freshDatabase();
  const base = resolveConfig(
    {
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
      database: db.config.url ? { url: db.config.url, schema: db.config.schema } : { path: db.config.path },
      backends: [{ name: 'placeholder', type: 'fs', path: dir }],
      buckets: [{ name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }] }],
    },
    'operator-test',
  );
  const config: Config = {
    ...base,
    server: { ...base.server, ...(opts.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: opts.shutdownTimeoutMs } : {}) },
    backends: backends(dir),
    workers: { ...base.workers, cleanupDelayMs: 0, cleanupIntervalMs: 100 },
  };
  const log: string[] = [];
  const start = () => startOrchestrator(config, { ...opts, log: capturingLogger(log) });
  const f: OperatorFixture = {
    orch: await start().catch(async (err: unknown) => {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }),
    config,
    endpoint: '',
    adminUrl: '',
    client: undefined as unknown as S3Client,
    dir,
    db,
    log,
    async restart() {
      f.client.destroy();
      await f.orch.stop();
      f.orch = await start();
      wire();
    },
    async close() {
      f.client.destroy();
      await f.orch.stop();
      try {
        // Whatever the test did to the instance (kills, aborts, outages), the quota ledger must hold.
        const { db: check } = await openDatabase(config.database);
        try {
          await assertLedger(check, 'operator ledger');
        } finally {
          await check.close();
        }
      } finally {
        await db.drop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  const wire = () => {
    f.endpoint = `http://127.0.0.1:${f.orch.s3Port}`;
    f.adminUrl = `http://127.0.0.1:${f.orch.adminPort}`;
    f.client = new S3Client({ endpoint: f.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDS, maxAttempts: 1 });
  };
  wire();
  return f;
}

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs` (a bound, not a timing assertion). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
