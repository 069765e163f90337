/**
 * Orchestrators for the job tests: one or more instances in this process over one PostgreSQL schema and
 * the same backends (s3rvers and fs directories), with Connect clients of the JobService, and the
 * end-of-file checks (ledger, stray bytes) every integration test runs.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { JobService, JobState, type Job } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { resolveConfig } from '../../../src/config/load.js';
import type { BackendConfig, Config } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { assertLedger, assertNoStrayBytes } from '../../harness/ledger.js';
import { clientFor, TEST_CREDS } from '../../harness/orchestrator.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

export const ADMIN_TOKEN = 'jobs-test-token';

export interface JobsFixtureOptions {
  /** s3rver backends s3-1..s3-n (default 2). */
  s3rvers?: number;
  /** fs backends fs-1..fs-n (default 1). */
  fsBackends?: number;
  strategy?: 'pack' | 'spread';
  /** Instances sharing the database (default 1). */
  instances?: number;
  /** `workers.cleanup_delay` in ms (default 2 s: reads that started before a move finish from the old copy). */
  cleanupDelayMs?: number;
  quotas?: Record<string, number>;
  /** More buckets the test credential may use (beside `data`). */
  buckets?: string[];
}

export interface JobsFixture {
  orchs: Orchestrator[];
  config: Config;
  db: TestDatabase;
  servers: S3rverInstance[];
  dir: string;
  /** S3 client of instance i (bucket `data`). */
  s3(i?: number): S3Client;
  /** JobService client of instance i, with the admin token. */
  jobs(i?: number): Client<typeof JobService>;
  adminUrl(i?: number): string;
  /** Call options carrying the bearer token. */
  auth: { headers: Headers };
  stop(): Promise<void>;
}

export function backendConfigs(servers: readonly S3rverInstance[], dir: string, fsCount: number, quotas: Record<string, number> = {}): BackendConfig[] {
  return [
    ...servers.map((s, i) => s3BackendConfig(s, `s3-${i + 1}`, { quotaBytes: quotas[`s3-${i + 1}`] ?? 0 })),
    ...Array.from({ length: fsCount }, (_, i) => ({ type: 'fs' as const, name: `fs-${i + 1}`, path: path.join(dir, `fs-${i + 1}`), quotaBytes: quotas[`fs-${i + 1}`] ?? 0 })),
  ];
}

/** The resolved configuration the fixture runs (also written to YAML by the process tests). */
export function jobsConfig(db: TestDatabase, backends: BackendConfig[], dir: string, opts: JobsFixtureOptions): Config {
  const base = resolveConfig(
    {
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN } },
      database: { url: db.config.url, schema: db.config.schema },
      placement: { strategy: opts.strategy ?? 'pack' },
      backends: [{ name: 'placeholder', type: 'fs', path: dir }],
      buckets: ['data', ...(opts.buckets ?? [])].map((name) => ({
        name,
        credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }],
      })),
    },
    'jobs-test',
  );
  return { ...base, backends, workers: { ...base.workers, cleanupDelayMs: opts.cleanupDelayMs ?? 2_000, cleanupIntervalMs: 100 } };
}

export async function startJobsFixture(opts: JobsFixtureOptions = {}): Promise<JobsFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-jobs-'));
  const db = await freshDatabase('postgres');
  const servers = await Promise.all(Array.from({ length: opts.s3rvers ?? 2 }, () => startS3rver()));
  const config = jobsConfig(db, backendConfigs(servers, dir, opts.fsBackends ?? 1, opts.quotas), dir, opts);
  const log = createLogger({ test: true }, (process.env.S3O_LOG_LEVEL as 'debug' | undefined) ?? 'error');
  const orchs: Orchestrator[] = [];
  for (let i = 0; i < (opts.instances ?? 1); i++) orchs.push(await startOrchestrator(config, { log }));
  const s3 = orchs.map((o) => clientFor(`http://127.0.0.1:${o.s3Port}`));
  const jobs = orchs.map((o) => createClient(JobService, createConnectTransport({ baseUrl: `http://127.0.0.1:${o.adminPort}`, httpVersion: '1.1' })));
  const headers = new Headers({ authorization: `Bearer ${ADMIN_TOKEN}` });
  let stopping: Promise<void> | undefined;
  return {
    orchs,
    config,
    db,
    servers,
    dir,
    s3: (i = 0) => s3[i]!,
    jobs: (i = 0) => jobs[i]!,
    adminUrl: (i = 0) => `http://127.0.0.1:${orchs[i]!.adminPort}`,
    auth: { headers },
    stop: () =>
      (stopping ??= (async () => {
        for (const c of s3) c.destroy();
        try {
          await settleCleanup(orchs);
          await assertLedger(orchs[0]!.db, 'jobs ledger');
          await assertNoStrayBytes(orchs[0]!.db, orchs[0]!.backends.all(), 'jobs');
        } finally {
          for (const o of orchs) await o.stop();
          await Promise.all(servers.map((s) => s.stop()));
          await db.drop();
          await rm(dir, { recursive: true, force: true });
        }
      })()),
  };
}

/** Waits until no task is left but dead ones (moves, deletions), waking the workers; returns what is left. */
export async function settleCleanup(orchs: readonly Orchestrator[], timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await orchs[0]!.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM tasks WHERE state <> 'dead' AND kind IN ('delete-copy', 'copy-version', 'job-plan')`);
    if (Number(rows[0]!.n) === 0 || Date.now() > deadline) return Number(rows[0]!.n);
    for (const o of orchs) o.wakeWorkers();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls GetJob until the job is in a final state (or the timeout passes: the last answer is returned). */
export async function waitJob(client: Client<typeof JobService>, id: bigint, auth: { headers: Headers }, timeoutMs = 30_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { job } = await client.getJob({ id }, auth);
    if ([JobState.DONE, JobState.FAILED, JobState.CANCELLED].includes(job!.state) || Date.now() > deadline) return job!;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Object bodies whose generation can be read back from the bytes: `key|gen|` then filler. */
export function body(key: string, gen: number, size: number): Buffer {
  const head = Buffer.from(`${key}|${gen}|`);
  const out = Buffer.alloc(Math.max(size, head.length));
  head.copy(out);
  const fill = createHash('sha256').update(`${key}/${gen}`).digest();
  for (let i = head.length; i < out.length; i++) out[i] = fill[i % fill.length]!;
  return out;
}

/** The generation a body says it has (or -1 when it is not one of ours). */
export function generationOf(key: string, data: Buffer): number {
  const prefix = `${key}|`;
  const text = data.subarray(0, Buffer.byteLength(prefix) + 12).toString();
  if (!text.startsWith(prefix)) return -1;
  return Number(text.slice(prefix.length).split('|')[0]);
}

/** Writes one object (multipart through lib-storage when `partSize` is given and the body is larger). */
export async function putObject(client: S3Client, key: string, data: Buffer, partSize?: number): Promise<void> {
  if (partSize !== undefined && data.length > partSize) {
    await new Upload({ client, params: { Bucket: 'data', Key: key, Body: data }, partSize, queueSize: 2 }).done();
    return;
  }
  await client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: data }));
}

export async function getObject(client: S3Client, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}
