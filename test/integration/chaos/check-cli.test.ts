/**
 * `s3-orchestrator check` as an operator runs it, against a running orchestrator: a clean deployment
 * passes (exit 0, its history replays clean); the same deployment behind a proxy that serves GETs from a
 * cache (a stale-read bug, as a misconfigured CDN or a caching layer would cause) fails with stale reads
 * and their sub-histories (exit 1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';

const BIN = fileURLToPath(new URL('../../../bin/s3-orchestrator.js', import.meta.url));

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A proxy that answers every object GET it has answered before from its cache: reads go stale. */
async function staleCache(target: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const port = Number(new URL(target).port);
  const cache = new Map<string, { status: number; headers: http.IncomingHttpHeaders; body: Buffer }>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const isGet = req.method === 'GET' && /[?&]x-id=GetObject/.test(url);
    const key = url.split('?')[0]!;
    const hit = isGet ? cache.get(key) : undefined;
    if (hit) {
      req.resume();
      res.writeHead(hit.status, hit.headers);
      res.end(hit.body);
      return;
    }
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: url, headers: req.headers }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers = { ...ur.headers };
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.length);
        if (isGet && ur.statusCode === 200) cache.set(key, { status: 200, headers, body });
        res.writeHead(ur.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

describe('s3-orchestrator check', () => {
  let t: TestOrchestrator;
  let dir: string;
  before(async () => {
    t = await startTestOrchestrator({ strategy: 'spread' });
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-check-'));
  });
  after(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const creds = ['--access-key', TEST_CREDS.accessKeyId, '--secret-key', TEST_CREDS.secretAccessKey];

  it('passes against a healthy deployment, leaves nothing behind, and its history replays clean', async () => {
    const history = path.join(dir, 'h.jsonl');
    const r = await runCli(['check', '--endpoint', t.endpoint, '--bucket', 'data', ...creds, '--time', '6s', '--clients', '6', '--no-large', '--history', history]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /anomalies: none/);
    const put = /put (\d+)\/0\/0/.exec(r.stdout);
    assert.ok(put && Number(put[1]) >= 3, `PUTs were acknowledged: ${r.stdout}`);
    assert.match(r.stdout, /get \d+\/0\/0/);
    const ops = (await readFile(history, 'utf8')).trim().split('\n');
    assert.ok(ops.length > 50, `${ops.length} operations recorded`);
    const replay = await runCli(['check', '--replay', history]);
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    const left = await t.client.send(new ListObjectsV2Command({ Bucket: 'data' }));
    assert.equal(left.KeyCount ?? 0, 0, 'the run removed its objects');
  });

  it('finds stale reads behind a caching proxy and prints the operations that show them', async () => {
    const proxy = await staleCache(t.endpoint);
    try {
      const r = await runCli(['check', '--endpoint', proxy.endpoint, '--bucket', 'data', ...creds, '--time', '5s', '--clients', '4', '--keys', '3', '--no-large', '--no-multipart']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /anomalies: \d+ \(.*stale-read \d+/);
      assert.match(r.stdout, /- stale-read on s3chk-[^ ]+\/[kc]\d: #\d+ \(began [\d.]+\) returned c\d+\.\d+/);
      assert.match(r.stdout, /#\d+ c\d+ put \S+ \[[\d.]+, [\d.]+\] ok w=c\d+\.\d+/);
    } finally {
      await proxy.close();
    }
  });

  it('refuses bad arguments with its usage', async () => {
    const r = await runCli(['check', '--bucket', 'data']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--endpoint and --bucket are required/);
    const h = await runCli(['check', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /usage: s3-orchestrator check/);
  });
});
