/**
 * UsageService end to end: a known workload through @aws-sdk/client-s3 against a running orchestrator,
 * then GetUsage through the generated Connect client and the CLI. The bucket's request counts by class
 * and its body bytes are exact (the client records what each request and response carried); the
 * backend's are checked against the bytes the objects hold; a second instance on the same database adds
 * its counts (flushed at its stop); /metrics exports the backend counters; bad input is refused with the
 * field named.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { FieldViolationSchema } from '../../../gen/s3o/admin/v1/backends_pb.js';
import {
  GetUsageRequestSchema,
  GetUsageResponseSchema,
  UsageService,
  type UsageEntry,
} from '../../../gen/s3o/admin/v1/usage_pb.js';
import { startOrchestrator } from '../../../src/app.js';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import { monthStart } from '../../../src/core/usage.js';
import { createLogger } from '../../../src/log.js';
import { clientFor, drainCleanup, OTHER_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const TOKEN = 'admin-test-token';

/** What one client sent and received, per request class, as the wire carried it (every attempt). */
interface Tally {
  a: number;
  b: number;
  bytesIn: number;
  bytesOut: number;
}

const CLASS_A = new Set(['PUT', 'POST']);

/** Records, for every attempt, the request's and the response's body sizes and the S3 class. */
function tallied(client: S3Client, tally: Tally): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { method: string; headers: Record<string, string>; query?: Record<string, unknown> };
      const out = await next(args);
      const res = out.response as { statusCode: number; headers: Record<string, string> };
      const list = req.method === 'GET' && req.query !== undefined && ('list-type' in req.query || 'uploads' in req.query);
      if (CLASS_A.has(req.method) || list) tally.a++;
      else tally.b++;
      tally.bytesIn += Number(req.headers['content-length'] ?? 0);
      if (req.method !== 'HEAD') tally.bytesOut += Number(res.headers['content-length'] ?? 0);
      return out;
    },
    { step: 'deserialize', name: 'usageTally', priority: 'low' },
  );
  return client;
}

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

describe('UsageService', () => {
  let t: TestOrchestrator;
  let usage: Client<typeof UsageService>;
  const month = monthStart(Date.now()).slice(0, 7);
  const data: Tally = { a: 0, b: 0, bytesIn: 0, bytesOut: 0 };
  const sizes = [1000, 2000, 3000];
  const partSizes = [5 * 1024 * 1024, 100];
  let getBytes = 0;

  before(async () => {
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', `Bearer ${TOKEN}`);
      return next(req);
    };
    usage = createClient(UsageService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
  });
  after(async () => {
    await t?.stop();
  });

  const thisMonth = (e: UsageEntry | undefined) => {
    assert.ok(e, 'entry present');
    const m = e.months.find((x) => x.month === month);
    assert.ok(m, `month ${month} present`);
    return { a: Number(m.requestsA), b: Number(m.requestsB), bytesIn: Number(m.bytesIn), bytesOut: Number(m.bytesOut) };
  };

  test('a known workload: exact bucket counts, plausible backend counts, metrics', async () => {
    const c = tallied(clientFor(t.endpoint), data);
    try {
      for (const [i, size] of sizes.entries()) await c.send(new PutObjectCommand({ Bucket: 'data', Key: `u/${i}`, Body: Buffer.alloc(size, i + 1) }));
      for (const i of [0, 2]) {
        const r = await c.send(new GetObjectCommand({ Bucket: 'data', Key: `u/${i}` }));
        getBytes += (await r.Body!.transformToByteArray()).length;
      }
      await c.send(new HeadObjectCommand({ Bucket: 'data', Key: 'u/1' }));
      await c.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'u/' }));
      await assert.rejects(c.send(new GetObjectCommand({ Bucket: 'data', Key: 'u/missing' })), { name: 'NoSuchKey' });
      const up = await c.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'u/mp' }));
      const parts = [];
      for (const [i, size] of partSizes.entries()) {
        const p = await c.send(new UploadPartCommand({ Bucket: 'data', Key: 'u/mp', UploadId: up.UploadId!, PartNumber: i + 1, Body: Buffer.alloc(size, 7) }));
        parts.push({ PartNumber: i + 1, ETag: p.ETag! });
      }
      await c.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'u/mp', UploadId: up.UploadId!, MultipartUpload: { Parts: parts } }));
      await c.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'u/1' }));
    } finally {
      c.destroy();
    }
    // A credential without a grant on `data` is refused and adds nothing to it; its own bucket counts.
    const other = clientFor(t.endpoint, OTHER_CREDS);
    try {
      await assert.rejects(other.send(new GetObjectCommand({ Bucket: 'data', Key: 'u/0' })), { name: 'AccessDenied' });
      await other.send(new PutObjectCommand({ Bucket: 'other', Key: 'x', Body: 'hello' }));
    } finally {
      other.destroy();
    }
    assert.equal(data.a, 3 + 1 + 1 + 2 + 1, 'class A: 3 PUT, LIST, create, 2 parts, complete');
    assert.equal(data.b, 2 + 1 + 1 + 1, 'class B: 2 GET, HEAD, a GET of a missing key, DELETE');
    await drainCleanup(t);

    const res = await usage.getUsage({});
    assert.equal(res.fromMonth, month);
    assert.equal(res.toMonth, month);
    const bucket = (name: string) => res.buckets.find((b) => b.name === name);
    assert.deepEqual(thisMonth(bucket('data')), data);
    assert.equal(thisMonth(bucket('other')).a, 1);
    assert.equal(thisMonth(bucket('other')).bytesIn > 0, true);
    const stored = sizes[0]! + sizes[2]! + partSizes[0]! + partSizes[1]!;
    assert.equal(Number(bucket('data')!.storedBytes), stored);
    assert.equal(Number(bucket('data')!.storedObjects), 3);

    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    const value = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    // Pack placement: every copy went to s3-1. Its ingress is the bytes of every copy written there.
    const s3 = thisMonth(res.backends.find((b) => b.name === 's3-1'));
    const written = sizes.reduce((x, y) => x + y, 0) + partSizes[0]! + partSizes[1]! + 'hello'.length;
    assert.equal(s3.bytesIn, written, 'bytes streamed to the provider');
    assert.ok(s3.bytesOut >= getBytes, `egress ${s3.bytesOut} covers the ${getBytes} bytes read`);
    assert.ok(s3.a >= 4 + 1 + 2 + 1, `class A calls ${s3.a}: 4 puts, create, 2 parts, complete`);
    assert.ok(s3.b >= 2 + 1 + 1, `class B calls ${s3.b}: 2 gets, the cleanup's delete, the start-up check`);
    assert.equal(Number(res.backends.find((b) => b.name === 's3-1')!.storedBytes), stored + 'hello'.length);

    assert.equal(value('s3o_backend_bytes_total', 'backend="s3-1",direction="in"'), written);
    assert.ok(value('s3o_backend_requests_total', 'backend="s3-1",class="A"') >= s3.a - 0, 'requests exported');
  });

  test('filters, ranges and the CLI', async () => {
    const only = await usage.getUsage({ bucket: 'data', fromMonth: '2026-01', toMonth: month < '2026-01' ? '2026-01' : month });
    assert.deepEqual(only.backends, []);
    assert.deepEqual(only.buckets.map((b) => b.name), ['data']);
    assert.equal(only.buckets[0]!.months[0]!.month, '2026-01');
    const be = await usage.getUsage({ backend: 'fs-1' });
    assert.deepEqual(be.buckets, []);
    assert.deepEqual(be.backends.map((b) => b.name), ['fs-1']);

    const out = sink();
    const err = sink();
    assert.equal(await runAdmin(['usage', '--bucket', 'data', '--server', t.adminUrl, '--token', TOKEN], out, err), 0, err.text);
    assert.match(out.text, new RegExp(`^BUCKET\\s+MONTH\\s+STORED\\s+OBJECTS\\s+CLASS A\\s+CLASS B\\s+BYTES IN\\s+BYTES OUT\\n`, 'm'));
    assert.match(out.text, new RegExp(`^data\\s+${month}\\s+.*\\s${data.a}\\s+${data.b}\\s`, 'm'));
    const json = sink();
    assert.equal(await runAdmin(['usage', '--backend', 's3-1', '--month', month, '--json', '--server', t.adminUrl, '--token', TOKEN], json, err), 0, err.text);
    const parsed = JSON.parse(json.text) as { backends: { name: string; months: { month: string; bytesIn: string }[] }[]; buckets: unknown[] };
    assert.equal(parsed.backends[0]!.name, 's3-1');
    assert.equal(parsed.backends[0]!.months[0]!.month, month);
    assert.deepEqual(parsed.buckets, []);

    const bad = sink();
    assert.equal(await runAdmin(['usage', '--month', '2026-13', '--server', t.adminUrl, '--token', TOKEN], sink(), bad), 1);
    assert.match(bad.text, /InvalidArgument: to_month: expected a month as YYYY-MM/);
    const usageErr = sink();
    assert.equal(await runAdmin(['usage', '--month', month, '--from', month, '--server', t.adminUrl], sink(), usageErr), 2);
    assert.match(usageErr.text, /--month cannot be combined/);
  });

  test('bad input: unknown names are NOT_FOUND, bad months INVALID_ARGUMENT naming the field', async () => {
    const nf = await failure(usage.getUsage({ backend: 'no-such-backend' }));
    assert.equal(nf.code, Code.NotFound);
    assert.match(nf.rawMessage, /no-such-backend/);
    assert.equal((await failure(usage.getUsage({ bucket: 'no-such-bucket' }))).code, Code.NotFound);
    // Bucket creation and deletion are authorised by ownership: failed ones must not invent bucket rows.
    const c = clientFor(t.endpoint);
    try {
      await assert.rejects(c.send(new DeleteBucketCommand({ Bucket: 'never-existed' })));
      await assert.rejects(c.send(new CreateBucketCommand({ Bucket: 'x' })));
    } finally {
      c.destroy();
    }
    for (const bucket of ['never-existed', 'x']) assert.equal((await failure(usage.getUsage({ bucket }))).code, Code.NotFound, bucket);
    for (const [req, field] of [
      [{ fromMonth: '2026-00' }, 'from_month'],
      [{ toMonth: '26-11' }, 'to_month'],
      [{ fromMonth: '2026-11', toMonth: '2026-01' }, 'from_month'],
      [{ fromMonth: '1990-01', toMonth: '2026-11' }, 'from_month'],
    ] as const) {
      const e = await failure(usage.getUsage(req));
      assert.equal(e.code, Code.InvalidArgument, JSON.stringify(req));
      assert.equal(e.findDetails(FieldViolationSchema)[0]?.field, field, JSON.stringify(req));
    }
    const unauth = createClient(UsageService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1' }));
    assert.equal((await failure(unauth.getUsage({}))).code, Code.Unauthenticated);
  });

  test('gRPC (@grpc/grpc-js): GetUsage and its INVALID_ARGUMENT', async () => {
    type Res = MessageShape<typeof GetUsageResponseSchema>;
    const Ctor = grpc.makeGenericClientConstructor(
      {
        GetUsage: {
          path: '/s3o.admin.v1.UsageService/GetUsage',
          requestStream: false,
          responseStream: false,
          requestSerialize: (m: MessageShape<typeof GetUsageRequestSchema>) => Buffer.from(toBinary(GetUsageRequestSchema, m)),
          requestDeserialize: (b: Buffer) => fromBinary(GetUsageRequestSchema, b),
          responseSerialize: (m: Res) => Buffer.from(toBinary(GetUsageResponseSchema, m)),
          responseDeserialize: (b: Buffer) => fromBinary(GetUsageResponseSchema, b),
        },
      },
      'UsageService',
    );
    const g = new Ctor(t.adminUrl.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = (init: Parameters<typeof create<typeof GetUsageRequestSchema>>[1]) =>
      new Promise<Res>((resolve, reject) =>
        g['GetUsage']!(create(GetUsageRequestSchema, init), md, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))),
      );
    try {
      const res = await call({ bucket: 'data' });
      assert.equal(thisMonth(res.buckets[0]).a, data.a);
      const err = await call({ toMonth: '2026-1' }).then(() => assert.fail('succeeded'), (e: grpc.ServiceError) => e);
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /to_month/);
    } finally {
      g.close();
    }
  });

  test('a second instance on the same database adds its counts (flushed when it stops)', async () => {
    const before = thisMonth((await usage.getUsage({ bucket: 'data' })).buckets[0]);
    const second = await startOrchestrator(t.config, { log: createLogger({}, 'error') });
    const tally: Tally = { a: 0, b: 0, bytesIn: 0, bytesOut: 0 };
    const c = tallied(clientFor(`http://127.0.0.1:${second.s3Port}`), tally);
    try {
      await c.send(new PutObjectCommand({ Bucket: 'data', Key: 'second/1', Body: Buffer.alloc(4321, 9) }));
      const r = await c.send(new GetObjectCommand({ Bucket: 'data', Key: 'second/1' }));
      await r.Body!.transformToByteArray();
      await c.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'second/1' }));
    } finally {
      c.destroy();
      await second.stop();
    }
    await drainCleanup(t);
    const afterBoth = thisMonth((await usage.getUsage({ bucket: 'data' })).buckets[0]);
    assert.deepEqual(afterBoth, {
      a: before.a + tally.a,
      b: before.b + tally.b,
      bytesIn: before.bytesIn + tally.bytesIn,
      bytesOut: before.bytesOut + tally.bytesOut,
    });
  });
});
