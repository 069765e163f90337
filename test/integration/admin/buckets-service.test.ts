/**
 * BucketService end to end on a running orchestrator, through the generated Connect client, @grpc/grpc-js
 * and the CLI: every RPC's success and bad-input paths, config-owned buckets refused naming the file and
 * key, a non-empty bucket refused unless forced (then purged by a job), and S3 seeing the changes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { GetBucketCorsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigOwnedSchema, FieldViolationSchema } from '../../../gen/s3o/admin/v1/backends_pb.js';
import { BucketService, GetBucketRequestSchema, GetBucketResponseSchema } from '../../../gen/s3o/admin/v1/buckets_pb.js';
import { CredentialService, Permission } from '../../../gen/s3o/admin/v1/credentials_pb.js';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import { clientFor, drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const TOKEN = 'admin-test-token';

async function failure(p: Promise<unknown>): Promise<ConnectError> {
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

describe('BucketService', () => {
  let t: TestOrchestrator;
  let buckets: Client<typeof BucketService>;
  let creds: Client<typeof CredentialService>;
  let dir: string;
  const s3: S3Client[] = [];

  before(async () => {
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-buckets-'));
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', `Bearer ${TOKEN}`);
      return next(req);
    };
    const transport = createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] });
    buckets = createClient(BucketService, transport);
    creds = createClient(CredentialService, transport);
  });

  after(async () => {
    for (const c of s3) c.destroy();
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function writer(bucket: string): Promise<S3Client> {
    const r = await creds.createCredential({ grants: [{ bucket, permission: Permission.READ_WRITE }] });
    const c = clientFor(t.endpoint, { accessKeyId: r.credential!.accessKeyId, secretAccessKey: r.secretAccessKey });
    s3.push(c);
    return c;
  }

  test('CreateBucket, GetBucket and ListBuckets', async () => {
    const r = await buckets.createBucket({
      name: 'media',
      replicas: 2,
      corsRules: [{ allowedOrigins: ['https://app.example'], allowedMethods: ['GET'], maxAgeSeconds: 60 }],
    });
    const b = r.bucket!;
    assert.equal(b.name, 'media');
    assert.equal(b.source, 'api');
    assert.equal(b.replicas, 2);
    assert.equal(b.corsRules[0]!.maxAgeSeconds, 60);
    assert.equal(b.objectCount, 0n);
    assert.deepEqual(b.grants, []);
    const { buckets: all } = await buckets.listBuckets({});
    assert.deepEqual(all.map((x) => [x.name, x.source]), [['data', 'config'], ['media', 'api'], ['other', 'config']]);
    const data = all[0]!;
    assert.equal(data.configRef, 'test-harness: buckets[0]');
    assert.deepEqual(data.grants.map((g) => g.accessKeyId), ['AKIATESTORCHESTRATOR1', 'AKIATESTORCHESTRATOR3']);
    // S3 sees it once a credential has a grant; its CORS rules are served.
    const w = await writer('media');
    await w.send(new PutObjectCommand({ Bucket: 'media', Key: 'k', Body: 'hello' }));
    const cors = await w.send(new GetBucketCorsCommand({ Bucket: 'media' }));
    assert.deepEqual(cors.CORSRules?.[0]?.AllowedOrigins, ['https://app.example']);
    const got = (await buckets.getBucket({ name: 'media' })).bucket!;
    assert.equal(got.objectCount, 1n);
    assert.equal(got.totalBytes, 5n);
    assert.equal(got.grants.length, 1);
  });

  test('CreateBucket refuses bad names, taken names, bad replicas and bad CORS', async () => {
    for (const name of ['', 'UPPER', 'a', 'has_underscore', '-dash', '192.168.1.1']) {
      const e = await failure(buckets.createBucket({ name }));
      assert.equal(e.code, Code.InvalidArgument, name);
      assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'name');
    }
    let e = await failure(buckets.createBucket({ name: 'data' }));
    assert.equal(e.code, Code.AlreadyExists);
    e = await failure(buckets.createBucket({ name: 'many', replicas: 17 }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'replicas');
    e = await failure(buckets.createBucket({ name: 'badcors', corsRules: [{ allowedOrigins: ['*'], allowedMethods: ['PATCH'] }] }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.match(e.rawMessage, /unsupported method "PATCH"/);
    e = await failure(buckets.getBucket({ name: 'many' }));
    assert.equal(e.code, Code.NotFound);
    e = await failure(buckets.getBucket({ name: '' }));
    assert.equal(e.code, Code.InvalidArgument);
  });

  test('UpdateBucket changes replicas and CORS; refuses config-owned buckets naming file and key', async () => {
    let r = await buckets.updateBucket({ name: 'media', replicas: 0 });
    assert.equal(r.bucket!.replicas, 0, '0 follows placement.replicas');
    r = await buckets.updateBucket({ name: 'media', replicas: 3 });
    assert.equal(r.bucket!.replicas, 3);
    assert.equal(r.bucket!.corsRules.length, 1, 'CORS untouched');
    r = await buckets.updateBucket({ name: 'media', cors: { rules: [] } });
    assert.equal(r.bucket!.corsRules.length, 0);
    const { rows } = await t.orch.db.query<{ replicas: number | null; cors: unknown }>(`SELECT replicas, cors FROM buckets WHERE name = 'media'`);
    assert.deepEqual(rows[0], { replicas: 3, cors: null });
    let e = await failure(buckets.updateBucket({ name: 'data', replicas: 2 }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.deepEqual(e.findDetails(ConfigOwnedSchema).map((d) => [d.file, d.keyPath]), [['test-harness', 'buckets[0].replicas']]);
    e = await failure(buckets.updateBucket({ name: 'nope', replicas: 2 }));
    assert.equal(e.code, Code.NotFound);
    e = await failure(buckets.updateBucket({ name: 'media' }));
    assert.equal(e.code, Code.InvalidArgument);
    e = await failure(buckets.updateBucket({ name: 'media', replicas: 99 }));
    assert.equal(e.code, Code.InvalidArgument);
  });

  test('DeleteBucket: empty ones go; non-empty refused unless forced (a purge job); config-owned refused', async () => {
    await buckets.createBucket({ name: 'empty-one' });
    let d = await buckets.deleteBucket({ name: 'empty-one' });
    assert.equal(d.deleted, true);
    assert.equal((await failure(buckets.getBucket({ name: 'empty-one' }))).code, Code.NotFound);
    let e = await failure(buckets.deleteBucket({ name: 'media' }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.match(e.rawMessage, /is not empty/);
    e = await failure(buckets.deleteBucket({ name: 'data', force: true }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.deepEqual(e.findDetails(ConfigOwnedSchema).map((d) => d.keyPath), ['buckets[0]']);
    e = await failure(buckets.deleteBucket({ name: 'nope' }));
    assert.equal(e.code, Code.NotFound);
    d = await buckets.deleteBucket({ name: 'media', force: true });
    assert.equal(d.deleted, false);
    assert.ok(d.jobId > 0n);
    // The bucket's credentials lose it at once; the purge job empties and deletes it.
    assert.equal((await buckets.getBucket({ name: 'media' })).bucket!.grants.length, 0);
    const deadline = Date.now() + 20_000;
    for (;;) {
      t.orch.wakeWorkers();
      const gone = await buckets.getBucket({ name: 'media' }).then(() => false, (err: unknown) => ConnectError.from(err).code === Code.NotFound);
      if (gone) break;
      assert.ok(Date.now() < deadline, 'the purge job deletes the bucket');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await drainCleanup(t), 0);
  });

  test('gRPC (@grpc/grpc-js): GetBucket and its NOT_FOUND', async () => {
    const method = <I extends DescMessage, O extends DescMessage>(p: string, i: I, o: O) => ({
      path: p,
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(i, m)),
      requestDeserialize: (b: Buffer) => fromBinary(i, b),
      responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(o, m)),
      responseDeserialize: (b: Buffer) => fromBinary(o, b),
    });
    const Ctor = grpc.makeGenericClientConstructor(
      { GetBucket: method('/s3o.admin.v1.BucketService/GetBucket', GetBucketRequestSchema, GetBucketResponseSchema) },
      'BucketService',
    );
    const g = new Ctor(t.adminUrl.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = (name: string) =>
      new Promise<MessageShape<typeof GetBucketResponseSchema>>((resolve, reject) =>
        g['GetBucket']!(create(GetBucketRequestSchema, { name }), md, (err: grpc.ServiceError | null, res: MessageShape<typeof GetBucketResponseSchema>) => (err ? reject(err) : resolve(res))),
      );
    try {
      assert.equal((await call('other')).bucket!.source, 'config');
      const err = await call('nope').then(() => assert.fail('succeeded'), (e: grpc.ServiceError) => e);
      assert.equal(err.code, grpc.status.NOT_FOUND);
    } finally {
      g.close();
    }
  });

  test('examples/scoped-credential.ts makes a bucket and a prefix-confined key, uses it through S3, cleans up', async () => {
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/scoped-credential.ts', '--server', t.adminUrl, '--token', TOKEN, '--s3', t.endpoint, ...args], {
        cwd: path.resolve(import.meta.dirname, '../../..'),
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      });
    const { stdout } = await run('example-bucket', 'inbox/');
    assert.match(stdout, /^created bucket example-bucket\ncreated credential S3O[A-Z2-7]{17}, read-write on example-bucket under "inbox\/"/);
    assert.match(stdout, /PUT inbox\/hello\.txt: ok\nPUT outside\.txt: AccessDenied\nrevoked S3O[A-Z2-7]{17}\npurging bucket example-bucket \(job \d+\)\n$/);
    const refused = await run('data', 'x/').then(
      () => assert.fail('accepted'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /AlreadyExists: bucket "data" already exists/);
  });

  test('CLI: admin buckets create/list/get/update/delete, --json and exit codes', async () => {
    const base = ['--server', t.adminUrl, '--token', TOKEN];
    const run = async (...args: string[]) => {
      const out = sink();
      const err = sink();
      const code = await runAdmin(['buckets', ...args, ...base], out, err, {});
      return { code, out: out.text, err: err.text };
    };
    const corsFile = path.join(dir, 'cors.json');
    await writeFile(corsFile, JSON.stringify([{ allowedOrigins: ['*'], allowedMethods: ['GET', 'HEAD'] }]));
    const made = await run('create', 'cli-bucket', '--replicas', '2', '--cors-file', corsFile, '--json');
    assert.equal(made.code, 0, made.err);
    const b = JSON.parse(made.out).bucket;
    assert.equal(b.replicas, 2);
    assert.deepEqual(b.corsRules[0].allowedMethods, ['GET', 'HEAD']);
    const list = await run('list');
    assert.match(list.out, /^NAME\s+SOURCE\s+REPLICAS\s+OBJECTS\s+SIZE\s+GRANTS\n/);
    assert.match(list.out, /cli-bucket\s+api\s+2\s+0\s+0 B\s+-/);
    assert.match(list.out, /data\s+config\s+default/);
    const get = await run('get', 'data');
    assert.match(get.out, /source\s+config \(test-harness: buckets\[0\]\)/);
    const upd = await run('update', 'cli-bucket', '--replicas', 'default', '--no-cors');
    assert.equal(upd.code, 0, upd.err);
    assert.match(upd.out, /replicas\s+default/);
    assert.match(upd.out, /cors rules\s+0/);
    assert.equal((await run('update', 'data', '--replicas', '2')).code, 5);
    assert.equal((await run('create', 'cli-bucket')).code, 4);
    assert.equal((await run('create', 'Bad_Name')).code, 2);
    assert.equal((await run('get', 'nope')).code, 3);
    assert.equal((await run('update', 'cli-bucket', '--replicas', 'two')).code, 2);
    const del = await run('delete', 'cli-bucket');
    assert.equal(del.code, 0, del.err);
    assert.equal(del.out, 'deleted bucket cli-bucket\n');
    // `admin buckets` alone is still AdminService's usage summary.
    const out = sink();
    assert.equal(await runAdmin(['buckets', ...base], out, sink(), {}), 0);
    assert.match(out.text, /^NAME\s+CREATED\s+OBJECTS\s+SIZE\s+ACCESS KEYS/);
  });
});
