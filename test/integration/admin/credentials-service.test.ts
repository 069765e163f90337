/**
 * CredentialService end to end on a running orchestrator (and a second instance on the same database),
 * through the generated Connect client, @grpc/grpc-js and the CLI: every RPC's success and bad-input
 * paths, secrets returned once and stored sealed, config-owned credentials refused naming the file and
 * key, and changes (grants, revocation) in force on every instance within a second.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { GetObjectCommand, ListBucketsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigOwnedSchema, FieldViolationSchema } from '../../../gen/s3o/admin/v1/backends_pb.js';
import {
  CreateCredentialRequestSchema,
  CreateCredentialResponseSchema,
  CredentialService,
  GetCredentialRequestSchema,
  GetCredentialResponseSchema,
  Permission,
} from '../../../gen/s3o/admin/v1/credentials_pb.js';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import { createLogger } from '../../../src/log.js';
import { clientFor, startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';

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

/** Polls `fn` until it returns true, for at most `ms`; returns how long it took. */
async function within(ms: number, fn: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - start;
    if (Date.now() - start > ms) assert.fail(`not true within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const s3Status = (p: Promise<unknown>) =>
  p.then(
    () => 200,
    (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode ?? 0,
  );

describe('CredentialService', () => {
  let t: TestOrchestrator;
  let second: Orchestrator;
  let client: Client<typeof CredentialService>;
  const s3: S3Client[] = [];

  before(async () => {
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
    // A second instance on the same database (what several instances behind a balancer are).
    second = await startOrchestrator(t.config, { log: createLogger({}, 'error'), workers: false });
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', `Bearer ${TOKEN}`);
      return next(req);
    };
    client = createClient(CredentialService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
  });

  after(async () => {
    for (const c of s3) c.destroy();
    await second?.stop();
    await t?.stop();
  });

  const s3For = (creds: { accessKeyId: string; secretAccessKey: string }, orch?: Orchestrator) => {
    const c = clientFor(orch ? `http://127.0.0.1:${orch.s3Port}` : t.endpoint, creds);
    s3.push(c);
    return c;
  };

  test('CreateCredential returns the secret once; it works on both instances; the database holds it sealed', async () => {
    const r = await client.createCredential({
      description: 'backup job',
      grants: [{ bucket: 'data', permission: Permission.READ_WRITE, prefix: 'backups/' }],
    });
    const c = r.credential!;
    assert.match(c.accessKeyId, /^S3O[A-Z2-7]{17}$/);
    assert.equal(r.secretAccessKey.length, 40);
    assert.equal(c.source, 'api');
    assert.equal(c.description, 'backup job');
    assert.equal(c.canCreateBuckets, false);
    assert.deepEqual(c.grants.map((g) => [g.bucket, g.permission, g.prefix]), [['data', Permission.READ_WRITE, 'backups/']]);
    const creds = { accessKeyId: c.accessKeyId, secretAccessKey: r.secretAccessKey };
    for (const orch of [undefined, second]) {
      const cl = s3For(creds, orch);
      await cl.send(new PutObjectCommand({ Bucket: 'data', Key: `backups/${orch ? 'two' : 'one'}`, Body: 'x' }));
      assert.deepEqual((await cl.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['data']);
    }
    const { rows } = await t.orch.db.query<{ secret_access_key: string }>(`SELECT secret_access_key FROM credentials WHERE access_key_id = $1`, [c.accessKeyId]);
    assert.match(rows[0]!.secret_access_key, /^v1:[0-9a-f]{8}:/);
    assert.ok(!rows[0]!.secret_access_key.includes(r.secretAccessKey));
    // Config credentials are sealed too.
    const all = await t.orch.db.query<{ secret_access_key: string }>(`SELECT secret_access_key FROM credentials`);
    for (const row of all.rows) assert.ok(row.secret_access_key === '' || row.secret_access_key.startsWith('v1:'));
    // Never again: Get and List carry no secret anywhere.
    const got = await client.getCredential({ accessKeyId: c.accessKeyId });
    assert.ok(!JSON.stringify(got, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes(r.secretAccessKey));
    const listed = await client.listCredentials({});
    assert.ok(!JSON.stringify(listed, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes(r.secretAccessKey));
  });

  test('CreateCredential refuses bad input naming the field', async () => {
    let e = await failure(client.createCredential({ grants: [{ bucket: 'nope', permission: Permission.READ }] }));
    assert.equal(e.code, Code.NotFound);
    assert.match(e.rawMessage, /grants\[0\]\.bucket: bucket "nope" does not exist/);
    e = await failure(client.createCredential({ grants: [{ bucket: 'data', permission: Permission.UNSPECIFIED }] }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'grants[0].permission');
    e = await failure(client.createCredential({ grants: [{ bucket: 'data', permission: Permission.READ }, { bucket: 'data', permission: Permission.READ_WRITE }] }));
    assert.equal(e.code, Code.InvalidArgument);
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'grants[1].bucket');
    e = await failure(client.createCredential({ grants: [{ bucket: '', permission: Permission.READ }] }));
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'grants[0].bucket');
    e = await failure(client.createCredential({ grants: [{ bucket: 'data', permission: Permission.READ, prefix: 'x'.repeat(1025) }] }));
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'grants[0].prefix');
    e = await failure(client.createCredential({ description: 'd'.repeat(257), grants: [] }));
    assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, 'description');
    // Nothing was created by the refused calls.
    const { credentials } = await client.listCredentials({});
    assert.equal(credentials.filter((c) => c.source === 'api').length, 1);
  });

  test('GetCredential and ListCredentials: config credentials name their file and key; NOT_FOUND; filters', async () => {
    const cfg = (await client.getCredential({ accessKeyId: TEST_CREDS.accessKeyId })).credential!;
    assert.equal(cfg.source, 'config');
    assert.equal(cfg.configRef, 'test-harness: buckets[0].credentials[0]');
    assert.deepEqual(cfg.grants.map((g) => [g.bucket, g.permission, g.prefix]), [['data', Permission.READ_WRITE, '']]);
    let e = await failure(client.getCredential({ accessKeyId: 'AKIANOSUCHKEY' }));
    assert.equal(e.code, Code.NotFound);
    e = await failure(client.getCredential({ accessKeyId: '' }));
    assert.equal(e.code, Code.InvalidArgument);
    const onOther = await client.listCredentials({ bucket: 'other' });
    assert.deepEqual(onOther.credentials.map((c) => c.accessKeyId), ['AKIATESTORCHESTRATOR2', 'AKIATESTORCHESTRATOR3']);
    const all = await client.listCredentials({});
    assert.deepEqual(
      all.credentials.map((c) => c.accessKeyId),
      [...all.credentials.map((c) => c.accessKeyId)].sort(),
    );
  });

  test('UpdateCredential changes grants, in force on both instances within a second', async () => {
    const r = await client.createCredential({ grants: [{ bucket: 'data', permission: Permission.READ }] });
    const key = r.credential!.accessKeyId;
    const creds = { accessKeyId: key, secretAccessKey: r.secretAccessKey };
    const one = s3For(creds);
    const two = s3For(creds, second);
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'r', Body: 'r' }));
    // Both instances have the credential cached as read-only.
    assert.equal(await s3Status(one.send(new PutObjectCommand({ Bucket: 'data', Key: 'w', Body: 'w' }))), 403);
    assert.equal(await s3Status(two.send(new PutObjectCommand({ Bucket: 'data', Key: 'w', Body: 'w' }))), 403);
    assert.equal(await s3Status(two.send(new GetObjectCommand({ Bucket: 'data', Key: 'r' }))), 200);
    const u = await client.updateCredential({ accessKeyId: key, description: 'now writes', canCreateBuckets: true, grants: { grants: [{ bucket: 'data', permission: Permission.READ_WRITE, prefix: 'w' }] } });
    assert.equal(u.credential!.description, 'now writes');
    assert.equal(u.credential!.canCreateBuckets, true);
    assert.deepEqual(u.credential!.grants.map((g) => [g.bucket, g.permission, g.prefix]), [['data', Permission.READ_WRITE, 'w']]);
    const took = await within(1000, async () => (await s3Status(two.send(new PutObjectCommand({ Bucket: 'data', Key: 'w', Body: 'w' })))) === 200);
    assert.ok(took <= 1000, `took ${took} ms`);
    assert.equal(await s3Status(one.send(new GetObjectCommand({ Bucket: 'data', Key: 'r' }))), 403, 'outside the new prefix');
    // Only the description: the grants stay.
    const d = await client.updateCredential({ accessKeyId: key, description: 'renamed' });
    assert.equal(d.credential!.grants.length, 1);
    // An empty grant list removes every grant.
    const none = await client.updateCredential({ accessKeyId: key, grants: { grants: [] } });
    assert.equal(none.credential!.grants.length, 0);
  });

  test('UpdateCredential refuses config-owned credentials (naming file and key), unknown keys and empty changes', async () => {
    let e = await failure(client.updateCredential({ accessKeyId: TEST_CREDS.accessKeyId, description: 'x' }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.match(e.rawMessage, /declared by the configuration file test-harness at buckets\[0\]\.credentials\[0\]/);
    assert.deepEqual(e.findDetails(ConfigOwnedSchema).map((d) => [d.file, d.keyPath]), [['test-harness', 'buckets[0].credentials[0]']]);
    e = await failure(client.updateCredential({ accessKeyId: 'AKIANOSUCHKEY', description: 'x' }));
    assert.equal(e.code, Code.NotFound);
    const r = await client.createCredential({ grants: [] });
    e = await failure(client.updateCredential({ accessKeyId: r.credential!.accessKeyId }));
    assert.equal(e.code, Code.InvalidArgument);
    e = await failure(client.updateCredential({ accessKeyId: r.credential!.accessKeyId, grants: { grants: [{ bucket: 'missing', permission: Permission.READ }] } }));
    assert.equal(e.code, Code.NotFound);
  });

  test('RevokeCredential stops the key on both instances within a second; revoked keys stay listed with --all', async () => {
    const r = await client.createCredential({ grants: [{ bucket: 'data', permission: Permission.READ }] });
    const key = r.credential!.accessKeyId;
    const creds = { accessKeyId: key, secretAccessKey: r.secretAccessKey };
    const one = s3For(creds);
    const two = s3For(creds, second);
    assert.equal(await s3Status(one.send(new ListBucketsCommand({}))), 200);
    assert.equal(await s3Status(two.send(new ListBucketsCommand({}))), 200);
    const revoked = await client.revokeCredential({ accessKeyId: key });
    assert.ok(revoked.credential!.revokedAt);
    assert.equal(revoked.credential!.grants.length, 0);
    const took = await within(1000, async () => (await s3Status(two.send(new ListBucketsCommand({})))) === 403);
    assert.ok(took <= 1000, `took ${took} ms`);
    assert.equal(await s3Status(one.send(new ListBucketsCommand({}))), 403);
    const { rows } = await t.orch.db.query<{ secret_access_key: string }>(`SELECT secret_access_key FROM credentials WHERE access_key_id = $1`, [key]);
    assert.equal(rows[0]!.secret_access_key, '', 'the secret is erased');
    assert.ok(!(await client.listCredentials({})).credentials.some((c) => c.accessKeyId === key));
    assert.ok((await client.listCredentials({ includeRevoked: true })).credentials.some((c) => c.accessKeyId === key));
    let e = await failure(client.revokeCredential({ accessKeyId: key }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.match(e.rawMessage, /was revoked at/);
    e = await failure(client.updateCredential({ accessKeyId: key, description: 'x' }));
    assert.equal(e.code, Code.FailedPrecondition);
    e = await failure(client.revokeCredential({ accessKeyId: TEST_CREDS.accessKeyId }));
    assert.equal(e.code, Code.FailedPrecondition);
    assert.equal(e.findDetails(ConfigOwnedSchema)[0]?.keyPath, 'buckets[0].credentials[0]');
    e = await failure(client.revokeCredential({ accessKeyId: 'AKIANOSUCHKEY' }));
    assert.equal(e.code, Code.NotFound);
    e = await failure(client.revokeCredential({ accessKeyId: '' }));
    assert.equal(e.code, Code.InvalidArgument);
  });

  test('gRPC (@grpc/grpc-js): CreateCredential and GetCredential, with codes', async () => {
    const method = <I extends DescMessage, O extends DescMessage>(path: string, i: I, o: O) => ({
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(i, m)),
      requestDeserialize: (b: Buffer) => fromBinary(i, b),
      responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(o, m)),
      responseDeserialize: (b: Buffer) => fromBinary(o, b),
    });
    const Ctor = grpc.makeGenericClientConstructor(
      {
        CreateCredential: method('/s3o.admin.v1.CredentialService/CreateCredential', CreateCredentialRequestSchema, CreateCredentialResponseSchema),
        GetCredential: method('/s3o.admin.v1.CredentialService/GetCredential', GetCredentialRequestSchema, GetCredentialResponseSchema),
      },
      'CredentialService',
    );
    const g = new Ctor(t.adminUrl.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = <T>(name: string, req: unknown) =>
      new Promise<T>((resolve, reject) => g[name]!(req, md, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))));
    try {
      const r = await call<MessageShape<typeof CreateCredentialResponseSchema>>(
        'CreateCredential',
        create(CreateCredentialRequestSchema, { grants: [{ bucket: 'other', permission: Permission.READ, prefix: 'p/' }] }),
      );
      assert.equal(r.secretAccessKey.length, 40);
      const got = await call<MessageShape<typeof GetCredentialResponseSchema>>('GetCredential', create(GetCredentialRequestSchema, { accessKeyId: r.credential!.accessKeyId }));
      assert.equal(got.credential!.grants[0]!.prefix, 'p/');
      const err = await call('GetCredential', create(GetCredentialRequestSchema, { accessKeyId: 'NOPE' })).then(
        () => assert.fail('succeeded'),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.NOT_FOUND);
      const bad = await call('CreateCredential', create(CreateCredentialRequestSchema, { grants: [{ bucket: 'data' }] })).then(
        () => assert.fail('succeeded'),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
      const noToken = await new Promise<grpc.ServiceError>((resolve) =>
        g['GetCredential']!(create(GetCredentialRequestSchema, { accessKeyId: 'x' }), (e: grpc.ServiceError) => resolve(e)),
      );
      assert.equal(noToken.code, grpc.status.UNAUTHENTICATED);
    } finally {
      g.close();
    }
  });

  test('CLI: admin credentials create/list/get/update/revoke, --json and exit codes', async () => {
    const base = ['--server', t.adminUrl, '--token', TOKEN];
    const run = async (...args: string[]) => {
      const out = sink();
      const err = sink();
      const code = await runAdmin(['credentials', ...args, ...base], out, err, {});
      return { code, out: out.text, err: err.text };
    };
    const made = await run('create', '--description', 'cli', '--grant', 'data:read:logs/', '--grant', 'other', '--can-create-buckets', '--json');
    assert.equal(made.code, 0, made.err);
    const body = JSON.parse(made.out) as { credential: { accessKeyId: string; canCreateBuckets: boolean; grants: { bucket: string; permission: string; prefix: string }[] }; secretAccessKey: string };
    assert.equal(body.secretAccessKey.length, 40);
    assert.equal(body.credential.canCreateBuckets, true);
    assert.deepEqual(body.credential.grants, [
      { bucket: 'data', permission: 'PERMISSION_READ', prefix: 'logs/' },
      { bucket: 'other', permission: 'PERMISSION_READ_WRITE', prefix: '' },
    ]);
    const key = body.credential.accessKeyId;
    const human = await run('create', '--grant', 'data:rw');
    assert.equal(human.code, 0);
    assert.match(human.out, /secret access key  \S{40}\n\(shown once/);
    const list = await run('list');
    assert.equal(list.code, 0);
    assert.match(list.out, /^ACCESS KEY\s+STATE\s+SOURCE\s+CREATE BUCKETS\s+GRANTS\s+DESCRIPTION\n/);
    assert.match(list.out, new RegExp(`${key}\\s+active\\s+api\\s+yes\\s+data:read:logs/ other:rw\\s+cli`));
    const get = await run('get', key);
    assert.match(get.out, /grants\s+data:read:logs\/ other:rw/);
    assert.ok(!get.out.includes(body.secretAccessKey));
    const upd = await run('update', key, '--grant', 'data:read', '--can-create-buckets', 'false', '--json');
    assert.equal(upd.code, 0, upd.err);
    assert.deepEqual(JSON.parse(upd.out).credential.grants, [{ bucket: 'data', permission: 'PERMISSION_READ', prefix: '' }]);
    const cfg = await run('update', TEST_CREDS.accessKeyId, '--description', 'x');
    assert.equal(cfg.code, 5);
    assert.match(cfg.err, /FailedPrecondition/);
    assert.match(cfg.err, /config-owned: edit test-harness: buckets\[0\]\.credentials\[0\]/);
    assert.equal((await run('get', 'AKIANOSUCHKEY')).code, 3);
    const badGrant = await run('create', '--grant', 'data:write');
    assert.equal(badGrant.code, 2);
    assert.match(badGrant.err, /permission must be read or rw/);
    assert.equal((await run('create', '--grant', 'missing-bucket')).code, 3);
    assert.equal((await run('revoke', key)).code, 0);
    assert.equal((await run('revoke', key)).code, 5);
    assert.match((await run('list', '--all')).out, new RegExp(`${key}\\s+revoked`));
    assert.equal((await run('frobnicate')).code, 2);
    assert.equal((await run('get')).code, 2);
  });
});
