/**
 * The servers of bench/replication.ts: two s3rver processes (`s3-a`, read first: read_priority 0; `s3-b`,
 * read_priority 1) serving one orchestrator child (bench/orchestrator-child.ts) with two buckets over the
 * same two backends: `rep1` (replicas 1: `pack` puts every copy on s3-a) and `rep2` (replicas 2: one copy on
 * each). Each s3rver serves a directory of our own, so it can be SIGKILLed and restarted on the same port
 * with its data (the failover and mid-stream figures).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freshDatabase, type TestDatabase } from '../test/harness/db.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverInstance } from '../test/harness/s3rver.js';
import { childPid } from './cpu.js';
import { ORCH_CREDS, startChild, type OrchestratorChild, type Target } from './setup.js';

/** One backend s3rver that can be killed and brought back. */
export interface Backend {
  /** The orchestrator's name for it. */
  name: string;
  port: number;
  /** Pid of the s3rver process (NaN while it is down). */
  pid(): number;
  /** SIGKILL, right now (the kernel closes its sockets); resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
}

/** Everything bench/replication.ts talks to. */
export interface ReplicationEnv {
  r1: Target;
  r2: Target;
  /** `http://host:port` of the admin listener (serves /metrics). */
  admin: string;
  child: OrchestratorChild;
  backends: [Backend, Backend];
  /** Waits until this instance sees `name` healthy again (breaker closed, no failure since); false on timeout. */
  waitHealthy(name: string, timeoutMs?: number): Promise<boolean>;
  /** Live copies of the live version of `bucket/key` (from the database). */
  liveCopies(bucket: string, key: string): Promise<number>;
  stop(): Promise<void>;
}

const BUCKET = 'backend';

function managed(name: string, first: S3rverInstance, directory: string): Backend {
  let current: S3rverInstance | undefined = first;
  return {
    name,
    port: first.port,
    pid: () => (current ? childPid(directory) : Number.NaN),
    kill: async () => {
      const s = current;
      current = undefined;
      await s?.stop();
    },
    restart: async () => {
      if (current) return;
      current = await startS3rver({ directory, port: first.port, buckets: [BUCKET] });
    },
  };
}

/** Starts both s3rvers, a fresh schema and the orchestrator child; `stop()` removes everything. */
export async function startReplicationEnv(opts: { db: 'embedded' | 'postgres' }): Promise<ReplicationEnv> {
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const dirs = await Promise.all(['a', 'b'].map((n) => mkdtemp(path.join(os.tmpdir(), `bench-repl-${n}-`))));
    cleanups.push(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))).then(() => undefined));
    const servers = await Promise.all(dirs.map((directory) => startS3rver({ directory, buckets: [BUCKET] })));
    const backends: [Backend, Backend] = [managed('s3-a', servers[0]!, dirs[0]!), managed('s3-b', servers[1]!, dirs[1]!)];
    cleanups.push(() => Promise.all(backends.map((b) => b.kill())).then(() => undefined));
    const db: TestDatabase = await freshDatabase(opts.db);
    cleanups.push(() => db.drop());
    const { child, s3Port, adminPort } = await startChild(rawConfig(servers, db), undefined);
    cleanups.push(() => child.stop());
    await applyBucketReplicas(db);
    const admin = `http://127.0.0.1:${adminPort}`;
    const endpoint = `http://127.0.0.1:${s3Port}`;
    return {
      r1: { endpoint, bucket: 'rep1', credentials: { ...ORCH_CREDS } },
      r2: { endpoint, bucket: 'rep2', credentials: { ...ORCH_CREDS } },
      admin,
      child,
      backends,
      waitHealthy: (name, timeoutMs = 30_000) => waitHealthy(admin, name, timeoutMs),
      liveCopies: async (bucket, key) => {
        const c = new pg.Client({ connectionString: db.config.url });
        await c.connect();
        try {
          const { rows } = await c.query<{ n: string }>(
            `SELECT count(*) AS n FROM ${db.config.schema}.object_copies c JOIN ${db.config.schema}.object_versions v USING (version_id)
             WHERE v.bucket = $1 AND v.key = $2 AND v.state = 'live' AND c.state = 'live'`,
            [bucket, key],
          );
          return Number(rows[0]?.n ?? 0);
        } finally {
          await c.end();
        }
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Makes sure the bucket rows carry the `replicas` the configuration gives them. In the tree this was
 * written against, `buckets[].replicas` of the configuration file did not reach the bucket row (it stayed
 * NULL, so both buckets followed `placement.replicas`); the row is what every write reads, so setting it
 * here gives each bucket its count. Logs when it had to.
 */
async function applyBucketReplicas(db: TestDatabase): Promise<void> {
  const c = new pg.Client({ connectionString: db.config.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string }>(
      `UPDATE ${db.config.schema}.buckets b SET replicas = w.replicas FROM (VALUES ('rep1', 1), ('rep2', 2)) AS w(name, replicas)
       WHERE b.name = w.name AND b.replicas IS DISTINCT FROM w.replicas RETURNING b.name`,
    );
    if (rows.length > 0) process.stderr.write(`[bench] buckets[].replicas was not on the rows of ${rows.map((r) => r.name).join(', ')}: set\n`);
  } finally {
    await c.end();
  }
}

async function waitHealthy(admin: string, name: string, timeoutMs: number): Promise<boolean> {
  const want = new RegExp(`^s3o_backend_health\\{backend="${name}",state="healthy"\\} 1$`, 'm');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = await fetch(`${admin}/metrics`).then((r) => r.text(), () => '');
    if (want.test(text)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** The configuration file's content (YAML-shaped), as an operator would write it. */
function rawConfig(servers: S3rverInstance[], db: TestDatabase): unknown {
  const creds = [{ access_key_id: ORCH_CREDS.accessKeyId, secret_access_key: ORCH_CREDS.secretAccessKey }];
  return {
    server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
    database: db.config.url ? { url: db.config.url, schema: db.config.schema } : { path: db.config.path },
    // `pack`: a replicas-1 version lands on s3-a, so both buckets read from s3-a and write to it first.
    placement: { strategy: 'pack', replicas: 1 },
    // A short cool-down only shortens the wait between failover rounds (a killed backend's breaker opens
    // on its first failed probe); every other threshold is the default.
    breaker: { cooldown: '1s' },
    backends: servers.map((s, i) => ({
      name: i === 0 ? 's3-a' : 's3-b',
      type: 's3',
      endpoint: s.endpoint,
      region: 'us-east-1',
      bucket: BUCKET,
      access_key_id: S3RVER_CREDENTIALS.accessKeyId,
      secret_access_key: S3RVER_CREDENTIALS.secretAccessKey,
      force_path_style: true,
      read_priority: i,
    })),
    buckets: [
      { name: 'rep1', replicas: 1, credentials: creds },
      { name: 'rep2', replicas: 2, credentials: creds },
    ],
    workers: { cleanup_delay: '2s' },
  };
}

/** Peak VmRSS of `pid` read from /proc every `everyMs` until stopped (the orchestrator measured from outside). */
export function rssSampler(pid: number, everyMs = 20): { stop(): Promise<{ peak: number; samples: number }> } {
  let peak = 0;
  let samples = 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    readFile(`/proc/${pid}/status`, 'utf8')
      .then((t) => {
        const m = /^VmRSS:\s+(\d+) kB$/m.exec(t);
        if (m) {
          peak = Math.max(peak, Number(m[1]) * 1024);
          samples++;
        }
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      return { peak, samples };
    },
  };
}
