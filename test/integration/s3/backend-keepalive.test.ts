/**
 * GETs through the orchestrator reuse keep-alive connections to an S3 backend: a response stream that
 * delivered every byte is drained to its end, not destroyed (destroying it closed the backend socket,
 * one new TCP connection per GET). Counted from the kernel's table of TIME_WAIT sockets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

/** TIME_WAIT sockets (state 06) to or from `port`, from /proc/net/tcp. */
function timeWait(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[3] === '06' && (f[1]?.endsWith(`:${hex}`) || f[2]?.endsWith(`:${hex}`));
    }).length;
}

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 0 });
});
after(() => t?.stop());

test('GetObject_reuses_backend_connections', async () => {
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ka', Body: Buffer.alloc(200_000, 7) }));
  const port = t.servers[0]!.port;
  const before = timeWait(port);
  for (let i = 0; i < 30; i++) {
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'ka' }));
    assert.equal((await got.Body!.transformToByteArray()).length, 200_000);
  }
  assert.ok(timeWait(port) - before <= 2, `backend connections closed: ${timeWait(port) - before}`);
});
