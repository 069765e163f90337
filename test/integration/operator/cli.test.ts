/**
 * The command line as an operator meets it: --version and --help on every command, start-up progress, a
 * banner that prints the addresses actually bound, zero-config on loopback, and no AWS SDK Node-version
 * warning at every start (the SDK versions are pinned; see src/cli/main.ts).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zeroConfig } from '../../../src/config/defaults.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 's3-orchestrator.js');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('command line', () => {
  it('Version_and_help_on_every_command', async () => {
    for (const args of [['--version'], ['serve', '--version'], ['config', 'validate', 'x.yaml', '--version'], ['admin', 'status', '--version']]) {
      const r = await run(args);
      assert.deepEqual([r.code, r.stdout], [0, `s3-orchestrator ${VERSION}\n`], args.join(' '));
    }
    const serve = await run(['serve', '--help']);
    assert.equal(serve.code, 0);
    assert.match(serve.stdout, /^usage: s3-orchestrator serve /);
    assert.match(serve.stdout, /--s3-listen 0\.0\.0\.0:9000 exposes it/);
    const config = await run(['config', '--help']);
    assert.deepEqual([config.code, /^usage: s3-orchestrator config validate FILE/.test(config.stdout)], [0, true]);
    const admin = await run(['admin', 'locate', '--help']);
    assert.deepEqual([admin.code, /^usage: s3-orchestrator admin/.test(admin.stdout)], [0, true]);
  });

  it('ZeroConfig_listens_on_loopback_by_default', () => {
    const z = zeroConfig('/tmp/x');
    assert.equal(z.server.s3.host, '127.0.0.1');
    assert.equal(z.server.admin.host, '127.0.0.1');
  });
});

describe('serve with a configuration file', () => {
  let dir: string | undefined;
  let db: TestDatabase | undefined;
  let s3: S3rverInstance | undefined;
  after(async () => {
    await s3?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('Serve_prints_progress_and_the_addresses_actually_bound_and_no_SDK_warning', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-cli-'));
    await chmod(dir, 0o755);
    db = await freshDatabase();
    s3 = await startS3rver();
    const file = path.join(dir, 'orchestrator.yaml');
    await writeFile(
      file,
      [
        'server:',
        '  s3: { listen: "0.0.0.0:0" }',
        '  admin: { listen: "127.0.0.1:0" }',
        `database: { url: "${db.config.url}", schema: ${db.config.schema} }`,
        'backends:',
        `  - { name: remote, type: s3, endpoint: "${s3.endpoint}", bucket: ${s3.bucket}, access_key_id: S3RVER, secret_access_key: S3RVER, force_path_style: true }`,
        'buckets:',
        '  - { name: data, credentials: [{ access_key_id: AKIACLITEST000000001, secret_access_key: cli-test-secret-0123456789 }] }',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, S3O_LOG_LEVEL: 'warn' };
    delete env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];
    const child = spawn(process.execPath, [BIN, 'serve', '--config', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      for (const until = Date.now() + 60_000; !/admin API/.test(stdout) && child.exitCode === null && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(stdout, /S3 endpoint +http:\/\/0\.0\.0\.0:(\d+) +\(region us-east-1\)\n +every interface of this machine \(from here: http:\/\/127\.0\.0\.1:\1\)/, stdout + stderr);
      assert.match(stdout, /admin API +http:\/\/127\.0\.0\.1:\d+ /);
      assert.match(stderr, /^starting: checking the listeners \(S3 0\.0\.0\.0:0, admin 127\.0\.0\.1:0\)\.\.\.$/m);
      assert.match(stderr, /^starting: connecting to PostgreSQL and migrating the schema\.\.\.$/m);
      assert.match(stderr, /^starting: checking 1 backend \(remote\)\.\.\.$/m);
      // The S3 backend created its SDK client and called the provider: the warning would be out by now.
      const port = /S3 endpoint +http:\/\/0\.0\.0\.0:(\d+)/.exec(stdout)![1];
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 403, 'the S3 listener answers on loopback');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.doesNotMatch(stderr, /NodeVersionSupportWarning|require node >=22/);
    assert.match(stderr, /^s3-orchestrator: SIGTERM: stopping .*\n(.*\n)*s3-orchestrator: stopped\n$/m);
  });
});
