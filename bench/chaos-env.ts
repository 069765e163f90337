/**
 * The chaos harness's local deployment, every part a real process the nemeses can hurt:
 * - orchestrator instances, each `node bin/s3-orchestrator.js serve --config FILE` on fixed ports (so a
 *   restart comes back where clients expect it), logs appended to a file in the run directory;
 * - two s3rver backends in child processes with directories of their own (a restart serves the same
 *   objects on the same port), the first behind a proxy that can become a black hole, and an fs backend;
 * - the metadata database: `external` — a schema on a PostgreSQL server reached by URL (the machine's
 *   server, or, when the database itself is a target, a server this harness starts and may stop; never
 *   the machine's), or `embedded` — the orchestrator's own server in `database.path`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend, type Backend } from '../src/backends/index.js';
import type { Target } from '../src/check/s3ops.js';
import { layout } from '../src/meta/engine-embedded-dir.js';
import { embeddedTemplateCopy, embeddedTestDir, freshDatabase, startTestEmbedded, type TestEmbedded } from '../test/harness/db.js';
import { S3RVER_CREDENTIALS, s3BackendConfig, startS3rver, type S3rverInstance } from '../test/harness/s3rver.js';
import { startBlackholeProxy, type BlackholeProxy } from './chaos-proxy.js';

const BIN = fileURLToPath(new URL('../bin/s3-orchestrator.js', import.meta.url));
const SKEWABLE = fileURLToPath(new URL('./chaos-serve.ts', import.meta.url));
export const CHAOS_BUCKET = 'chaos';
export const CHAOS_CREDS = { accessKeyId: 'AKIACHAOSCHECK000001', secretAccessKey: 'chaos-secret-key-0123456789abcdef' } as const;
const BACKEND_BUCKET = 'chaos-be';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One orchestrator instance as an operator runs it: a `serve` process. */
export class OrchestratorProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(
    readonly name: string,
    readonly configFile: string,
    readonly s3Port: number,
    readonly adminPort: number,
    readonly logFile: string,
    /** Run bench/chaos-serve.ts (serve with a clock skew read from this file) instead of the CLI. */
    readonly skewFile?: string,
  ) {}

  /** Skews this instance's task clock (the `clock` nemesis; needs `skewFile`). Kept across restarts. */
  skew(ms: number): void {
    if (!this.skewFile) throw new Error(`${this.name} was not started with a settable clock`);
    writeFileSync(this.skewFile, `${Math.round(ms)}\n`);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.s3Port}`;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and waits until /readyz answers 200 (restarting it if it exits first). */
  async start(timeoutMs = 90_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const fd = openSync(this.logFile, 'a');
      writeFileSync(fd, `\n==== ${new Date().toISOString()} start ${this.name} (#${++this.starts})\n`);
      const args = this.skewFile ? ['--import', 'tsx', SKEWABLE, '--config', this.configFile, '--skew-file', this.skewFile] : [BIN, 'serve', '--config', this.configFile];
      const child = spawn(process.execPath, args, {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      });
      closeSync(fd);
      this.child = child;
      this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
      while (Date.now() < until && this.running) {
        if (await this.ready()) return;
        await sleep(200);
      }
      if (this.running) {
        await this.kill();
        throw new Error(`${this.name} not ready after ${timeoutMs} ms (log: ${this.logFile})`);
      }
      if (Date.now() >= until) throw new Error(`${this.name} kept exiting at start (log: ${this.logFile})`);
      await sleep(1000); // it exited during start (e.g. the database is down): try again
    }
  }

  async ready(): Promise<boolean> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.adminPort}/readyz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status === 200;
    } catch {
      return false;
    }
  }

  async kill(): Promise<void> {
    if (this.running) this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful stop), SIGKILL after `graceMs`. */
  async stop(graceMs = 45_000): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** An s3rver backend that can be killed and started again with the same port and objects. */
export class RestartableS3rver {
  private inst: S3rverInstance | undefined;
  port = 0;

  constructor(
    readonly name: string,
    readonly directory: string,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return !!this.inst;
  }

  async start(): Promise<void> {
    this.inst = await startS3rver({ buckets: [BACKEND_BUCKET], directory: this.directory, ...(this.port ? { port: this.port } : {}) });
    this.port = this.inst.port;
  }

  /** SIGKILL (the harness's stop). */
  async kill(): Promise<void> {
    await this.inst?.stop();
    this.inst = undefined;
  }
}

/** Where the metadata lives and how the harness reaches (and hurts) its server. */
export interface ChaosDb {
  kind: 'external' | 'embedded';
  /** The orchestrator's `database` section. */
  config: Record<string, string>;
  /** URL and schema for the harness's own checks (embedded: read from the directory while it runs). */
  connection(): { url: string; schema: string };
  /** The postmaster's pid (to freeze or crash it), if the harness may touch this server. */
  postmasterPid(): number | undefined;
  /** External server started by the harness: stop and start it again. */
  owned?: TestEmbedded;
  cleanup(): Promise<void>;
}

async function chaosDb(kind: 'external' | 'embedded', ownServer: boolean): Promise<ChaosDb> {
  if (kind === 'embedded') {
    const dir = path.join(await embeddedTestDir(), 'pg');
    await embeddedTemplateCopy(dir);
    const pidFile = () => readFileSync(path.join(layout(dir).pgdata, 'postmaster.pid'), 'utf8').split('\n');
    return {
      kind,
      config: { path: dir },
      connection: () => {
        const pw = readFileSync(layout(dir).password, 'utf8').trim();
        return { url: `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${Number(pidFile()[3])}/postgres`, schema: 'public' };
      },
      postmasterPid: () => {
        try {
          return Number(pidFile()[0]) || undefined;
        } catch {
          return undefined;
        }
      },
      cleanup: async () => {
        // A postmaster left by an orchestrator that could not stop it: quit it, then remove the copy.
        try {
          const pid = Number(pidFile()[0]);
          if (pid) process.kill(pid, 'SIGQUIT');
          await sleep(500);
        } catch {
          // none
        }
        await rm(path.dirname(dir), { recursive: true, force: true });
      },
    };
  }
  const schema = `chaos_${randomBytes(5).toString('hex')}`;
  if (ownServer) {
    const owned = await startTestEmbedded();
    return {
      kind,
      config: { url: owned.url, schema },
      connection: () => ({ url: owned.url, schema }),
      postmasterPid: () => owned.server.pid,
      owned,
      cleanup: () => owned.destroy(),
    };
  }
  const db = await freshDatabase(); // the machine's server (or, without one, this process's embedded server)
  const url = db.config.url!;
  return {
    kind,
    config: { url, schema: db.config.schema! },
    connection: () => ({ url, schema: db.config.schema! }),
    postmasterPid: () => undefined,
    cleanup: () => db.drop(),
  };
}

export interface ChaosEnvOptions {
  db: 'external' | 'embedded';
  /** The database must be a server the harness may stop (the `db` nemesis). */
  dbTarget: boolean;
  instances: number;
  runDir: string;
  /** `placement.replicas` (default 1): copies of every version, on distinct backends (3 backends here). */
  replicas?: number;
  /** Instances run bench/chaos-serve.ts, whose task clock the `clock` nemesis can skew. */
  skewable?: boolean;
}

export interface ChaosEnv {
  instances: OrchestratorProcess[];
  s3rvers: RestartableS3rver[];
  proxy: BlackholeProxy;
  db: ChaosDb;
  /** `placement.replicas` of the deployment. */
  replicas: number;
  /** Names of the orchestrator's backends (the drain nemesis picks one). */
  backendNames: string[];
  targets: Target[];
  /** The backends as the orchestrator sees them, reached directly (no proxy), for the stray-bytes check. */
  backends(): Backend[];
  stop(): Promise<void>;
}

export async function startChaosEnv(opts: ChaosEnvOptions): Promise<ChaosEnv> {
  if (opts.db === 'embedded' && opts.instances > 1) throw new Error('several instances need --db external (one PostgreSQL they share)');
  const cleanups: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => console.error(`chaos: cleanup: ${String(err)}`));
  };
  try {
    mkdirSync(opts.runDir, { recursive: true });
    const s3rvers = [1, 2].map((i) => new RestartableS3rver(`s3-${i}`, path.join(opts.runDir, `s3rver-${i}`)));
    for (const s of s3rvers) mkdirSync(s.directory, { recursive: true });
    await Promise.all(s3rvers.map((s) => s.start()));
    cleanups.push(() => Promise.all(s3rvers.map((s) => s.kill())));
    const proxy = await startBlackholeProxy({ host: '127.0.0.1', port: s3rvers[0]!.port });
    cleanups.push(() => proxy.close());
    const db = await chaosDb(opts.db, opts.dbTarget);
    cleanups.push(() => db.cleanup());
    const fsPath = path.join(opts.runDir, 'fs-1');
    const s3 = (name: string, endpoint: string) => ({
      name,
      type: 's3',
      endpoint,
      region: 'us-east-1',
      bucket: BACKEND_BUCKET,
      access_key_id: S3RVER_CREDENTIALS.accessKeyId,
      secret_access_key: S3RVER_CREDENTIALS.secretAccessKey,
      force_path_style: true,
    });
    const instances: OrchestratorProcess[] = [];
    for (let i = 1; i <= opts.instances; i++) {
      const [s3Port, adminPort] = [await freePort(), await freePort()];
      const config = {
        server: { s3: { listen: `127.0.0.1:${s3Port}` }, admin: { listen: `127.0.0.1:${adminPort}` }, shutdown_timeout: '5s' },
        database: db.config,
        placement: { strategy: 'spread', replicas: opts.replicas ?? 1 },
        backends: [s3('s3-1', proxy.endpoint), s3('s3-2', s3rvers[1]!.endpoint), { name: 'fs-1', type: 'fs', path: fsPath }],
        buckets: [{ name: CHAOS_BUCKET, credentials: [{ access_key_id: CHAOS_CREDS.accessKeyId, secret_access_key: CHAOS_CREDS.secretAccessKey }] }],
        // Short delays so that a run converges within its quiet period; pending writes of a killed
        // instance are settled after stale_write_timeout.
        workers: { cleanup_delay: '2s', cleanup_interval: '250ms', stale_write_timeout: '12s' },
      };
      const file = path.join(opts.runDir, `orchestrator-${i}.yaml`);
      writeFileSync(file, JSON.stringify(config, null, 2));
      const skewFile = opts.skewable ? path.join(opts.runDir, `orchestrator-${i}.skew`) : undefined;
      instances.push(new OrchestratorProcess(`orchestrator-${i}`, file, s3Port, adminPort, path.join(opts.runDir, `orchestrator-${i}.log`), skewFile));
    }
    // The first start migrates the schema; the others then start side by side.
    await instances[0]!.start();
    await Promise.all(instances.slice(1).map((p) => p.start()));
    cleanups.push(() => Promise.all(instances.map((p) => p.stop())));
    return {
      instances,
      s3rvers,
      proxy,
      db,
      replicas: opts.replicas ?? 1,
      backendNames: ['s3-1', 's3-2', 'fs-1'],
      targets: instances.map((p) => ({ endpoint: p.endpoint, bucket: CHAOS_BUCKET, region: 'us-east-1', ...CHAOS_CREDS, pathStyle: true })),
      backends: () => [
        ...s3rvers.map((s) => createBackend({ ...s3BackendConfig({ endpoint: s.endpoint, bucket: BACKEND_BUCKET }, s.name), bucket: BACKEND_BUCKET })),
        createBackend({ type: 'fs', name: 'fs-1', path: fsPath, quotaBytes: 0 }),
      ],
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
