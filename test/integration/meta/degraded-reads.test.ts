/**
 * Reads while PostgreSQL is down: an orchestrator over an s3rver and an fs backend, on a PostgreSQL server
 * this test starts itself on a free port (never the machine's shared server). The server is crashed (every
 * process SIGKILLed) and, in a second test, frozen (SIGSTOP: connections stay open and nothing answers).
 * While it is down the database breaker opens, GET/HEAD/Range GET of existing objects are answered from
 * the backends with the right bytes and headers, LIST answers 503, PUT/DELETE/Copy answer 503 within a few
 * seconds; after the server is back everything works again without restarting the orchestrator.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startTestEmbedded, type TestEmbedded } from '../../harness/db.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const BIN = fileURLToPath(new URL('../../../bin/s3-orchestrator.js', import.meta.url));

let pg: TestEmbedded;
let t: TestOrchestrator;
/** One attempt per request: the SDK would otherwise retry each 503 with backoff. */
let client: S3Client;

interface Written {
  key: string;
  body: Buffer;
  /** What HEAD answered while the database was up. */
  head?: { etag: string; contentType: string | undefined; metadata: Record<string, string>; cacheControl?: string; contentDisposition?: string; lastModified: Date };
}
const written = new Map<string, Written>();

const sha = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The postmaster and its children (the whole server). */
function serverProcesses(pid: number): number[] {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

async function status(p: Promise<unknown>): Promise<{ status: number; code: string; ms: number }> {
  const started = Date.now();
  try {
    await p;
    return { status: 200, code: 'OK', ms: Date.now() - started };
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err;
    return { status: err.$metadata.httpStatusCode ?? 0, code: err.name, ms: Date.now() - started };
  }
}

async function put(key: string, body: Buffer, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body, ...extra }));
  written.set(key, { key, body });
}

async function multipart(key: string, parts: Buffer[], metadata: Record<string, string>): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key, ContentType: 'application/x-parts', Metadata: metadata }));
  const done: { PartNumber: number; ETag: string }[] = [];
  for (const [i, p] of parts.entries()) {
    const r = await client.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: i + 1, Body: p }));
    done.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId, MultipartUpload: { Parts: done } }));
  written.set(key, { key, body: Buffer.concat(parts) });
}

/** Records what HEAD answers from the database, to compare the degraded answers with. */
async function recordHeads(): Promise<void> {
  for (const w of written.values()) {
    const h = await client.send(new HeadObjectCommand({ Bucket: 'data', Key: w.key }));
    w.head = {
      etag: h.ETag!,
      contentType: h.ContentType,
      metadata: h.Metadata ?? {},
      ...(h.CacheControl ? { cacheControl: h.CacheControl } : {}),
      ...(h.ContentDisposition ? { contentDisposition: h.ContentDisposition } : {}),
      lastModified: h.LastModified!,
    };
  }
}

/** GET, HEAD and a Range GET of every written object answer what the database answered before. */
async function checkReads(label: string): Promise<void> {
  for (const w of written.values()) {
    const what = `${label}: ${w.key.slice(0, 60)}`;
    const got = await client.send(new GetObjectCommand({ Bucket: 'data', Key: w.key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    assert.equal(sha(bytes), sha(w.body), `${what}: body`);
    assert.equal(got.ContentLength, w.body.length, `${what}: Content-Length`);
    assert.equal(got.ETag, w.head!.etag, `${what}: ETag`);
    assert.equal(got.ContentType, w.head!.contentType, `${what}: Content-Type`);
    assert.deepEqual(got.Metadata, w.head!.metadata, `${what}: user metadata`);
    if (w.head!.cacheControl) assert.equal(got.CacheControl, w.head!.cacheControl, `${what}: Cache-Control`);
    if (w.head!.contentDisposition) assert.equal(got.ContentDisposition, w.head!.contentDisposition, `${what}: Content-Disposition`);

    const head = await client.send(new HeadObjectCommand({ Bucket: 'data', Key: w.key }));
    assert.equal(head.ContentLength, w.body.length, `${what}: HEAD Content-Length`);
    assert.equal(head.ETag, w.head!.etag, `${what}: HEAD ETag`);
    assert.deepEqual(head.Metadata, w.head!.metadata, `${what}: HEAD metadata`);
    // The bytes were stored when the write committed (give or take the upload's own duration).
    assert.ok(Math.abs(head.LastModified!.getTime() - w.head!.lastModified.getTime()) < 60_000, `${what}: Last-Modified`);

    if (w.body.length > 10) {
      const start = Math.floor(w.body.length / 3);
      const end = Math.min(w.body.length - 1, start + Math.floor(w.body.length / 2));
      const ranged = await client.send(new GetObjectCommand({ Bucket: 'data', Key: w.key, Range: `bytes=${start}-${end}` }));
      const part = Buffer.from(await ranged.Body!.transformToByteArray());
      assert.equal(ranged.ContentRange, `bytes ${start}-${end}/${w.body.length}`, `${what}: Content-Range`);
      assert.equal(sha(part), sha(w.body.subarray(start, end + 1)), `${what}: ranged body`);
    }
  }
}

/** Writes, deletes and listings answer 503 ServiceUnavailable, each within a few seconds. */
async function checkWritesRefused(label: string): Promise<number> {
  let slowest = 0;
  const refused = [
    ['PUT', () => client.send(new PutObjectCommand({ Bucket: 'data', Key: 'during-outage', Body: 'never stored' }))],
    ['DELETE', () => client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'plain.txt' }))],
    ['LIST', () => client.send(new ListObjectsV2Command({ Bucket: 'data' }))],
    ['COPY', () => client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'copy-during', CopySource: 'data/plain.txt' }))],
    ['CREATE MULTIPART', () => client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'mpu-during' }))],
  ] as const;
  for (const [what, send] of refused) {
    const s = await status(send());
    assert.equal(s.status, 503, `${label}: ${what} answered ${s.status} ${s.code}`);
    assert.equal(s.code, 'ServiceUnavailable', `${label}: ${what}`);
    assert.ok(s.ms < 3_000, `${label}: ${what} took ${s.ms} ms`);
    slowest = Math.max(slowest, s.ms);
  }
  return slowest;
}

/** After the server is back: the breaker closes, and writes, deletes and listings work again. */
async function checkRecovered(label: string): Promise<void> {
  await t.orch.dbBreaker.until('closed', 20_000);
  const key = `after-${label}`;
  await put(key, Buffer.from(`written after the ${label}`));
  const listed = await client.send(new ListObjectsV2Command({ Bucket: 'data', MaxKeys: 1000 }));
  const keys = new Set(listed.Contents?.map((o) => o.Key));
  for (const k of written.keys()) assert.ok(keys.has(k), `${label}: ${k.slice(0, 60)} listed after recovery`);
  assert.ok(!keys.has('during-outage'), `${label}: the refused PUT stored nothing`);
  await client.send(new DeleteObjectCommand({ Bucket: 'data', Key: key }));
  written.delete(key);
  assert.equal((await status(client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })))).status, 404);
}

/** `s3-orchestrator check` against the orchestrator, as an operator runs it; `loading` resolves when its load begins. */
function runCheck(args: string[]): { loading: Promise<void>; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  let started!: () => void;
  const loading = new Promise<void>((r) => (started = r));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, 'check', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (/s of load under/.test(stderr)) started();
    });
    child.on('exit', (code) => {
      started();
      resolve({ code, stdout, stderr });
    });
  });
  return { loading, done };
}

/** The sum of the samples of /metrics whose line matches (0 when none). */
async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${t.adminUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => line.test(l))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

before(async () => {
  pg = await startTestEmbedded();
  t = await startTestOrchestrator({
    s3rvers: 1,
    fsBackends: 1,
    strategy: 'spread',
    // Overwritten and deleted versions keep their bytes (no cleanup runs): degraded reads must still
    // answer the newest generation, and not bring back what this instance deleted.
    workers: false,
    database: { url: pg.url, schema: 'degraded', connect_timeout: '2s' },
  });
  client = new S3Client({ endpoint: t.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDS, maxAttempts: 1 });

  await put('plain.txt', Buffer.from('hello from before the outage\n'), {
    ContentType: 'text/plain; charset=utf-8',
    CacheControl: 'max-age=60',
    ContentDisposition: 'attachment; filename="plain.txt"',
    Metadata: { color: 'blue', 'two-words': 'a b' },
  });
  await put('dir/with space/ünïcödé+&?#=.bin', randomBytes(70_000), { Metadata: { odd: 'yes' } });
  await put('k'.repeat(900), randomBytes(1000));
  await put('empty', Buffer.alloc(0));
  await put('big.bin', randomBytes(3 * 1024 * 1024 + 17), { ContentType: 'application/octet-stream' });
  await put('overwritten', Buffer.from('first version'));
  await put('overwritten', Buffer.from('second version, the live one'), { Metadata: { v: '2' } });
  await multipart('multi/part.bin', [randomBytes(5 * 1024 * 1024), randomBytes(1024 * 1024 + 3)], { kind: 'multipart' });
  await client.send(new PutObjectCommand({ Bucket: 'data', Key: 'deleted', Body: 'gone' }));
  await client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'deleted' }));
  await recordHeads();
  // Both backends hold objects (spread placement).
  const backends = new Set<string>();
  const metaOn = new Set<string>();
  for (const w of written.values()) {
    if (w.body.length === 0) continue;
    for (const c of (await t.orch.store.locate('data', w.key)).copies) {
      backends.add(c.backend);
      if (Object.keys(w.head!.metadata).length > 0) metaOn.add(c.backend);
    }
  }
  assert.deepEqual([...backends].sort(), ['fs-1', 's3-1']);
  // User metadata travels in the fs sidecar and in the S3 backend's sidecar object: both are exercised.
  assert.deepEqual([...metaOn].sort(), ['fs-1', 's3-1']);
});

after(async () => {
  client?.destroy();
  await t?.stop();
  await pg?.destroy();
});

describe('reads while PostgreSQL is down', () => {
  test('crash (every server process SIGKILLed): degraded GET/HEAD, 503 for the rest, recovery without a restart', async (ctx) => {
    const pids = serverProcesses(pg.server.pid);
    signalAll(pids, 'SIGKILL');
    await pg.stop(); // releases the directory; the server is already gone

    // The first read notices the outage and is answered from the backends.
    const first = Date.now();
    const got = await client.send(new GetObjectCommand({ Bucket: 'data', Key: 'plain.txt' }));
    assert.equal(await got.Body!.transformToString(), 'hello from before the outage\n');
    ctx.diagnostic(`first read during the outage answered in ${Date.now() - first} ms`);
    assert.ok(Date.now() - first < 5_000, `first read during the outage took ${Date.now() - first} ms`);
    await t.orch.dbBreaker.until('open', 10_000);

    await checkReads('crash');
    ctx.diagnostic(`slowest refused write/list: ${await checkWritesRefused('crash')} ms`);
    // A key this instance deleted stays deleted; an unknown one is 404; a part of a multipart object is its part.
    assert.deepEqual(await status(client.send(new GetObjectCommand({ Bucket: 'data', Key: 'deleted' }))).then((s) => s.code), 'NoSuchKey');
    assert.equal((await status(client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'never-written' })))).status, 404);
    const mp = written.get('multi/part.bin')!;
    const part2 = await status(
      client.send(new GetObjectCommand({ Bucket: 'data', Key: 'multi/part.bin', PartNumber: 2 })).then(async (r) => {
        assert.equal(sha(await r.Body!.transformToByteArray()), sha(mp.body.subarray(5 * 1024 * 1024)));
        assert.equal(r.PartsCount, 2);
      }),
    );
    assert.equal(part2.status, 200, `partNumber=2 answered ${part2.code}`);
    // Authentication still works from the last credentials read: a wrong secret is refused as such.
    const wrong = new S3Client({ endpoint: t.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { ...TEST_CREDS, secretAccessKey: 'wrong' }, maxAttempts: 1 });
    assert.equal((await status(wrong.send(new GetObjectCommand({ Bucket: 'data', Key: 'plain.txt' })))).code, 'SignatureDoesNotMatch');
    assert.equal((await status(wrong.send(new HeadObjectCommand({ Bucket: 'data', Key: 'plain.txt' })))).status, 403);
    wrong.destroy();

    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    assert.match(metrics, /s3o_db_breaker_state\{state="open"\} 1/);
    assert.match(metrics, /s3o_degraded_reads_total\{op="GetObject",outcome="served"\} [1-9]/);
    assert.match(metrics, /s3o_degraded_reads_total\{op="HeadObject",outcome="not_found"\} [1-9]/);

    await pg.restart();
    const back = Date.now();
    await t.orch.dbBreaker.until('closed', 20_000);
    ctx.diagnostic(`breaker closed ${Date.now() - back} ms after the server was back`);
    await checkRecovered('crash');
    await checkReads('after the crash');
  });

  test('freeze (SIGSTOP: connections open, no answers): requests stop waiting within seconds; SIGCONT recovers', async (ctx) => {
    const pids = serverProcesses(pg.server.pid);
    signalAll(pids, 'SIGSTOP');
    try {
      // Statements hang on open connections and new ones cannot log in: the breaker notices within
      // suspect + probe time, then everything is answered at once.
      const first = Date.now();
      const got = await client.send(new GetObjectCommand({ Bucket: 'data', Key: 'big.bin' }));
      assert.equal(sha(await got.Body!.transformToByteArray()), sha(written.get('big.bin')!.body));
      ctx.diagnostic(`first read of the freeze answered in ${Date.now() - first} ms`);
      assert.ok(Date.now() - first < 8_000, `first read of the freeze took ${Date.now() - first} ms`);
      await t.orch.dbBreaker.until('open', 10_000);
      await checkReads('freeze');
      ctx.diagnostic(`slowest refused write/list: ${await checkWritesRefused('freeze')} ms`);
    } finally {
      signalAll(pids, 'SIGCONT');
    }
    await checkRecovered('freeze');
  });

  test('under load: the consistency checker finds no anomaly across a crash of the database', async (ctx) => {
    // Reads answered from the backends (an object, or 404 for a key that was never written or was deleted).
    const answered = /^s3o_degraded_reads_total\{op="(Get|Head)Object",outcome="(served|not_found)"\}/;
    const answeredBefore = await metric(answered);
    const check = runCheck([
      '--endpoint', t.endpoint, '--bucket', 'data',
      '--access-key', TEST_CREDS.accessKeyId, '--secret-key', TEST_CREDS.secretAccessKey,
      '--time', '14s', '--clients', '6', '--keys', '4', '--timeout', '10s', '--no-large',
    ]);
    await check.loading;
    await new Promise((r) => setTimeout(r, 4_000));
    signalAll(serverProcesses(pg.server.pid), 'SIGKILL');
    await pg.stop();
    await new Promise((r) => setTimeout(r, 5_000));
    await pg.restart();
    const r = await check.done;
    ctx.diagnostic(r.stdout.trim().split('\n').slice(0, 12).join(' | '));
    assert.equal(r.code, 0, `check found anomalies or unreadable keys:\n${r.stdout}\n${r.stderr.slice(-2000)}`);
    const served = (await metric(answered)) - answeredBefore;
    ctx.diagnostic(`GET/HEAD answered from the backends during the outage: ${served}`);
    assert.ok(served > 0, 'the load read objects while the database was down');
    await t.orch.dbBreaker.until('closed', 20_000);
  });
});
