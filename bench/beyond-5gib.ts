/**
 * One object larger than S3's 5 GiB single-PUT limit, end to end: @aws-sdk/lib-storage `Upload` (native
 * multipart) through the orchestrator onto a local-directory backend, then HEAD (size, multipart ETag) and a
 * full GET whose SHA-256 must equal the uploaded bytes'. Run: `node --import tsx bench/beyond-5gib.ts [GiB]`.
 * Needs about 2× the size in free disk (parts, then the assembled object).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startOrchestrator } from '../src/app.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';

const GiB = 1024 ** 3;
const size = Math.round(Number(process.argv[2] ?? '6') * GiB);
const partSize = 64 * 1024 * 1024;
const creds = { accessKeyId: 'AKIABENCHBEYOND5GIB1', secretAccessKey: 'bench-secret-0123456789abcdef' };

/** Deterministic pseudo-random bytes in 1 MiB chunks; hashes what it yields. */
function* body(total: number, hash: ReturnType<typeof createHash>): Generator<Buffer> {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let off = 0, n = 0; off < total; off += chunk.length, n++) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((Math.imul(n + 1, 2654435761) ^ Math.imul(i, 40503)) >>> 0, i);
    const out = Buffer.from(chunk.subarray(0, Math.min(chunk.length, total - off)));
    hash.update(out);
    yield out;
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-5gib-'));
const config = resolveConfig(
  {
    server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
    database: { path: path.join(dir, 'meta') },
    backends: [{ name: 'disk', type: 'fs', path: path.join(dir, 'disk') }],
    buckets: [{ name: 'big', credentials: [{ access_key_id: creds.accessKeyId, secret_access_key: creds.secretAccessKey }] }],
  },
  'beyond-5gib',
);
const orch = await startOrchestrator(config, { log: createLogger({}, 'warn') });
const client = new S3Client({ endpoint: `http://127.0.0.1:${orch.s3Port}`, region: 'us-east-1', forcePathStyle: true, credentials: creds });
try {
  const upHash = createHash('sha256');
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
  const t0 = performance.now();
  await new Upload({
    client,
    params: { Bucket: 'big', Key: 'huge.bin', Body: Readable.from(body(size, upHash)) },
    partSize,
    queueSize: 4,
  }).done();
  const t1 = performance.now();
  const head = await client.send(new HeadObjectCommand({ Bucket: 'big', Key: 'huge.bin' }));
  const got = await client.send(new GetObjectCommand({ Bucket: 'big', Key: 'huge.bin' }));
  const downHash = createHash('sha256');
  let read = 0;
  for await (const c of got.Body as Readable) {
    downHash.update(c as Buffer);
    read += (c as Buffer).length;
  }
  const t2 = performance.now();
  clearInterval(sampler);
  const up = upHash.digest('hex');
  const down = downHash.digest('hex');
  const mb = size / 1e6;
  console.log(`object: ${(size / GiB).toFixed(2)} GiB in ${Math.ceil(size / partSize)} parts of ${partSize / 1024 / 1024} MiB`);
  console.log(`upload (lib-storage, 4 parts in flight): ${((t1 - t0) / 1000).toFixed(1)} s, ${(mb / ((t1 - t0) / 1000)).toFixed(0)} MB/s`);
  console.log(`HEAD: Content-Length ${head.ContentLength}, ETag ${head.ETag}, parts ${head.PartsCount ?? '-'}`);
  console.log(`GET: ${read} bytes in ${((t2 - t1) / 1000).toFixed(1)} s, ${(mb / ((t2 - t1) / 1000)).toFixed(0)} MB/s`);
  console.log(`sha256 uploaded ${up}\nsha256 read back ${down}\n${up === down && read === size && head.ContentLength === size ? 'MATCH' : 'MISMATCH'}`);
  console.log(`process RSS (client and orchestrator in one process): before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, peak ${(rssPeak / 2 ** 20).toFixed(0)} MiB`);
  if (up !== down || read !== size) process.exitCode = 1;
} finally {
  client.destroy();
  await orch.stop();
  await rm(dir, { recursive: true, force: true });
}
