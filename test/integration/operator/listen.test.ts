/**
 * Two `serve` processes on one port: the second must fail at once with a message saying which listener
 * and why, and create nothing (no data directory, no database). Before the fix the uWS listener shared the
 * port (SO_REUSEPORT): the second instance started beside the first and took half of its clients.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 's3-orchestrator.js');

interface Served {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function serve(args: string[]): Served {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    cwd: ROOT,
    env: { ...process.env, S3O_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: Served = { child, stdout: '', stderr: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (s.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (s.stderr += d));
  return s;
}

async function running(s: Served): Promise<boolean> {
  const exited = s.exited.then(() => false);
  for (;;) {
    if (/is running/.test(s.stdout)) return true;
    const r = await Promise.race([exited, new Promise((res) => setTimeout(() => res(undefined), 50))]);
    if (r === false) return false;
  }
}

/**
 * The exit code of an instance that must fail; one that starts instead (the bug: a shared port) is
 * stopped and reported, rather than waited for forever.
 */
async function failedStart(s: Served): Promise<number | null> {
  if (await running(s)) {
    s.child.kill('SIGTERM');
    await s.exited;
    assert.fail(`the instance started instead of failing:\n${s.stdout}`);
  }
  return s.exited;
}

/** A port nothing listens on right now (bound by number later, as a configuration would). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

describe('a port in use fails the start', () => {
  let tmp: string;
  let first: Served;
  let s3Port: number;
  let adminPort: number;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 's3o-listen-'));
    // The embedded PostgreSQL runs as another system user, which must be able to enter the directory.
    await chmod(tmp, 0o755);
    s3Port = await freePort();
    adminPort = await freePort();
    first = serve(['--data', path.join(tmp, 'first'), '--s3-listen', `127.0.0.1:${s3Port}`, '--admin-listen', `127.0.0.1:${adminPort}`]);
    assert.ok(await running(first), `first instance started: ${first.stderr}`);
  });
  after(async () => {
    if (first.child.exitCode === null) first.child.kill('SIGTERM');
    await first.exited;
    await rm(tmp, { recursive: true, force: true });
  });

  it('Serve_second_instance_on_the_S3_port_fails_before_creating_anything', async () => {
    const dir = path.join(tmp, 'second');
    const second = serve(['--data', dir, '--s3-listen', `127.0.0.1:${s3Port}`, '--admin-listen', '127.0.0.1:0']);
    const code = await failedStart(second);
    assert.equal(code, 1, `stdout: ${second.stdout}\nstderr: ${second.stderr}`);
    assert.match(
      second.stderr,
      new RegExp(`cannot start: cannot listen on 127\\.0\\.0\\.1:${s3Port} \\(server\\.s3\\.listen\\): port ${s3Port} is already in use by another process`),
    );
    assert.doesNotMatch(second.stdout, /is running|secret key/);
    assert.equal(existsSync(dir), false, 'no data directory, no database was created');
  });

  it('Serve_second_instance_on_the_admin_port_fails_before_creating_anything', async () => {
    const dir = path.join(tmp, 'third');
    const third = serve(['--data', dir, '--s3-listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${adminPort}`]);
    assert.equal(await failedStart(third), 1, third.stderr);
    assert.match(third.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${adminPort} \\(server\\.admin\\.listen\\): port ${adminPort} is already in use`));
    assert.equal(existsSync(dir), false);
  });

  it('Serve_on_an_address_of_another_machine_says_so', async () => {
    const dir = path.join(tmp, 'fourth');
    const fourth = serve(['--data', dir, '--s3-listen', '192.0.2.1:9000', '--admin-listen', '127.0.0.1:0']);
    assert.equal(await failedStart(fourth), 1, fourth.stderr);
    assert.match(fourth.stderr, /cannot listen on 192\.0\.2\.1:9000 \(server\.s3\.listen\): the address is not one of this machine's addresses/);
    assert.equal(existsSync(dir), false);
  });

  it('the_first_instance_still_serves_alone', async () => {
    // Only one process may hold the port: the kernel would show a second listener otherwise.
    assert.equal(first.child.exitCode, null);
    const res = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
    assert.equal(res.status, 200);
  });
});
