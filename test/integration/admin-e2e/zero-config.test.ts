/**
 * Zero-config start, in-process through zeroConfig(dir) and as a real `serve --data DIR` process (with
 * `--s3-listen`/`--admin-listen 127.0.0.1:0` so the test never depends on 9000/9001 being free).
 * Checked: demo credentials are printed and work with the SDK, a restart prints the same credentials
 * and keeps the objects, and a second process on the same data directory fails with a clear error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { zeroConfig } from '../../../src/config/defaults.js';
import type { Config } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 's3-orchestrator.js');

function sdk(endpoint: string, creds: { accessKeyId: string; secretAccessKey: string }): S3Client {
  // A copy: the SDK annotates the credentials object it is given.
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey } });
}

async function roundtrip(client: S3Client, key: string, body: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: 'demo', Key: key, Body: body }));
  const got = await client.send(new GetObjectCommand({ Bucket: 'demo', Key: key }));
  assert.equal(await got.Body!.transformToString(), body);
}

async function read(client: S3Client, key: string): Promise<string> {
  const got = await client.send(new GetObjectCommand({ Bucket: 'demo', Key: key }));
  return got.Body!.transformToString();
}

/** A running `serve` child and what it printed. */
interface Served {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function serve(dataDir: string): Served {
  const child = spawn(process.execPath, [BIN, 'serve', '--data', dataDir, '--s3-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
    cwd: ROOT,
    env: { ...process.env, S3O_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: Served = { child, stdout: '', stderr: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (s.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (s.stderr += d));
  return s;
}

/** Waits until the banner with the secret key is printed (or the process exits). */
async function banner(s: Served): Promise<{ endpoint: string; accessKeyId: string; secretAccessKey: string } | undefined> {
  const done = s.exited.then(() => 'exited' as const);
  for (;;) {
    const m = /S3 endpoint\s+(http:\/\/\S+)[\s\S]*access key\s+(\S+)\s*\n\s*secret key\s+(\S+)/.exec(s.stdout);
    if (m) return { endpoint: m[1]!, accessKeyId: m[2]!, secretAccessKey: m[3]! };
    const r = await Promise.race([done, new Promise((res) => setTimeout(res, 50))]);
    if (r === 'exited') return undefined;
  }
}

async function stopServed(s: Served): Promise<number | null> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  return s.exited;
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 's3o-zero-'));
  // As root the embedded PostgreSQL runs as the user "postgres", which must be able to enter the directory.
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('zero-config in-process (ports 0)', () => {
  let dataDir: string;
  let orch: Orchestrator | undefined;
  const config = (dir = dataDir): Config => {
    const z = zeroConfig(dir);
    return {
      ...z,
      server: {
        s3: { ...z.server.s3, host: '127.0.0.1', port: 0 },
        admin: { ...z.server.admin, host: '127.0.0.1', port: 0 },
      },
    };
  };
  const log = createLogger({ test: true }, 'error');
  before(async () => {
    dataDir = await tempDir();
  });
  after(async () => {
    await orch?.stop();
  });

  it('ZeroConfig_demo_credentials_survive_restart', async () => {
    orch = await startOrchestrator(config(), { log });
    const first = orch.demo!;
    assert.equal(first.bucket, 'demo');
    assert.equal(first.created, true);
    let client = sdk(`http://127.0.0.1:${orch.s3Port}`, first);
    await roundtrip(client, 'hello.txt', 'persisted');
    const buckets = await client.send(new ListBucketsCommand({}));
    assert.deepEqual(buckets.Buckets?.map((b) => b.Name), ['demo']);
    client.destroy();
    await orch.stop();

    orch = await startOrchestrator(config(), { log });
    const second = orch.demo!;
    assert.equal(second.created, false);
    assert.deepEqual(
      { accessKeyId: second.accessKeyId, secretAccessKey: second.secretAccessKey },
      { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey },
    );
    client = sdk(`http://127.0.0.1:${orch.s3Port}`, second);
    assert.equal(await read(client, 'hello.txt'), 'persisted');
    client.destroy();
  });

  it('ZeroConfig_second_process_on_same_dir_fails_clearly', async () => {
    // Its own data directory and first instance: the test does not rely on the previous one's.
    const dir = await tempDir();
    const first = await startOrchestrator(config(dir), { log });
    try {
      const other = serve(dir);
      const code = await other.exited;
      assert.equal(code, 1, `stdout: ${other.stdout}\nstderr: ${other.stderr}`);
      assert.match(other.stderr, /cannot start: .*in use by another s3-orchestrator process \(pid \d+\)/);
      assert.match(other.stderr, /give this instance its own --data DIR/, 'zero-config mode names the flag, not database.path');
      assert.doesNotMatch(other.stdout, /secret key/, 'no banner, no credentials printed');
    } finally {
      await first.stop();
    }
  });
});

describe('zero-config as a process (serve --data DIR)', () => {
  it('Serve_zero_config_prints_credentials_and_restarts', async () => {
    const dataDir = await tempDir();
    const a = serve(dataDir);
    let creds;
    try {
      creds = await banner(a);
      assert.ok(creds, `banner printed; stdout: ${a.stdout}\nstderr: ${a.stderr}`);
      assert.match(creds.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      // The banner says what is bound and, in zero-config mode, how to expose it.
      assert.match(a.stdout, /S3 endpoint +http:\/\/127\.0\.0\.1:(\d+) .*\n +this machine only; to expose it: serve --s3-listen 0\.0\.0\.0:\1\n/);
      assert.match(a.stdout, /bucket\s+demo \(created now\)/);
      const client = sdk(creds.endpoint, creds);
      await roundtrip(client, 'from-process.txt', 'kept across restarts');
      client.destroy();

      const b = serve(dataDir);
      assert.equal(await b.exited, 1, b.stderr);
      assert.match(b.stderr, /in use by another s3-orchestrator process/);
    } finally {
      assert.equal(await stopServed(a), 0, `clean shutdown on SIGTERM: ${a.stderr}`);
    }

    const again = serve(dataDir);
    try {
      const creds2 = await banner(again);
      assert.ok(creds2, again.stderr);
      assert.deepEqual(
        { accessKeyId: creds2.accessKeyId, secretAccessKey: creds2.secretAccessKey },
        { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
        'same credentials printed after restart',
      );
      assert.doesNotMatch(again.stdout, /created now/);
      const client = sdk(creds2.endpoint, creds2);
      assert.equal(await read(client, 'from-process.txt'), 'kept across restarts');
      client.destroy();
    } finally {
      assert.equal(await stopServed(again), 0);
    }
  });
});
