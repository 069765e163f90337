/**
 * BackendService end to end on a running orchestrator, through the generated Connect client, @grpc/grpc-js
 * and the CLI: every RPC's success and its bad-input paths (the provider's error when the probe is
 * refused, config-owned entries refused naming the file and key, removal refused while data remains),
 * and a backend added at runtime taking writes at once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BackendState, BackendType } from '../../../gen/s3o/admin/v1/admin_pb.js';
import {
  AddBackendRequestSchema,
  AddBackendResponseSchema,
  BackendService,
  BackendServiceListBackendsRequestSchema,
  BackendServiceListBackendsResponseSchema,
  ConfigOwnedSchema,
  FieldViolationSchema,
  ProbeFailureSchema,
  UpdateBackendRequestSchema,
  UpdateBackendResponseSchema,
} from '../../../gen/s3o/admin/v1/backends_pb.js';
import { JobService } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import { drainCleanup, startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';
import { S3RVER_CREDENTIALS, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const TOKEN = 'admin-test-token';

async function code(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail('the call succeeded');
}

function sink() {
  let text = '';
  return { write: (c: string) => (text += c), get text() { return text; } };
}

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('BackendService', () => {
  let auth: Interceptor;
  let t: TestOrchestrator;
  let extra: S3rverInstance;
  let dir: string;
  let client: Client<typeof BackendService>;

  before(async () => {
    // Both config backends are (almost) full: writes need a backend added through the API.
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, quotas: { 's3-1': 1, 'fs-1': 1 } });
    extra = await startS3rver({ buckets: ['extra'] });
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-api-backend-'));
    auth = (next) => (req) => {
      req.header.set('authorization', `Bearer ${TOKEN}`);
      return next(req);
    };
    client = createClient(BackendService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
  });

  after(async () => {
    await t.stop();
    await extra.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('ListBackends and GetBackend describe the config-owned backends with their file and key', async () => {
    const { backends } = await client.listBackends({});
    assert.deepEqual(backends.map((b) => b.name), ['s3-1', 'fs-1']);
    const fs1 = backends[1]!;
    assert.equal(fs1.type, BackendType.FS);
    assert.equal(fs1.source, 'config');
    assert.equal(fs1.configRef, 'test-harness: backends[1]');
    assert.equal(fs1.state, BackendState.ACTIVE);
    assert.equal(fs1.loaded, true);
    assert.equal(fs1.quotaBytes, 1n);
    assert.equal(fs1.weight, 1);
    const { backend } = await client.getBackend({ name: 's3-1' });
    assert.equal(backend!.s3!.bucket, 'test');
    assert.equal(backend!.s3!.secretAccessKey, '', 'a secret is never returned');
    assert.equal((await code(client.getBackend({ name: 'nope' }))).code, Code.NotFound);
    assert.equal((await code(client.getBackend({ name: '' }))).code, Code.InvalidArgument);
  });

  test('AddBackend refuses bad fields, naming them', async () => {
    const cases: [Parameters<typeof client.addBackend>[0], string][] = [
      [{ name: 'Bad Name', settings: { case: 'fs', value: { path: dir } } }, 'name'],
      [{ name: 'x1', settings: { case: 'fs', value: { path: 'relative/dir' } } }, 'fs.path'],
      [{ name: 'x1' }, 'settings'],
      [{ name: 'x1', settings: { case: 's3', value: { bucket: '', accessKeyId: 'k', secretAccessKey: 's' } } }, 's3.bucket'],
      [{ name: 'x1', settings: { case: 's3', value: { endpoint: 'ftp://x', bucket: 'b', accessKeyId: 'k', secretAccessKey: 's' } } }, 's3.endpoint'],
      [{ name: 'x1', settings: { case: 's3', value: { bucket: 'b', accessKeyId: 'k', secretAccessKey: '' } } }, 's3.secret_access_key'],
      [{ name: 'x1', settings: { case: 'fs', value: { path: dir } }, weight: 1001 }, 'weight'],
      [{ name: 'x1', settings: { case: 'fs', value: { path: dir } }, zone: 'bad zone' }, 'zone'],
    ];
    for (const [req, field] of cases) {
      const e = await code(client.addBackend(req));
      assert.equal(e.code, Code.InvalidArgument, `${field}: ${e.message}`);
      assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, field, e.message);
    }
    assert.equal((await code(client.addBackend({ name: 'fs-1', settings: { case: 'fs', value: { path: path.join(dir, 'z') } } }))).code, Code.AlreadyExists);
    const overlap = await code(client.addBackend({ name: 'x2', settings: { case: 'fs', value: { path: path.join(t.dataDir, 'fs-1', 'inner') } } }));
    assert.equal(overlap.code, Code.FailedPrecondition);
    assert.match(overlap.rawMessage, /overlaps backend fs-1/);
  });

  test('AddBackend refuses a provider that fails the probe, with the provider error', async () => {
    // Wrong credentials at a provider that checks them: the orchestrator's own S3 endpoint.
    const wrongKey = await code(
      client.addBackend({
        name: 'wrong-key',
        settings: { case: 's3', value: { endpoint: t.endpoint, bucket: 'data', accessKeyId: TEST_CREDS.accessKeyId, secretAccessKey: 'not-the-secret', forcePathStyle: true } },
      }),
    );
    assert.equal(wrongKey.code, Code.FailedPrecondition);
    const probe = wrongKey.findDetails(ProbeFailureSchema)[0];
    assert.ok(probe, 'ProbeFailure detail');
    assert.equal(probe.kind, 'AccessDenied', probe.providerError);
    assert.match(probe.providerError, /signature|denied|forbidden|403/i);
    // Nothing listens there.
    const dead = await code(
      client.addBackend({ name: 'dead', settings: { case: 's3', value: { endpoint: 'http://127.0.0.1:1', bucket: 'b', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true } } }),
    );
    assert.equal(dead.code, Code.FailedPrecondition);
    assert.equal(dead.findDetails(ProbeFailureSchema)[0]?.kind, 'Unavailable');
    // The bucket does not exist at the provider.
    const nobucket = await code(
      client.addBackend({
        name: 'nobucket',
        settings: { case: 's3', value: { endpoint: extra.endpoint, bucket: 'missing', ...S3RVER_CREDENTIALS, forcePathStyle: true } },
      }),
    );
    assert.equal(nobucket.code, Code.FailedPrecondition);
    assert.equal(nobucket.findDetails(ProbeFailureSchema)[0]?.step, 'check');
    const names = (await client.listBackends({ includeRemoved: true })).backends.map((b) => b.name);
    assert.deepEqual(names, ['s3-1', 'fs-1'], 'a refused backend is not stored');
  });

  test('AddBackend stores a working backend; writes use it at once; Update and Remove', async () => {
    const put = (key: string) => t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: Buffer.alloc(2000, 7) }));
    await assert.rejects(put('before'), (e: { name?: string }) => e.name === 'InsufficientStorage' || /storage/i.test(String(e)));

    const added = await client.addBackend({
      name: 'api-s3',
      settings: { case: 's3', value: { endpoint: extra.endpoint, bucket: 'extra', prefix: 'p', ...S3RVER_CREDENTIALS, forcePathStyle: true } },
      zone: 'z-extra',
      readPriority: -1,
    });
    const b = added.backend!;
    assert.equal(b.source, 'api');
    assert.equal(b.configRef, '');
    assert.equal(b.s3!.prefix, 'p/');
    assert.equal(b.zone, 'z-extra');
    assert.equal(b.readPriority, -1);
    assert.equal(b.weight, 1);
    assert.equal(b.loaded, true);
    assert.equal(b.s3!.secretAccessKey, '');
    // The secret is stored sealed, never in plain text.
    const { rows } = await t.orch.db.query<{ secret: string }>(`SELECT secret FROM backends WHERE name = 'api-s3'`);
    assert.match(rows[0]!.secret, /^v1:/);
    assert.ok(!rows[0]!.secret.includes(S3RVER_CREDENTIALS.secretAccessKey));

    await put('after');
    const got = await client.getBackend({ name: 'api-s3' });
    assert.equal(got.backend!.objectCount, 1n);
    assert.equal(got.backend!.usedBytes, 2000n);

    const upd = await client.updateBackend({ name: 'api-s3', quotaBytes: 10_000n, weight: 3, zone: '', readPriority: 2 });
    assert.equal(upd.backend!.quotaBytes, 10_000n);
    assert.equal(upd.backend!.weight, 3);
    assert.equal(upd.backend!.zone, '');
    assert.equal(upd.backend!.readPriority, 2);
    assert.equal((await code(client.updateBackend({ name: 'api-s3' }))).code, Code.InvalidArgument);
    assert.equal((await code(client.updateBackend({ name: 'api-s3', weight: 5000 }))).code, Code.InvalidArgument);
    assert.equal((await code(client.updateBackend({ name: 'ghost', weight: 1 }))).code, Code.NotFound);
    // Weight 0: no new copies.
    await client.updateBackend({ name: 'api-s3', weight: 0 });
    await assert.rejects(put('weight-zero'));
    await client.updateBackend({ name: 'api-s3', weight: 1 });

    // A drain in progress shows in the description (its job is JobService's).
    const jobs = createClient(JobService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
    const { job } = await jobs.drainBackend({ backend: 'api-s3' });
    const draining = (await client.getBackend({ name: 'api-s3' })).backend!;
    assert.equal(draining.state, BackendState.DRAINING);
    assert.equal(draining.drainJobId, job!.id);
    assert.ok(['running', 'paused', 'cancelling'].includes(draining.drainJobState), draining.drainJobState);
    await jobs.cancelDrain({ backend: 'api-s3' });
    await until(async () => (await client.getBackend({ name: 'api-s3' })).backend!.drainJobId === 0n);
    assert.equal((await client.getBackend({ name: 'api-s3' })).backend!.state, BackendState.ACTIVE);

    const held = await code(client.removeBackend({ name: 'api-s3' }));
    assert.equal(held.code, Code.FailedPrecondition);
    assert.match(held.rawMessage, /still holds data: 1 copies, 2000 bytes used/);
    assert.match(held.rawMessage, /drain/);

    await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'after' }));
    assert.equal(await drainCleanup(t), 0);
    await client.removeBackend({ name: 'api-s3' });
    assert.equal((await code(client.removeBackend({ name: 'api-s3' }))).code, Code.NotFound);
    const gone = await client.getBackend({ name: 'api-s3' });
    assert.equal(gone.backend!.state, BackendState.REMOVED);
    assert.equal(gone.backend!.loaded, false);
    assert.equal(t.orch.backends.get('api-s3'), undefined, 'dropped from the registry');
    assert.deepEqual((await client.listBackends({})).backends.map((x) => x.name), ['s3-1', 'fs-1']);
    assert.deepEqual((await client.listBackends({ includeRemoved: true })).backends.map((x) => x.name), ['s3-1', 'fs-1', 'api-s3']);
    // The name can be used again (an fs backend this time).
    const again = await client.addBackend({ name: 'api-s3', settings: { case: 'fs', value: { path: path.join(dir, 'again') } } });
    assert.equal(again.backend!.state, BackendState.ACTIVE);
    assert.ok((await readdir(path.join(dir, 'again'))).length > 0, 'the fs root was created (identity)');
    // The identity the probe established is recorded with the row (not the removed backend's).
    const idFile = JSON.parse(await readFile(path.join(dir, 'again', '.s3o-backend.json'), 'utf8')) as { id: string };
    const recorded = await t.orch.db.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'fs_backend_identity.api-s3'`);
    assert.equal(recorded.rows[0]?.value, idFile.id);
    await client.removeBackend({ name: 'api-s3' });
  });

  test('config-owned backends are refused, naming the file and key path', async () => {
    const e = await code(client.updateBackend({ name: 'fs-1', quotaBytes: 5n }));
    assert.equal(e.code, Code.FailedPrecondition);
    const d = e.findDetails(ConfigOwnedSchema)[0];
    assert.deepEqual({ file: d?.file, keyPath: d?.keyPath }, { file: 'test-harness', keyPath: 'backends[1].quota_bytes' });
    assert.match(e.rawMessage, /test-harness: backends\[1\]\.quota_bytes/);
    const w = await code(client.updateBackend({ name: 's3-1', weight: 2 }));
    assert.equal(w.findDetails(ConfigOwnedSchema)[0]?.keyPath, 'backends[0].weight');
    const r = await code(client.removeBackend({ name: 's3-1' }));
    assert.equal(r.code, Code.FailedPrecondition);
    assert.equal(r.findDetails(ConfigOwnedSchema)[0]?.keyPath, 'backends[0]');
  });

  test('through @grpc/grpc-js: list, add refused with details, update refused as config-owned', async () => {
    const m = <I extends DescMessage, O extends DescMessage>(name: string, i: I, o: O) => ({
      path: `/s3o.admin.v1.BackendService/${name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (x: MessageShape<I>) => Buffer.from(toBinary(i, x)),
      requestDeserialize: (b: Buffer) => fromBinary(i, b),
      responseSerialize: (x: MessageShape<O>) => Buffer.from(toBinary(o, x)),
      responseDeserialize: (b: Buffer) => fromBinary(o, b),
    });
    const Ctor = grpc.makeGenericClientConstructor(
      {
        ListBackends: m('ListBackends', BackendServiceListBackendsRequestSchema, BackendServiceListBackendsResponseSchema),
        AddBackend: m('AddBackend', AddBackendRequestSchema, AddBackendResponseSchema),
        UpdateBackend: m('UpdateBackend', UpdateBackendRequestSchema, UpdateBackendResponseSchema),
      },
      'BackendService',
    );
    const c = new Ctor(t.adminUrl.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Record<
      string,
      (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void
    >;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = (name: string, req: unknown) =>
      new Promise<{ err: grpc.ServiceError | null; res: unknown }>((resolve) => c[name]!.call(c, req, md, (err, res) => resolve({ err, res })));
    try {
      const list = await call('ListBackends', create(BackendServiceListBackendsRequestSchema, {}));
      assert.equal(list.err, null);
      assert.deepEqual((list.res as { backends: { name: string }[] }).backends.map((b) => b.name), ['s3-1', 'fs-1']);
      const bad = await call('AddBackend', create(AddBackendRequestSchema, { name: 'g1', settings: { case: 'fs', value: { path: 'rel' } } }));
      assert.equal(bad.err?.code, grpc.status.INVALID_ARGUMENT);
      const details = bad.err!.metadata.get('grpc-status-details-bin')[0] as Buffer;
      assert.ok(details.toString('latin1').includes('s3o.admin.v1.FieldViolation'), 'FieldViolation detail on the gRPC status');
      const owned = await call('UpdateBackend', create(UpdateBackendRequestSchema, { name: 'fs-1', zone: 'z' }));
      assert.equal(owned.err?.code, grpc.status.FAILED_PRECONDITION);
      // grpc-js leaves the percent-encoding of grpc-message as sent.
      assert.match(decodeURIComponent(owned.err!.details), /test-harness: backends\[1\]\.zone/);
      const ok = await call('UpdateBackend', create(UpdateBackendRequestSchema, { name: 'missing', zone: 'z' }));
      assert.equal(ok.err?.code, grpc.status.NOT_FOUND);
    } finally {
      (c as unknown as grpc.Client).close();
    }
  });

  test('examples/add-backend.ts adds, updates, lists and removes a backend with the generated client', async () => {
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/add-backend.ts', '--server', t.adminUrl, '--token', TOKEN, ...args], {
        cwd: path.resolve(import.meta.dirname, '../../..'),
      });
    const { stdout } = await run('--remove', 'example', path.join(dir, 'example'));
    assert.match(stdout, /^added example \(api\), loaded on this instance: true\nweight 2, zone example-zone\n/);
    assert.match(stdout, /  example  api  used 0\/1073741824\n/);
    assert.match(stdout, /removed example\n$/);
    const refused = await run('relative', 'not/absolute').then(
      () => assert.fail('accepted'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /fs\.path: /);
  });

  test('the CLI: list, get, add, update, remove with exit codes', async () => {
    const run = async (...args: string[]) => {
      const out = sink();
      const err = sink();
      const rc = await runAdmin([...args, '--server', t.adminUrl, '--token', TOKEN], out, err, {});
      return { rc, out: out.text, err: err.text };
    };
    const list = await run('backends', 'list');
    assert.equal(list.rc, 0, list.err);
    assert.match(list.out, /^NAME\s+TYPE\s+STATE\s+SOURCE/);
    assert.match(list.out, /fs-1\s+fs\s+active\s+config/);
    const json = await run('backends', 'list', '--json');
    assert.deepEqual((JSON.parse(json.out) as { backends: { name: string }[] }).backends.map((b) => b.name), ['s3-1', 'fs-1']);
    const add = await run('backends', 'add', 'cli-fs', '--type', 'fs', '--path', path.join(dir, 'cli'), '--quota', '1MiB', '--weight', '2');
    assert.equal(add.rc, 0, add.err);
    assert.match(add.out, /added backend cli-fs/);
    assert.match(add.out, /quota\s+1\.0 MiB \(1048576 bytes\)/);
    const get = await run('backends', 'get', 'cli-fs');
    assert.match(get.out, /weight\s+2/);
    const upd = await run('backends', 'update', 'cli-fs', '--zone', 'rack-2');
    assert.equal(upd.rc, 0, upd.err);
    assert.match(upd.out, /zone\s+rack-2/);
    const owned = await run('backends', 'update', 'fs-1', '--quota', '2KiB');
    assert.equal(owned.rc, 5);
    assert.match(owned.err, /FailedPrecondition/);
    assert.match(owned.err, /config-owned: edit test-harness: backends\[1\]\.quota_bytes/);
    assert.equal((await run('backends', 'get', 'nope')).rc, 3);
    assert.equal((await run('backends', 'add', 'fs-1', '--type', 'fs', '--path', path.join(dir, 'x'))).rc, 4);
    const bad = await run('backends', 'add', 'bad', '--type', 'fs', '--path', 'rel');
    assert.equal(bad.rc, 2);
    assert.match(bad.err, /field fs\.path/);
    assert.equal((await run('backends', 'add', 'bad', '--type', 'ftp')).rc, 2);
    assert.equal((await run('backends', 'get')).rc, 2);
    const rm1 = await run('backends', 'remove', 'cli-fs');
    assert.equal(rm1.rc, 0, rm1.err);
    assert.match(rm1.out, /removed backend cli-fs/);
  });
});
