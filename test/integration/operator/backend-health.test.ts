/**
 * Live backend health over a real outage: an s3rver backend is stopped, then started again on the same
 * port with the same data. Health must follow (measured from the failing calls and the probe), the admin
 * API and /readyz must say so truthfully, and it must come back by itself. Before the fix health was
 * measured once at start and a dead backend was reported healthy forever.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AdminService, HealthState } from '../../../gen/s3o/admin/v1/admin_pb.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';
import { eventually, startFixture, type OperatorFixture } from './fixture.js';

describe('backend health over a real outage', () => {
  let f: OperatorFixture | undefined;
  let server: S3rverInstance | undefined;
  let dir: string | undefined;
  after(async () => {
    await f?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('Health_follows_an_s3_backend_down_and_back_in_the_admin_API_and_readyz', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-outage-'));
    server = await startS3rver({ directory: dir });
    const s = server;
    f = await startFixture(() => [s3BackendConfig(s, 's3-1')], { health: { retryProbeMs: 100, idleProbeMs: 60_000, probeTickMs: 50 } });
    const t = f;
    const admin = createClient(AdminService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1' }));
    const backend = async () => (await admin.listBackends({})).backends[0]!;
    const readyz = async () => {
      const r = await fetch(`${t.adminUrl}/readyz`);
      return { status: r.status, text: await r.text() };
    };

    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'kept', Body: 'survives the outage' }));
    const up = await backend();
    assert.equal(up.healthState, HealthState.HEALTHY);
    assert.equal(up.healthy, true);
    assert.ok(up.lastOkAt, 'the last success is reported');
    assert.deepEqual(await readyz(), { status: 200, text: 'ready\n' });

    await s.stop();
    // Real traffic meets the outage first: the read fails, and health follows.
    const failed = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'kept' })).then(
      () => 200,
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode,
    );
    assert.equal(failed, 503);
    await eventually('s3-1 reported unavailable', async () => (await backend()).healthState === HealthState.UNAVAILABLE);
    const down = await backend();
    assert.equal(down.healthy, false);
    assert.match(down.lastError, /s3-1/);
    assert.ok(down.lastErrorAt && down.healthSince, 'when it failed and since when it is unavailable');
    const status = await admin.getStatus({});
    assert.equal(status.healthyBackendCount, 0);
    const notReady = await readyz();
    assert.equal(notReady.status, 503);
    assert.match(notReady.text, /^not ready: no backend is available\nbackend s3-1 unavailable since \S+: /);

    server = await startS3rver({ port: s.port, directory: dir });
    await eventually('s3-1 healthy again once it answers', async () => (await backend()).healthState === HealthState.HEALTHY);
    assert.deepEqual(await readyz(), { status: 200, text: 'ready\n' });
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'kept' }));
    assert.equal(await got.Body!.transformToString(), 'survives the outage');
  });
});
