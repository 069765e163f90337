/**
 * A metadata-database outage as clients see it: an orchestrator on an embedded PostgreSQL that this test
 * owns (never the machine's server) answers S3 requests with 503 ServiceUnavailable (but GET and HEAD of
 * existing objects, answered from the backends) and admin RPCs with `unavailable` while the server is stopped, /readyz says not ready, and everything works again, without
 * a restart of the orchestrator, once the server is back.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AdminService } from '../../../gen/s3o/admin/v1/admin_pb.js';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { resolveConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { embeddedTestDir, startTestEmbedded, type TestEmbedded } from '../../harness/db.js';

const CREDS = { accessKeyId: 'AKIAOUTAGETEST000001', secretAccessKey: 'outage-secret-key-0123456789abcdef' };
const TOKEN = 'outage-admin-token';

let server: TestEmbedded;
let orch: Orchestrator;
let client: S3Client;
let dir: string;

before(async () => {
  server = await startTestEmbedded();
  dir = await embeddedTestDir();
  const config = resolveConfig(
    {
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: TOKEN } },
      database: { url: server.url, schema: 'outage', connect_timeout: '2s' },
      backends: [{ name: 'fs-1', type: 'fs', path: path.join(dir, 'fs-1') }],
      buckets: [{ name: 'data', credentials: [{ access_key_id: CREDS.accessKeyId, secret_access_key: CREDS.secretAccessKey }] }],
    },
    'outage-test',
  );
  orch = await startOrchestrator(config, { log: createLogger({ test: true }, (process.env.S3O_LOG_LEVEL as 'debug' | undefined) ?? 'error') });
  // One attempt: the SDK would otherwise retry each 503 with backoff.
  client = new S3Client({ endpoint: `http://127.0.0.1:${orch.s3Port}`, region: 'us-east-1', forcePathStyle: true, credentials: CREDS, maxAttempts: 1 });
});
after(async () => {
  client?.destroy();
  await orch?.stop();
  await server?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function s3Status(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
    return { status: 200, code: 'OK' };
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err;
    return { status: err.$metadata.httpStatusCode ?? 0, code: err.name };
  }
}

describe('metadata database outage', () => {
  test('S3 answers 503 ServiceUnavailable, admin `unavailable`, /readyz 503; all recover when the server is back', async () => {
    await client.send(new PutObjectCommand({ Bucket: 'data', Key: 'before', Body: 'written before the outage' }));
    const admin = createClient(AdminService, createConnectTransport({ baseUrl: `http://127.0.0.1:${orch.adminPort}`, httpVersion: '1.1' }));
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

    await server.stop();
    const unavailable = { status: 503, code: 'ServiceUnavailable' };
    assert.deepEqual(await s3Status(client.send(new PutObjectCommand({ Bucket: 'data', Key: 'during', Body: 'x' }))), unavailable);
    assert.deepEqual(await s3Status(client.send(new ListObjectsV2Command({ Bucket: 'data' }))), unavailable);
    // GET and HEAD of existing objects are answered from the backends (degraded reads, see
    // test/integration/meta/degraded-reads.test.ts); a key that was never written is still 404.
    const during = await client.send(new GetObjectCommand({ Bucket: 'data', Key: 'before' }));
    assert.equal(await during.Body!.transformToString(), 'written before the outage');
    assert.equal((await s3Status(client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'before' })))).status, 200);
    assert.equal((await s3Status(client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'never' })))).status, 404);
    await assert.rejects(admin.listBuckets({}, auth), (err: unknown) => err instanceof ConnectError && err.code === Code.Unavailable);
    const ready = await fetch(`http://127.0.0.1:${orch.adminPort}/readyz`);
    assert.equal(ready.status, 503);

    await server.restart();
    // The database breaker lets requests through again at its next probe (every half second).
    await orch.dbBreaker.until('closed', 10_000);
    await client.send(new PutObjectCommand({ Bucket: 'data', Key: 'after', Body: 'written after the outage' }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'data', Key: 'before' }));
    assert.equal(await got.Body!.transformToString(), 'written before the outage');
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'data' }));
    assert.deepEqual(listed.Contents?.map((o) => o.Key), ['after', 'before']);
    assert.ok((await admin.listBuckets({}, auth)).buckets.some((b) => b.name === 'data'));
    assert.equal((await fetch(`http://127.0.0.1:${orch.adminPort}/readyz`)).status, 200);
  });
});
