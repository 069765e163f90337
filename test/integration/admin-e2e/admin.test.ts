/**
 * The admin plane of a real orchestrator after real S3 traffic: the CLI binary
 * (`node bin/s3-orchestrator.js admin status|backends|buckets|locate`) and the generated Connect client
 * report used bytes and object counts per backend, locate finds each copy's backend and physical key,
 * and that physical key really holds the object's bytes on that backend (fs file; s3rver HeadObject /
 * GetObject against the provider directly). /metrics counts S3 requests by operation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AdminService, BackendState, BackendType, CopyState } from '../../../gen/s3o/admin/v1/admin_pb.js';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { S3RVER_CREDENTIALS } from '../../harness/s3rver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'bin', 's3-orchestrator.js');
const TOKEN = 'admin-test-token';

let t: TestOrchestrator;
let admin: Client<typeof AdminService>;
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
const sizes = { onS3: 60_000, onFs: 70_000 };
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const body = (n: number, seed: number) => Buffer.alloc(n, seed);

before(async () => {
  // s3-1 has room for one of the two objects, so pack order puts the second on fs-1.
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, quotas: { 's3-1': 100_000 } });
  admin = createClient(AdminService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1' }));
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'admin/on s3', Body: body(sizes.onS3, 1) }));
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'admin/on fs', Body: body(sizes.onFs, 2) }));
  await t.otherClient.send(new PutObjectCommand({ Bucket: 'other', Key: 'x', Body: 'tiny' }));
});
after(() => t?.stop());

/** Runs the real CLI binary as a child process. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'admin', ...args, '--server', t.adminUrl],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, S3O_ADMIN_TOKEN: TOKEN } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('admin end to end', () => {
  it('ListBackends_reports_usage_after_puts', async () => {
    const r = await admin.listBackends({}, auth);
    const byName = Object.fromEntries(r.backends.map((b) => [b.name, b]));
    assert.deepEqual(Object.keys(byName).sort(), ['fs-1', 's3-1']);
    assert.equal(byName['s3-1']!.type, BackendType.S3);
    assert.equal(byName['fs-1']!.type, BackendType.FS);
    // s3-1 holds the first `data` object and `other`'s tiny one (it still had room for that).
    assert.equal(byName['s3-1']!.usedBytes, BigInt(sizes.onS3 + 4));
    assert.equal(byName['s3-1']!.objectCount, 2n);
    assert.equal(byName['s3-1']!.quotaBytes, 100_000n);
    assert.equal(byName['fs-1']!.usedBytes, BigInt(sizes.onFs));
    assert.equal(byName['fs-1']!.objectCount, 1n);
    assert.ok(r.backends.every((b) => b.healthy && b.reservedBytes === 0n));
    assert.ok(r.backends.every((b) => b.state === BackendState.ACTIVE && b.source === 'config'), 'rows declared by the config file, active');
  });

  it('ListBuckets_and_GetStatus', async () => {
    const b = await admin.listBuckets({}, auth);
    const data = b.buckets.find((x) => x.name === 'data')!;
    assert.equal(data.objectCount, 2n);
    assert.equal(data.totalBytes, BigInt(sizes.onS3 + sizes.onFs));
    assert.ok(data.accessKeyIds.includes('AKIATESTORCHESTRATOR1'));
    assert.doesNotMatch(JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)), /secret/i, 'no secrets');
    const s = await admin.getStatus({}, auth);
    assert.equal(s.databaseEngine, t.orch.db.engine);
    assert.equal(s.backendCount, 2);
    assert.equal(s.healthyBackendCount, 2);
    assert.equal(s.objectCount, 3n);
    assert.equal(s.totalBytes, BigInt(sizes.onS3 + sizes.onFs + 4));
    assert.match(s.s3ListenAddress, new RegExp(`:${t.orch.s3Port}$`));
  });

  it('LocateObject_fs_copy_exists_on_disk', async () => {
    const loc = await admin.locateObject({ bucket: 'data', key: 'admin/on fs' }, auth);
    assert.equal(loc.size, BigInt(sizes.onFs));
    assert.equal(loc.etag.replace(/"/g, ''), md5(body(sizes.onFs, 2)));
    assert.equal(loc.copies.length, 1);
    const copy = loc.copies[0]!;
    assert.equal(copy.backend, 'fs-1');
    assert.equal(copy.state, CopyState.LIVE);
    const fsCfg = t.config.backends.find((b) => b.name === 'fs-1');
    assert.ok(fsCfg?.type === 'fs');
    const onDisk = await readFile(path.join(fsCfg.path, copy.physicalKey));
    assert.equal(md5(onDisk), md5(body(sizes.onFs, 2)), 'the physical file holds exactly the object bytes');
  });

  it('LocateObject_s3_copy_exists_on_provider', async () => {
    const loc = await admin.locateObject({ bucket: 'data', key: 'admin/on s3' }, auth);
    const copy = loc.copies[0]!;
    assert.equal(copy.backend, 's3-1');
    const s3Cfg = t.config.backends.find((b) => b.name === 's3-1');
    assert.ok(s3Cfg?.type === 's3');
    const direct = new S3Client({ endpoint: s3Cfg.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
    try {
      const head = await direct.send(new HeadObjectCommand({ Bucket: s3Cfg.bucket, Key: s3Cfg.prefix + copy.physicalKey }));
      assert.equal(head.ContentLength, sizes.onS3);
      const got = await direct.send(new GetObjectCommand({ Bucket: s3Cfg.bucket, Key: s3Cfg.prefix + copy.physicalKey }));
      assert.equal(md5(await got.Body!.transformToByteArray()), md5(body(sizes.onS3, 1)), 'plain bytes, no aws-chunked framing');
    } finally {
      direct.destroy();
    }
  });

  it('LocateObject_missing_is_NotFound_and_token_required', async () => {
    const notFound = await admin.locateObject({ bucket: 'data', key: 'admin/missing' }, auth).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e).code,
    );
    assert.equal(notFound, Code.NotFound);
    const noToken = await admin.listBackends({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e).code,
    );
    assert.equal(noToken, Code.Unauthenticated);
  });

  it('Locate_missing_says_whether_the_bucket_or_the_key_is_missing', async () => {
    const message = (bucket: string, key: string) =>
      admin.locateObject({ bucket, key }, auth).then(
        () => 'found',
        (e: unknown) => `${ConnectError.from(e).code} ${ConnectError.from(e).rawMessage}`,
      );
    assert.equal(await message('nobucket', 'k'), `${Code.NotFound} bucket "nobucket" does not exist`);
    assert.equal(await message('data', 'admin/missing'), `${Code.NotFound} bucket "data" has no object with key "admin/missing"`);
    const r = await cli(['locate', 'data', 'admin/missing']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'admin: NotFound: bucket "data" has no object with key "admin/missing"\n');
  });

  it('cli_backends_buckets_status', async () => {
    const backends = await cli(['backends']);
    assert.equal(backends.code, 0, backends.stderr);
    assert.match(backends.stdout, /^s3-1 +s3 +active +yes +closed +58\.6 KiB +0 B +97\.7 KiB +60\.0% +2$/m);
    assert.match(backends.stdout, /^fs-1 +fs +active +yes +closed +68\.4 KiB +0 B +unlimited +- +1$/m);
    const json = await cli(['backends', '--json']);
    const parsed = JSON.parse(json.stdout) as { backends: { name: string; usedBytes: string; objectCount: string }[] };
    assert.deepEqual(
      parsed.backends.map((b) => [b.name, b.usedBytes, b.objectCount]),
      [['s3-1', String(sizes.onS3 + 4), '2'], ['fs-1', String(sizes.onFs), '1']],
    );
    const buckets = await cli(['buckets']);
    assert.equal(buckets.code, 0, buckets.stderr);
    assert.match(buckets.stdout, /^data +\S+ +2 +127\.0 KiB +\S*AKIATESTORCHESTRATOR1/m);
    const status = await cli(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^objects +3 \(127\.0 KiB\)$/m);
    assert.match(status.stdout, /^backends +2 \(2 healthy\)$/m);
  });

  it('cli_locate_prints_backend_and_physical_key', async () => {
    const loc = await admin.locateObject({ bucket: 'data', key: 'admin/on fs' }, auth);
    const r = await cli(['locate', 'data', 'admin/on fs']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^size +68\.4 KiB \(70000 bytes\)$/m);
    assert.match(r.stdout, new RegExp(`^fs-1 +live +68\\.4 KiB +${loc.copies[0]!.physicalKey}$`, 'm'));
  });

  it('cli_wrong_token_fails', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'admin', 'status', '--server', t.adminUrl, '--token', 'wrong'],
        { cwd: ROOT, encoding: 'utf8' },
        (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stderr }),
      );
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Unauthenticated/);
  });

  it('metrics_count_s3_requests_by_op', async () => {
    const res = await fetch(`${t.adminUrl}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const count = (op: string, status: string) => {
      const m = new RegExp(`^s3o_s3_requests_total\\{op="${op}",status="${status}"\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    assert.ok(count('PutObject', '200') >= 3, text.slice(0, 2000));
    // Labels are bounded: operation and status only, never bucket or key.
    assert.doesNotMatch(text, /admin\/on/);
    await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'admin/on s3' }));
    const after = await (await fetch(`${t.adminUrl}/metrics`)).text();
    const m = /^s3o_s3_requests_total\{op="HeadObject",status="200"\} (\d+)$/m.exec(after);
    assert.ok(m && Number(m[1]) >= 1, 'HeadObject counted');
  });
});
