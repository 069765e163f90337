/**
 * Drain throughput against a plain copy, and the drain's effect on client GET latency.
 *
 *   node --import tsx bench/drain.ts [--objects 100] [--size 1MiB] [--readers 4] [--concurrency 32]
 *
 * Two s3rver backends (child processes) and the machine's PostgreSQL (a fresh schema), all in this run:
 * 1. plain copy: `--objects` objects of `--size` put on backend A, then copied A → B by `--concurrency`
 *    workers with the same client library the orchestrator uses (src/backends/s3.ts over the AWS SDK:
 *    a streamed GET piped into a PUT) — the ceiling a drain is compared with;
 * 2. an orchestrator over A and B (pack: every object lands on A), the same objects written through S3,
 *    then `DrainBackend(A)` until the job is done, with nothing else running: bytes moved per second of
 *    job wall time (from the RPC to the job's `done`, planning and the finisher's settling included), and
 *    up to the last move;
 * 3. GET latency of small objects read by `--readers` clients through the orchestrator before any drain
 *    (baseline) and while the data is drained back B → A (p50, p99, max).
 * Prints a Markdown table (docs/benchmarks.md "Drain").
 */
import os from 'node:os';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { JobService, JobState } from '../gen/s3o/admin/v1/jobs_pb.js';
import { startOrchestrator } from '../src/app.js';
import { createBackend } from '../src/backends/index.js';
import { resolveConfig } from '../src/config/load.js';
import { parseSize } from '../src/config/units.js';
import { createLogger } from '../src/log.js';
import { freshDatabase } from '../test/harness/db.js';
import { s3BackendConfig, startS3rver } from '../test/harness/s3rver.js';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '100' },
    size: { type: 'string', default: '1MiB' },
    readers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '32' },
  },
});
const N = Number(values.objects);
const SIZE = parseSize(values.size);
const READERS = Number(values.readers);
const CONCURRENCY = Number(values.concurrency);
const SMALL = 50;
const MiB = 1024 * 1024;
const creds = { accessKeyId: 'AKIABENCHDRAIN000001', secretAccessKey: 'bench-drain-secret-0123456789' };

function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let o = 0; o < size; o += 4) b.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ o) >>> 0, Math.min(o, size - 4));
  return b;
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  }));
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** GETs random small objects until `until` resolves; returns the latencies in ms. */
async function readLoop(client: S3Client, until: Promise<unknown>): Promise<{ ms: number[]; errors: number }> {
  let stop = false;
  void until.then(() => (stop = true));
  const ms: number[] = [];
  let errors = 0;
  await Promise.all(Array.from({ length: READERS }, async (_, r) => {
    let n = r;
    while (!stop) {
      n = (n * 1103515245 + 12345) >>> 0;
      const t = performance.now();
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: `small/${n % SMALL}` }));
        await res.Body!.transformToByteArray();
        ms.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }));
  return { ms, errors };
}

const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
const [a, b] = await Promise.all([startS3rver(), startS3rver()]);
const db = await freshDatabase('postgres');
try {
  // 1. Plain copy A → B with the orchestrator's own backend client.
  const A = createBackend(s3BackendConfig(a, 'plain-a'));
  const B = createBackend(s3BackendConfig(b, 'plain-b'));
  const ids = Array.from({ length: N }, (_, i) => i);
  await pool(ids, 8, (i) => A.put(`plain/${i}`, Readable.from([payload(i, SIZE)]), SIZE, { bucket: 'x', key: `${i}`, versionId: 'v' }));
  let t = performance.now();
  await pool(ids, CONCURRENCY, async (i) => B.put(`plain/${i}`, await A.get(`plain/${i}`), SIZE, { bucket: 'x', key: `${i}`, versionId: 'v' }));
  const plainMs = performance.now() - t;
  await pool(ids, 8, async (i) => {
    await A.delete(`plain/${i}`);
    await B.delete(`plain/${i}`);
  });
  await A.close();
  await B.close();

  // 2. and 3. The orchestrator over the same two servers.
  const base = resolveConfig(
    {
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
      database: { url: db.config.url, schema: db.config.schema },
      placement: { strategy: 'pack' },
      backends: [{ name: 'placeholder', type: 'fs', path: os.tmpdir() }],
      buckets: [{ name: 'bench', credentials: [{ access_key_id: creds.accessKeyId, secret_access_key: creds.secretAccessKey }] }],
      workers: { cleanup_delay: '30s' },
    },
    'bench-drain',
  );
  const orch = await startOrchestrator({ ...base, backends: [s3BackendConfig(a, 's3-a'), s3BackendConfig(b, 's3-b')] }, { log: createLogger({}, 'error') });
  const client = new S3Client({ endpoint: `http://127.0.0.1:${orch.s3Port}`, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  try {
    await pool(ids, 8, async (i) => {
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `big/${i}`, Body: payload(i, SIZE) }));
    });
    await pool(Array.from({ length: SMALL }, (_, i) => i), 8, async (i) => {
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `small/${i}`, Body: payload(i, 4096) }));
    });
    const baselineFor = new Promise((r) => setTimeout(r, 5_000));
    const baseline = await readLoop(client, baselineFor);

    const jobs = createClient(JobService, createConnectTransport({ baseUrl: `http://127.0.0.1:${orch.adminPort}`, httpVersion: '1.1' }));
    const movedBytes = N * SIZE + SMALL * 4096;
    /** Drains `backend` to its end; returns the wall time and the time to the last move, in ms. */
    const drain = async (backend: string, during?: (finished: Promise<unknown>) => Promise<unknown>) => {
      const t0 = performance.now();
      const { job } = await jobs.drainBackend({ backend }, {});
      let lastMoveMs = 0;
      const finished = (async () => {
        for (;;) {
          const j = (await jobs.getJob({ id: job!.id }, {})).job!;
          if (lastMoveMs === 0 && j.progress!.planned && j.progress!.itemsDone === j.progress!.itemsTotal) lastMoveMs = performance.now() - t0;
          if ([JobState.DONE, JobState.FAILED, JobState.CANCELLED].includes(j.state)) return j;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const side = during?.(finished);
      const done = await finished;
      const ms = performance.now() - t0;
      await side;
      if (done.state !== JobState.DONE) throw new Error(`drain ended ${JobState[done.state]}: ${done.message}`);
      await jobs.cancelDrain({ backend }, {});
      return { ms, lastMoveMs };
    };
    // A → B alone (throughput), then B → A while clients read (latency).
    const alone = await drain('s3-a');
    let during: { ms: number[]; errors: number } = { ms: [], errors: 0 };
    const loaded = await drain('s3-b', async (finished) => (during = await readLoop(client, finished)));
    const drainMs = alone.ms;
    const lastMoveMs = alone.lastMoveMs;

    const rate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;
    const plainBytes = N * SIZE;
    console.log(`\nload average before the run: ${load}; ${os.cpus().length} CPUs; ${N} × ${values.size} + ${SMALL} × 4 KiB\n`);
    console.log('| measure | value |');
    console.log('| --- | --- |');
    console.log(`| plain copy A → B (${CONCURRENCY} streams, src/backends/s3.ts) | ${rate(plainBytes, plainMs)} (${(plainMs / 1000).toFixed(1)} s) |`);
    console.log(`| drain, job wall time (RPC → done) | ${rate(movedBytes, drainMs)} (${(drainMs / 1000).toFixed(1)} s) — ${((movedBytes / drainMs) / (plainBytes / plainMs)).toFixed(2)}× plain |`);
    console.log(`| drain, RPC → last move done | ${rate(movedBytes, lastMoveMs)} (${(lastMoveMs / 1000).toFixed(1)} s) — ${((movedBytes / lastMoveMs) / (plainBytes / plainMs)).toFixed(2)}× plain |`);
    console.log(`| GET 4 KiB, ${READERS} readers, before: p50 / p99 / max | ${quantile(baseline.ms, 0.5).toFixed(1)} / ${quantile(baseline.ms, 0.99).toFixed(1)} / ${Math.max(...baseline.ms).toFixed(1)} ms (${baseline.ms.length} GETs, ${baseline.errors} errors) |`);
    console.log(`| drain B → A with the readers below, job wall time | ${rate(movedBytes, loaded.ms)} (${(loaded.ms / 1000).toFixed(1)} s) |`);
    console.log(`| GET 4 KiB, ${READERS} readers, during the drain: p50 / p99 / max | ${quantile(during.ms, 0.5).toFixed(1)} / ${quantile(during.ms, 0.99).toFixed(1)} / ${Math.max(...during.ms).toFixed(1)} ms (${during.ms.length} GETs, ${during.errors} errors) |`);
    console.log(`\nload average after the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    client.destroy();
    await orch.stop();
  }
} finally {
  await a.stop();
  await b.stop();
  await db.drop();
}
