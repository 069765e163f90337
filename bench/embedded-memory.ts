/**
 * Memory of a zero-config orchestrator with its embedded PostgreSQL, as an operator's monitoring sees it:
 * RSS and PSS of the whole process tree (node plus every postgres process: the postmaster, which runs in
 * its own session, and its children), read from /proc without forcing GC.
 *
 *   node --import tsx bench/embedded-memory.ts [--puts N] [--concurrency C] [--size BYTES] [--settle SECONDS]
 *
 * Starts `bin/s3-orchestrator.js serve --data DIR` on a fresh directory (on disk, under os.tmpdir()),
 * measures at idle after the settle time, then during N small PUTs (C in flight; the peak of samples every
 * 100 ms), then at idle again; prints a table and removes the directory. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const { values } = parseArgs({
  options: { puts: { type: 'string' }, concurrency: { type: 'string' }, size: { type: 'string' }, settle: { type: 'string' } },
});
const PUTS = Number(values.puts ?? 1000);
const CONCURRENCY = Number(values.concurrency ?? 16);
const SIZE = Number(values.size ?? 4096);
const SETTLE_MS = Number(values.settle ?? 15) * 1000;
const BIN = fileURLToPath(new URL('../bin/s3-orchestrator.js', import.meta.url));

interface Mem {
  rss: number;
  pss: number;
  processes: number;
}

async function kib(file: string, field: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function children(pid: number): Promise<number[]> {
  try {
    const tasks = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return tasks.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function tree(roots: number[]): Promise<number[]> {
  const out: number[] = [];
  const todo = [...roots];
  while (todo.length) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(await children(pid)));
  }
  return out;
}

/** Sum over the tree of node and of the postmaster (read from postmaster.pid). */
async function measure(nodePid: number, pgdata: string): Promise<{ node: Mem; postgres: Mem }> {
  const postmaster = Number((await readFile(path.join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const sum = async (pids: number[]): Promise<Mem> => {
    const m: Mem = { rss: 0, pss: 0, processes: 0 };
    for (const pid of pids) {
      try {
        m.rss += await kib(`/proc/${pid}/status`, 'VmRSS');
        m.pss += await kib(`/proc/${pid}/smaps_rollup`, 'Pss');
        m.processes++;
      } catch {
        // exited meanwhile
      }
    }
    return m;
  };
  return { node: await sum(await tree([nodePid])), postgres: await sum(await tree([postmaster])) };
}

const mib = (k: number) => (k / 1024).toFixed(1);

const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-memory-'));
await chmod(dir, 0o755); // as root the server runs as "postgres"
const child = spawn(process.execPath, [BIN, 'serve', '--data', dir, '--s3-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, S3O_LOG_LEVEL: 'warn' },
});
try {
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setInterval(() => {
      const m = /S3 endpoint\s+(http:\/\/\S+)[\s\S]*access key\s+(\S+)\s*\n\s*secret key\s+(\S+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve(m);
      }
    }, 50);
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  const [, endpoint, accessKeyId, secretAccessKey] = banner as unknown as [string, string, string, string];
  const pgdata = path.join(dir, 'pg', 'pgdata');
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const idle = await measure(child.pid!, pgdata);

  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  const body = Buffer.alloc(SIZE, 7);
  let next = 0;
  let peak = idle;
  const total = (m: { node: Mem; postgres: Mem }) => m.node.rss + m.postgres.rss;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const m = await measure(child.pid!, pgdata);
      if (total(m) > total(peak)) peak = m;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < PUTS) {
        const i = next++;
        await client.send(new PutObjectCommand({ Bucket: 'demo', Key: `k/${i}`, Body: body }));
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  sampling = false;
  await sampler;
  client.destroy();
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await measure(child.pid!, pgdata);

  const row = (label: string, m: { node: Mem; postgres: Mem }) =>
    `| ${label} | ${mib(m.node.rss)} / ${mib(m.node.pss)} | ${mib(m.postgres.rss)} / ${mib(m.postgres.pss)} (${m.postgres.processes}) | ` +
    `${mib(m.node.rss + m.postgres.rss)} / ${mib(m.node.pss + m.postgres.pss)} |`;
  console.log(`${PUTS} PUTs of ${SIZE} B, ${CONCURRENCY} in flight: ${seconds.toFixed(1)} s (${(PUTS / seconds).toFixed(0)}/s)`);
  console.log('| moment | node RSS / PSS MiB | postgres RSS / PSS MiB (processes) | total RSS / PSS MiB |');
  console.log('|---|---|---|---|');
  console.log(row(`idle after start (${SETTLE_MS / 1000} s)`, idle));
  console.log(row('peak during the PUTs', peak));
  console.log(row(`idle after the PUTs (${SETTLE_MS / 1000} s)`, after));
} finally {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  await rm(dir, { recursive: true, force: true });
}
