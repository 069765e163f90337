/**
 * Backends as runtime rows across instances and processes on one PostgreSQL schema:
 * - a backend added through the admin API on instance A takes writes on instance B (another process)
 *   within a second (change bus);
 * - SIGHUP makes a running process apply its file again: a newly declared backend is used, a dropped
 *   empty one is removed, a dropped one holding data becomes read-only and API-owned (then removable once
 *   empty), an invalid file is logged and ignored;
 * - server.mode: an `api` instance serves S3 and runs no workers, a `worker` instance serves no S3 and no
 *   RPCs and does the queued work.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { BackendState } from '../../gen/s3o/admin/v1/admin_pb.js';
import { AdminService } from '../../gen/s3o/admin/v1/admin_pb.js';
import { BackendService } from '../../gen/s3o/admin/v1/backends_pb.js';
import { startOrchestrator, type Orchestrator } from '../../src/app.js';
import { loadConfigFile, resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { engines, freshDatabase, type TestDatabase } from '../harness/db.js';
import { assertLedger } from '../harness/ledger.js';
import { clientFor, TEST_CREDS } from '../harness/orchestrator.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/s3-orchestrator.js');
const hasPostgres = (await engines()).includes('postgres');
const quiet = () => createLogger({ test: true }, 'error');

function yaml(db: TestDatabase, backends: string[]): string {
  return [
    'server:',
    '  s3: { listen: "127.0.0.1:0" }',
    '  admin: { listen: "127.0.0.1:0" }',
    `database: { url: "${db.config.url}", schema: ${db.config.schema} }`,
    'workers: { cleanup_delay: 0s, cleanup_interval: 100ms }',
    'backends:',
    ...backends.map((b) => `  - ${b}`),
    'buckets:',
    `  - { name: data, credentials: [{ access_key_id: ${TEST_CREDS.accessKeyId}, secret_access_key: ${TEST_CREDS.secretAccessKey} }] }`,
    '',
  ].join('\n');
}

/** A `serve --config` process, its output, and the addresses it printed. */
interface Served {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  s3: string;
  admin: string;
  stop(): Promise<void>;
}

async function serve(file: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', file, ...extra], {
    cwd: ROOT,
    env: { ...process.env, S3O_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (const until = Date.now() + 60_000; !/admin API/.test(stdout) && child.exitCode === null && Date.now() < until; ) await sleep(50);
  const admin = /admin API +(http:\/\/[\d.]+:\d+)/.exec(stdout)?.[1];
  if (!admin) {
    child.kill('SIGKILL');
    throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
  }
  return {
    child,
    out: () => stdout,
    err: () => stderr,
    s3: /S3 endpoint +(http:\/\/[\d.]+:\d+)/.exec(stdout)?.[1] ?? '',
    admin,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function backendClient(url: string): Client<typeof BackendService> {
  return createClient(BackendService, createConnectTransport({ baseUrl: url, httpVersion: '1.1' }));
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('backends at runtime across instances', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let db: TestDatabase;
  let dir: string;
  let file: string;
  let a: Orchestrator;
  let b: Served;
  let clientB: S3Client;

  before(async () => {
    db = await freshDatabase('postgres');
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-runtime-'));
    file = path.join(dir, 's3o.yaml');
    // The only declared backend is full: a write needs a backend added at runtime.
    await writeFile(file, yaml(db, [`{ name: full, type: fs, path: "${dir}/full", quota_bytes: 1 }`]));
    a = await startOrchestrator(await loadConfigFile(file), { log: quiet() });
    b = await serve(file);
    clientB = clientFor(b.s3);
  });

  after(async () => {
    clientB?.destroy();
    await b?.stop();
    if (a) {
      await assertLedger(a.db, 'runtime ledger');
      await a.stop();
    }
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a backend added on instance A takes writes on instance B (another process) within a second', async (t) => {
    const put = (key: string) => clientB.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: 'hello from B' }));
    await assert.rejects(put('before'), /storage|Insufficient/i);
    const apiA = backendClient(`http://127.0.0.1:${a.adminPort}`);
    await apiA.addBackend({ name: 'shared', settings: { case: 'fs', value: { path: path.join(dir, 'shared') } } });
    const t0 = Date.now();
    const apiB = backendClient(b.admin);
    await until('B loaded the backend', async () => ((await apiB.getBackend({ name: 'shared' })).backend!.loaded ? true : undefined), 5_000);
    const elapsed = Date.now() - t0;
    t.diagnostic(`B had the new backend in use ${elapsed} ms after A's AddBackend returned`);
    assert.ok(elapsed < 1000, `B had the new backend ${elapsed} ms after A added it`);
    // (A failing PUT costs the SDK's retries with backoff, so the write itself comes after the check.)
    await put('after');
    const { rows } = await a.db.query<{ backend: string }>(
      `SELECT c.backend FROM object_copies c JOIN object_versions v USING (version_id) WHERE v.key = 'after' AND v.state = 'live'`,
    );
    assert.deepEqual(rows.map((r) => r.backend), ['shared']);
    assert.equal((await backendClient(b.admin).getBackend({ name: 'shared' })).backend!.loaded, true);

    // A removal on A reaches B too.
    await clientB.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'after' }));
    await until('the copy deleted', async () => {
      a.wakeWorkers();
      const r = await a.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'delete-copy'`);
      return r.rows[0]!.n === 0 ? true : undefined;
    });
    await apiA.removeBackend({ name: 'shared' });
    await until('B dropped the backend', async () => ((await backendClient(b.admin).getBackend({ name: 'shared' })).backend!.loaded ? undefined : true), 2_000);
  });

  test('SIGHUP applies the file: a declared backend is added, dropped ones removed or made read-only; an invalid file is ignored', async () => {
    const apiB = backendClient(b.admin);
    await writeFile(file, yaml(db, [`{ name: full, type: fs, path: "${dir}/full", quota_bytes: 1 }`, `{ name: d2, type: fs, path: "${dir}/d2", zone: z2 }`]));
    b.child.kill('SIGHUP');
    const d2 = await until('d2 declared', async () => (await apiB.getBackend({ name: 'd2' })).backend);
    assert.equal(d2.source, 'config');
    assert.equal(d2.configRef, `${file}: backends[1]`);
    assert.equal(d2.zone, 'z2');
    // Instance A follows within a second (it was not signalled).
    await until('A loaded d2', async () => (a.backends.get('d2') ? true : undefined), 1_000);
    await clientB.send(new PutObjectCommand({ Bucket: 'data', Key: 'on-d2', Body: 'kept' }));

    await writeFile(file, yaml(db, [`{ name: d3, type: fs, path: "${dir}/d3" }`]));
    b.child.kill('SIGHUP');
    const full = await until('full removed', async () => {
      const x = (await apiB.getBackend({ name: 'full' })).backend!;
      // The row changes first, then the instance's registry follows it.
      return x.state === BackendState.REMOVED && !x.loaded ? x : undefined;
    });
    assert.equal(full.source, 'api');
    const kept = (await apiB.getBackend({ name: 'd2' })).backend!;
    assert.equal(kept.state, BackendState.READ_ONLY, 'a dropped backend holding data takes no new copies');
    assert.equal(kept.source, 'api', 'and is handed to the API');
    assert.ok(kept.removalRequestedAt);
    assert.equal(kept.loaded, true, 'its data stays readable');
    const got = await clientB.send(new GetObjectCommand({ Bucket: 'data', Key: 'on-d2' }));
    assert.equal(await got.Body!.transformToString(), 'kept');
    assert.equal((await apiB.getBackend({ name: 'd3' })).backend!.configRef, `${file}: backends[0]`);
    // New writes go to d3, not the read-only d2.
    await clientB.send(new PutObjectCommand({ Bucket: 'data', Key: 'on-d3', Body: 'new' }));
    const { rows } = await a.db.query<{ backend: string }>(
      `SELECT c.backend FROM object_copies c JOIN object_versions v USING (version_id) WHERE v.key = 'on-d3' AND v.state = 'live'`,
    );
    assert.deepEqual(rows.map((r) => r.backend), ['d3']);

    // The same checks as an API removal: refused while it holds data, done once it is empty.
    const refused = await apiB.removeBackend({ name: 'd2' }).catch((e: unknown) => ConnectError.from(e));
    assert.equal((refused as ConnectError).code, Code.FailedPrecondition);
    await clientB.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'on-d2' }));
    await until('the d2 copy deleted', async () => {
      a.wakeWorkers();
      const r = await a.db.query<{ n: number }>(`SELECT used_bytes AS n FROM backends WHERE name = 'd2'`);
      return r.rows[0]!.n === 0 ? true : undefined;
    });
    await apiB.removeBackend({ name: 'd2' });

    // An invalid file: logged, nothing changes.
    const before = (await apiB.listBackends({ includeRemoved: true })).backends.map((x) => `${x.name}:${x.state}`);
    await writeFile(file, 'backends: []\nbogus_key: 1\n');
    b.child.kill('SIGHUP');
    await until('the refusal logged', async () => (/SIGHUP: the configuration file is not valid/.test(b.err()) ? true : undefined));
    assert.match(b.err(), /bogus_key/);
    assert.deepEqual((await apiB.listBackends({ includeRemoved: true })).backends.map((x) => `${x.name}:${x.state}`), before);
    // A declared backend that is misconfigured (credentials refused) refuses the whole file, as at start.
    await writeFile(
      file,
      yaml(db, [
        `{ name: d3, type: fs, path: "${dir}/d3" }`,
        `{ name: d4, type: fs, path: "${dir}/d4" }`,
        `{ name: bad, type: s3, endpoint: "${b.s3}", bucket: data, access_key_id: ${TEST_CREDS.accessKeyId}, secret_access_key: wrong-secret, force_path_style: true }`,
      ]),
    );
    b.child.kill('SIGHUP');
    await until('the failed check logged', async () => (/SIGHUP: applying the configuration failed/.test(b.err()) ? true : undefined));
    assert.match(b.err(), /backend bad: /);
    assert.deepEqual((await apiB.listBackends({ includeRemoved: true })).backends.map((x) => `${x.name}:${x.state}`), before, 'nothing applied, d4 included');
    // The file never takes over a backend the API owns.
    await apiB.addBackend({ name: 'apiown', settings: { case: 'fs', value: { path: path.join(dir, 'apiown') } } });
    await writeFile(file, yaml(db, [`{ name: d3, type: fs, path: "${dir}/d3" }`, `{ name: apiown, type: fs, path: "${dir}/other" }`]));
    b.child.kill('SIGHUP');
    await until('the conflict logged', async () => (/backends\[1\]\.name: backend \\"apiown\\" was added through the admin API/.test(b.err()) ? true : undefined));
    const own = (await apiB.getBackend({ name: 'apiown' })).backend!;
    assert.equal(own.source, 'api');
    assert.equal(own.fs!.path, path.join(dir, 'apiown'));
    await apiB.removeBackend({ name: 'apiown' });
    await clientB.send(new PutObjectCommand({ Bucket: 'data', Key: 'still-works', Body: 'x' }));
    for (const key of ['on-d3', 'still-works']) await clientB.send(new DeleteObjectCommand({ Bucket: 'data', Key: key }));
    await writeFile(file, yaml(db, [`{ name: d3, type: fs, path: "${dir}/d3" }`]));
    await until('cleanup done', async () => {
      a.wakeWorkers();
      const r = await a.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'delete-copy'`);
      return r.rows[0]!.n === 0 ? true : undefined;
    });
  });
});

describe('server.mode', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  test('api serves S3 and admin without workers; worker serves neither and does the queued work', async () => {
    const db = await freshDatabase('postgres');
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-mode-'));
    const raw = (mode: string) => ({
      server: { mode, s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } },
      database: { url: db.config.url, schema: db.config.schema },
      workers: { cleanup_delay: '0s', cleanup_interval: '100ms' },
      backends: [{ name: 'disk', type: 'fs', path: path.join(dir, 'disk') }],
      buckets: [{ name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }] }],
    });
    const api = await startOrchestrator(resolveConfig(raw('api'), 'mode-test'), { log: quiet() });
    let worker: Orchestrator | undefined;
    const s3 = clientFor(`http://127.0.0.1:${api.s3Port}`);
    try {
      assert.equal(api.mode, 'api');
      await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'k', Body: 'v1' }));
      await s3.send(new PutObjectCommand({ Bucket: 'data', Key: 'k', Body: 'v2' }));
      const queued = async () => (await api.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE kind = 'delete-copy'`)).rows[0]!.n;
      await sleep(1_000);
      api.wakeWorkers();
      assert.equal(await queued(), 1, 'an api instance runs no workers: the old copy waits');

      worker = await startOrchestrator(resolveConfig(raw('worker'), 'mode-test'), { log: quiet() });
      assert.equal(worker.mode, 'worker');
      assert.equal(worker.s3Port, 0, 'no S3 listener');
      const admin = `http://127.0.0.1:${worker.adminPort}`;
      assert.equal((await fetch(`${admin}/healthz`)).status, 200);
      const rpc = await createClient(AdminService, createConnectTransport({ baseUrl: admin, httpVersion: '1.1' }))
        .getStatus({})
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(rpc instanceof ConnectError && (rpc.code === Code.Unimplemented || rpc.code === Code.NotFound), String(rpc));
      await until('the worker ran the queued deletion', async () => ((await queued()) === 0 ? true : undefined));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: 'k' }));
      assert.equal(await got.Body!.transformToString(), 'v2');
      await s3.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'k' }));
      await until('cleanup', async () => ((await queued()) === 0 ? true : undefined));
      await assertLedger(api.db, 'mode ledger');
    } finally {
      s3.destroy();
      await worker?.stop();
      await api.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('serve --mode refuses an unknown mode; server.mode is checked', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--mode', 'everything'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(stderr, /--mode must be all, api or worker, got "everything"/);
    assert.throws(
      () => resolveConfig({ server: { mode: 'both' }, backends: [{ name: 'x', type: 'fs', path: '/tmp/x' }] }, 'f.yaml'),
      /f\.yaml: server\.mode: must be "all", "api" or "worker", got "both"/,
    );
    assert.throws(
      () => resolveConfig({ backends: [{ name: 'x', type: 'fs', path: '/tmp/x', weight: 1001 }] }, 'f.yaml'),
      /backends\[0\]\.weight: must be a whole number from 0 to 1000/,
    );
  });
});
