/**
 * The benchmark's servers: one s3rver the client talks to directly, a second s3rver of the same kind as the
 * orchestrator's only backend, and the orchestrator itself in a child process (bench/orchestrator-child.ts)
 * with a schema on an embedded PostgreSQL started by the harness (or on the machine's PostgreSQL).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { freshDatabase, type TestDatabase } from '../test/harness/db.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverInstance } from '../test/harness/s3rver.js';
import { childPid, type CpuPids } from './cpu.js';
import type { ChildMessage, ParentMessage, RssReport } from './orchestrator-child.js';

const CHILD = fileURLToPath(new URL('./orchestrator-child.ts', import.meta.url));

/** The orchestrator's bucket and the key pair the benchmark signs with. */
export const ORCH_BUCKET = 'bench';
export const ORCH_CREDS = { accessKeyId: 'AKIABENCHORCHESTRAT0', secretAccessKey: 'bench-secret-key-0123456789abcdef' } as const;

/** Where a client sends its requests. */
export interface Target {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** The orchestrator child process, with its memory probe. */
export interface OrchestratorChild {
  pid: number;
  /** Collects garbage in the child and restarts its RSS baseline and peak. */
  mark(): Promise<number>;
  report(): Promise<RssReport>;
  stop(): Promise<void>;
}

/** Everything a benchmark run talks to. */
export interface BenchEnv {
  direct: Target;
  orchestrator: Target;
  /** The orchestrator's admin listener (`http://host:port`), which serves `/metrics`. */
  orchestratorAdmin: string;
  child: OrchestratorChild;
  /** For CPU accounting (NaN where a pid could not be found). */
  pids: CpuPids;
  stop(): Promise<void>;
}

/** Options of {@link startBenchEnv}. */
export interface BenchEnvOptions {
  db: 'embedded' | 'postgres';
  /** Directory for `--cpu-prof` output of the child; no profiling when undefined. */
  cpuProfDir?: string;
}

/** Forks bench/orchestrator-child.ts with a raw (YAML-shaped) configuration; resolves once it listens. */
export function startChild(raw: unknown, cpuProfDir: string | undefined): Promise<{ child: OrchestratorChild; s3Port: number; adminPort: number }> {
  const execArgv = ['--import', 'tsx', '--expose-gc'];
  if (cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
  const proc: ChildProcess = fork(CHILD, [JSON.stringify(raw)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: Array<(m: ChildMessage) => boolean> = [];
  let failure: Error | undefined;
  proc.on('message', (m: ChildMessage) => {
    if (m.type === 'error') failure = new Error(`orchestrator child: ${m.message}`);
    const i = waiters.findIndex((w) => w(m));
    if (i >= 0) waiters.splice(i, 1);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const request = <T extends ChildMessage['type']>(msg: ParentMessage | undefined, want: T) =>
    new Promise<Extract<ChildMessage, { type: T }>>((resolve, reject) => {
      const onExit = () => reject(failure ?? new Error(`orchestrator child exited (code ${proc.exitCode})`));
      proc.once('exit', onExit);
      waiters.push((m) => {
        if (m.type === 'error') {
          proc.off('exit', onExit);
          reject(failure);
          return true;
        }
        if (m.type !== want) return false;
        proc.off('exit', onExit);
        resolve(m as Extract<ChildMessage, { type: T }>);
        return true;
      });
      if (msg) proc.send(msg);
    });
  let stopping: Promise<void> | undefined;
  const child: OrchestratorChild = {
    pid: proc.pid ?? -1,
    mark: async () => (await request({ type: 'mark' }, 'marked')).baseline,
    report: async () => {
      const { type: _type, ...r } = await request({ type: 'report' }, 'report');
      return r;
    },
    stop: () =>
      (stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.send({ type: 'stop' } satisfies ParentMessage);
          const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(timer);
        }
      })()),
  };
  return request(undefined, 'ready').then(
    (ready) => ({ child, s3Port: ready.s3Port, adminPort: ready.adminPort }),
    async (err: unknown) => {
      proc.kill('SIGKILL');
      await exited;
      throw err;
    },
  );
}

/** Starts both s3rvers and the orchestrator child; `stop()` removes everything it created. */
export async function startBenchEnv(opts: BenchEnvOptions): Promise<BenchEnv> {
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const [directServer, backendServer] = await Promise.all([
      startS3rver({ buckets: ['direct'] }),
      startS3rver({ buckets: ['backend'] }),
    ]);
    cleanups.push(() => directServer.stop(), () => backendServer.stop());
    const db: TestDatabase = await freshDatabase(opts.db);
    cleanups.push(() => db.drop());
    if (opts.cpuProfDir) await mkdir(opts.cpuProfDir, { recursive: true });
    const { child, s3Port, adminPort } = await startChild(rawConfig(backendServer, db), opts.cpuProfDir);
    cleanups.push(() => child.stop());
    return {
      direct: { endpoint: directServer.endpoint, bucket: 'direct', credentials: { ...S3RVER_CREDENTIALS } },
      orchestrator: { endpoint: `http://127.0.0.1:${s3Port}`, bucket: ORCH_BUCKET, credentials: { ...ORCH_CREDS } },
      orchestratorAdmin: `http://127.0.0.1:${adminPort}`,
      child,
      pids: {
        orchestrator: child.pid,
        directS3rver: childPid(directServer.directory),
        backendS3rver: childPid(backendServer.directory),
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The configuration file's content (YAML-shaped), as an operator would write it. */
function rawConfig(backend: S3rverInstance, db: TestDatabase): unknown {
  return {
    server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
    database: db.config.url ? { url: db.config.url, schema: db.config.schema } : { path: db.config.path },
    backends: [
      {
        name: 's3rver',
        type: 's3',
        endpoint: backend.endpoint,
        region: 'us-east-1',
        bucket: backend.bucket,
        access_key_id: S3RVER_CREDENTIALS.accessKeyId,
        secret_access_key: S3RVER_CREDENTIALS.secretAccessKey,
        force_path_style: true,
      },
    ],
    buckets: [
      { name: ORCH_BUCKET, credentials: [{ access_key_id: ORCH_CREDS.accessKeyId, secret_access_key: ORCH_CREDS.secretAccessKey }] },
    ],
    // Overwritten bench objects are deleted soon, so a long run does not fill the disk with old versions.
    workers: { cleanup_delay: '2s' },
  };
}
