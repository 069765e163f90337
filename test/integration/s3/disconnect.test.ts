/**
 * Clients that go away: an upload cut off halfway (raw socket: headers and half the body, then destroy)
 * leaves no live object, no pending row, no reservation and — after the cleanup queue ran — no partial
 * bytes on the backend; a download cut off halfway leaves the server serving the object normally.
 * Run once with an fs backend and once with an s3rver backend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readdir, stat } from 'node:fs/promises';
import nodePath from 'node:path';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import {
  assertNoStrayBytes,
  backendCounters,
  bytesOf,
  eventually,
  expectS3Error,
  patternBytes,
  pendingWrites,
  sha256,
  signRequest,
} from './helpers.js';

const SIZE = 8 * 1024 * 1024;

/** Bytes in the fs backends' temp directories (writes in flight). */
async function tempBytes(t: TestOrchestrator): Promise<number> {
  let n = 0;
  for (const b of t.config.backends) {
    if (b.type !== 'fs') continue;
    const dir = nodePath.join(b.path, '.tmp');
    for (const f of await readdir(dir).catch(() => [] as string[])) n += (await stat(nodePath.join(dir, f)).catch(() => ({ size: 0 }))).size;
  }
  return n;
}

/** Opens a socket and writes `head` and `body`; resolves once written, with a way to vanish (reset). */
function sendPart(endpoint: string, head: string, body: Buffer): Promise<{ vanish(): void }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(url.port), url.hostname, () => {
      s.write(head);
      s.write(body, () => resolve({ vanish: () => s.destroy() }));
    });
    s.on('error', reject);
  });
}

/** Reads the head and some body bytes of a GET, then destroys the socket. */
function readSomeAndVanish(endpoint: string, head: string, atLeast: number): Promise<number> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    let got = 0;
    const s = net.connect(Number(url.port), url.hostname, () => s.write(head));
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= atLeast) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

for (const kind of ['fs', 's3rver'] as const) {
  describe(`disconnects (${kind} backend)`, () => {
    let t: TestOrchestrator;
    const data = patternBytes(SIZE, 41);
    before(async () => {
      t = await startTestOrchestrator(kind === 'fs' ? { s3rvers: 0, fsBackends: 1 } : { s3rvers: 1, fsBackends: 0 });
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'big', Body: data }));
    });
    after(() => t?.stop());

    /**
     * Sends the head and half the body of a PUT, waits until the server has staged the write (pending row)
     * and — on fs — until partial bytes sit in the backend's temp file, then resets the connection.
     */
    async function uploadHalf(key: string) {
      const path = `/data/${key}`;
      const headers = await signRequest(t.endpoint, {
        method: 'PUT',
        path,
        payloadHash: 'UNSIGNED-PAYLOAD',
        headers: { 'content-length': String(SIZE) },
      });
      const head = `PUT ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      const conn = await sendPart(t.endpoint, head, data.subarray(0, SIZE / 2));
      try {
        await eventually('the server staged the write', async () => (await pendingWrites(t)) === 1);
        if (kind === 'fs') {
          await eventually('partial bytes reached the fs backend', async () => (await tempBytes(t)) > 0);
        }
      } finally {
        conn.vanish();
      }
    }

    /** Everything settled: no pending write, no cleanup job (due or backing off), no reservation. */
    async function settled(before: Awaited<ReturnType<typeof backendCounters>>) {
      await eventually('the aborted write is cleaned up and its quota released', async () => {
        t.orch.wakeWorkers();
        const { rows } = await t.orch.db.query<{ n: number }>("SELECT count(*)::int AS n FROM tasks WHERE kind = 'delete-copy'");
        const c = await backendCounters(t);
        return (await pendingWrites(t)) === 0 && Number(rows[0]!.n) === 0 && JSON.stringify(c) === JSON.stringify(before);
      });
    }

    it(`PutObject_client_disconnect_mid_upload_${kind}`, async () => {
      const before = await backendCounters(t);
      await uploadHalf('cut');
      await settled(before);
      await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cut' })), 'NotFound', 404);
      assert.equal(await drainCleanup(t), 0, 'cleanup queue drained');
      await assertNoStrayBytes(t);
    });

    it(`PutObject_client_disconnect_mid_overwrite_keeps_old_${kind}`, async () => {
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'keep', Body: 'old content' }));
      const before = await backendCounters(t);
      await uploadHalf('keep');
      await settled(before);
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'keep' }));
      assert.equal((await bytesOf(got.Body)).toString(), 'old content');
      await assertNoStrayBytes(t);
    });

    it(`GetObject_client_disconnect_mid_download_${kind}`, async () => {
      const headers = await signRequest(t.endpoint, { method: 'GET', path: '/data/big' });
      const head = `GET /data/big HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      for (let i = 0; i < 3; i++) {
        const got = await readSomeAndVanish(t.endpoint, head, 256 * 1024);
        assert.ok(got >= 256 * 1024 && got < SIZE, `read part of the object (${got} bytes)`);
      }
      await eventually('aborted downloads are counted', async () => {
        const m = await t.orch.metrics.registry.getSingleMetricAsString('s3o_s3_requests_total');
        return /s3o_s3_requests_total\{op="GetObject",status="aborted"\} [3-9]/.test(m);
      });
      // The server (and the backend connection pool) still serve full reads afterwards.
      for (let i = 0; i < 3; i++) {
        const full = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'big' }));
        assert.equal(sha256(await bytesOf(full.Body)), sha256(data));
      }
    });
  });
}
