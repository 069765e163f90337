/**
 * An fs backend whose directory disappears (an unmounted disk) must never be re-created and written to:
 * before the fix, writes were acknowledged into a fresh empty directory on the filesystem beneath, and half
 * of the acknowledged objects were unreadable after the remount. Real directories throughout: "unmounting"
 * renames the root away, "remounting" renames it back.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AdminService, HealthState } from '../../../gen/s3o/admin/v1/admin_pb.js';
import { BackendError } from '../../../src/backends/backend.js';
import { FsBackend, IDENTITY_FILE } from '../../../src/backends/fs.js';
import { bufferStream, readAll } from '../backends/helpers.js';
import { eventually, startFixture, type OperatorFixture } from './fixture.js';

const meta = { bucket: 'b', key: 'k', versionId: 'v' };
const put = (b: FsBackend, key: string, text: string) => b.put(key, bufferStream(Buffer.from(text)), text.length, meta);

async function kind(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof BackendError ? e.kind : `not a BackendError: ${String(e)}`),
  );
}

describe('FsBackend directory identity', () => {
  const dirs: string[] = [];
  const tmp = async () => {
    const d = await mkdtemp(path.join(os.tmpdir(), 's3o-fsid-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('first_use_creates_the_root_and_its_identity_file', async () => {
    const root = path.join(await tmp(), 'disk', 'store');
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await b.check();
    const id = JSON.parse(await readFile(path.join(root, IDENTITY_FILE), 'utf8')) as { backend: string; id: string };
    assert.equal(id.backend, 'disk');
    assert.equal(id.id, b.identity);
    await put(b, 'x/obj', 'hello');
    assert.deepEqual((await b.list('')).entries.map((e) => e.key), ['x/obj'], 'the identity file is not an object');
  });

  it('a_vanished_root_is_unavailable_for_every_call_and_never_recreated', async () => {
    const base = await tmp();
    const root = path.join(base, 'mnt');
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await b.check();
    await put(b, 'a/obj', 'acknowledged');
    await rename(root, `${root}.unmounted`);

    assert.equal(await kind(put(b, 'a/new', 'lost?')), 'Unavailable');
    assert.equal(await kind(b.get('a/obj')), 'Unavailable', 'a missing object on a missing disk is not NoSuchKey');
    assert.equal(await kind(b.head('a/obj')), 'Unavailable');
    assert.equal(await kind(b.delete('a/obj')), 'Unavailable', 'a delete must not "succeed" and release the quota');
    assert.equal(await kind(b.list('a/')), 'Unavailable');
    assert.equal(await kind(b.copy('a/obj', 'a/copy', meta)), 'Unavailable');
    assert.equal(await kind(b.createMultipart('a/mpu', meta)), 'Unavailable');
    assert.equal(await kind(b.check()), 'Unavailable');
    assert.equal(existsSync(root), false, 'the root was not re-created');

    await rename(`${root}.unmounted`, root);
    assert.equal((await readAll(await b.get('a/obj'))).toString(), 'acknowledged');
    await put(b, 'a/new', 'after the remount');
    await b.check();
  });

  it('an_empty_or_foreign_directory_in_its_place_is_refused', async () => {
    const root = path.join(await tmp(), 'mnt');
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await b.check();
    await rename(root, `${root}.away`);
    await mkdir(root); // the bare mount point
    assert.equal(await kind(put(b, 'k/obj', 'x')), 'Unavailable');
    assert.equal(await kind(b.check()), 'Unavailable');
    await writeFile(path.join(root, IDENTITY_FILE), JSON.stringify({ backend: 'disk', id: 'another-disk' }));
    const err = await b.check().catch((e: unknown) => e as Error);
    assert.match(String(err), /another directory is mounted/);
    assert.equal(existsSync(path.join(root, 'k')), false, 'nothing was written into the wrong directory');
  });

  it('a_restart_with_the_disk_missing_creates_nothing', async () => {
    const root = path.join(await tmp(), 'mnt');
    const first = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await first.check();
    const id = first.identity!;
    await rename(root, `${root}.away`);
    // What the database tells a restarted process: the identity recorded at first use.
    const restarted = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    restarted.expectIdentity({ id, hasData: true });
    assert.match(String(await restarted.check().catch((e: unknown) => e)), /is missing \(identity [0-9a-f]+ was recorded at first use\): is the disk mounted/);
    assert.equal(existsSync(root), false);
    // Without a recorded identity but with objects counted, an empty directory is not a first use either.
    const older = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    older.expectIdentity({ hasData: true });
    assert.equal(await kind(older.check()), 'Unavailable');
    assert.equal(existsSync(root), false);
  });

  it('a_directory_used_before_identity_files_is_adopted', async () => {
    const root = path.join(await tmp(), 'old');
    await mkdir(path.join(root, 'bucket'), { recursive: true });
    await writeFile(path.join(root, 'bucket', 'obj'), 'old data');
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    b.expectIdentity({ hasData: true });
    await b.check();
    assert.ok(b.identity);
    assert.equal((await readAll(await b.get('bucket/obj'))).toString(), 'old data');
  });
});

describe('orchestrator with an unmounted fs backend', () => {
  let f: OperatorFixture | undefined;
  after(async () => {
    await f?.close();
  });

  it('Writes_go_to_another_backend_and_health_reports_it_until_the_remount', async () => {
    f = await startFixture(
      (dir) => [
        { type: 'fs', name: 'fs-1', path: path.join(dir, 'fs-1'), quotaBytes: 0 },
        { type: 'fs', name: 'fs-2', path: path.join(dir, 'fs-2'), quotaBytes: 0 },
      ],
      { health: { retryProbeMs: 100, idleProbeMs: 60_000, probeTickMs: 50 } },
    );
    const t = f;
    const admin = () => createClient(AdminService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1' }));
    const backendOf = async (key: string) => (await t.orch.store.locate('data', key)).copies.map((c) => c.backend);
    const health = async (name: string) => (await admin().listBackends({})).backends.find((b) => b.name === name)!;
    const fs1 = path.join(t.dir, 'fs-1');

    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'before', Body: 'on fs-1' }));
    assert.deepEqual(await backendOf('before'), ['fs-1'], 'pack fills fs-1 first');

    await rename(fs1, `${fs1}.unmounted`);
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'during', Body: 'must land on fs-2' }));
    assert.deepEqual(await backendOf('during'), ['fs-2']);
    assert.equal(existsSync(fs1), false, 'fs-1 was not re-created');
    const get = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'before' })).catch((e: { name?: string; $metadata?: { httpStatusCode?: number } }) => e);
    assert.equal((get as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 503, 'the object is unavailable, not missing');

    await eventually('fs-1 reported unavailable', async () => (await health('fs-1')).healthState === HealthState.UNAVAILABLE);
    const sick = await health('fs-1');
    assert.equal(sick.healthy, false);
    assert.match(sick.lastError, /fs-1.*is the disk mounted\?/);
    assert.equal((await health('fs-2')).healthState, HealthState.HEALTHY);
    const readyz = await fetch(`${t.adminUrl}/readyz`);
    assert.equal(readyz.status, 200, 'one backend down does not make the instance unready');
    assert.match(await readyz.text(), /^backend fs-1 unavailable since .*is the disk mounted/m);

    // A restart while the disk is still missing: the identity recorded at first use keeps fs-1 out.
    await t.restart();
    assert.equal(existsSync(fs1), false, 'a restart does not create the directory either');
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'after-restart', Body: 'on fs-2 too' }));
    assert.deepEqual(await backendOf('after-restart'), ['fs-2']);

    await rename(`${fs1}.unmounted`, fs1);
    await eventually('fs-1 healthy again after the remount', async () => (await health('fs-1')).healthState === HealthState.HEALTHY);
    const back = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'before' }));
    assert.equal(await back.Body!.transformToString(), 'on fs-1');
  });
});
