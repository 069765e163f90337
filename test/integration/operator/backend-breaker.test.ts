/**
 * Per-backend circuit breakers over a real black hole: backend `hole` is an s3rver behind a proxy that
 * can stop answering (connections accepted, nothing ever said), with a 1.5 s first-byte timeout; `s3-1` is
 * a plain s3rver after it in the placement order.
 *
 * - while the proxy forwards, `hole` takes the writes (pack order);
 * - once it is black-holed, a GET of an object whose copy is there costs the first-byte timeout (not the
 *   SDK's three attempts, not the 60 s idle timeout) and answers 503; after `breaker.failures` such
 *   failures the breaker opens: the log, /metrics and ListBackends say so;
 * - writes avoid the open backend at no cost (they land on `s3-1` at once);
 * - when the provider answers again, the probe closes the breaker by itself and the object reads back
 *   (the cool-down is long, so no trial write reaches the hole while it is silent: a successful probe is
 *   itself a trial).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AdminService, BreakerState, HealthState } from '../../../gen/s3o/admin/v1/admin_pb.js';
import { startSwitchableProxy, type SwitchableProxy } from '../../harness/blackhole.js';
import { startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

// Long enough that a loaded machine's s3rver answers in time while forwarding, short enough to measure.
const FIRST_BYTE_MS = 1_500;

/** Calls of `call` made on `backend` through the registry so far (every outcome), from /metrics. */
async function callsOn(adminUrl: string, backend: string, call: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const re = new RegExp(`^s3o_backend_call_duration_seconds_count\\{backend="${backend}",call="${call}",outcome="\\w+"\\} (\\d+)$`, 'gm');
  return [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('per-backend circuit breaker', () => {
  let hidden: S3rverInstance;
  let proxy: SwitchableProxy;
  let t: TestOrchestrator;
  let admin: ReturnType<typeof createClient<typeof AdminService>>;
  /** One attempt per request: the SDK would retry a 503 and the test would time three GETs. */
  let once: S3Client;

  before(async () => {
    hidden = await startS3rver();
    proxy = await startSwitchableProxy(hidden.port);
    const hole = {
      ...s3BackendConfig({ endpoint: proxy.endpoint, bucket: hidden.bucket }, 'hole'),
      connectTimeoutMs: 1_000,
      firstByteTimeoutMs: FIRST_BYTE_MS,
    };
    t = await startTestOrchestrator({
      s3rvers: 1,
      fsBackends: 0,
      extraBackends: [hole],
      extraFirst: true,
      breaker: { failures: 2, cooldown: '30s', probes: 1 },
    });
    const auth: Interceptor = (next) => (req) => {
      req.header.set('authorization', 'Bearer admin-test-token');
      return next(req);
    };
    once = new S3Client({ endpoint: t.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDS, maxAttempts: 1 });
    admin = createClient(AdminService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
  });

  after(async () => {
    proxy?.setMode('forward');
    once?.destroy();
    await t?.stop();
    await proxy?.stop();
    await hidden?.stop();
  });

  const copiesOf = async (key: string): Promise<string[]> =>
    (
      await t.orch.db.query<{ backend: string }>(
        `SELECT c.backend FROM object_versions v JOIN object_copies c USING (version_id) WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live'`,
        [key],
      )
    ).rows.map((r) => r.backend);
  const metric = async (re: RegExp): Promise<string | undefined> => re.exec(await (await fetch(`${t.adminUrl}/metrics`)).text())?.[1];
  const holeRow = async () => (await admin.listBackends({})).backends.find((b) => b.name === 'hole')!;
  const getStatus = async (key: string): Promise<{ status: number; ms: number; body?: string }> => {
    const started = performance.now();
    try {
      const r = await once.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
      return { status: 200, ms: performance.now() - started, body: await r.Body!.transformToString() };
    } catch (err) {
      return { status: (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0, ms: performance.now() - started };
    }
  };

  it('Breaker_opens_on_a_black_holed_backend_writes_avoid_it_and_it_closes_when_the_backend_answers', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'on-hole', Body: 'kept behind the hole' }));
    assert.deepEqual(await copiesOf('on-hole'), ['hole'], 'pack order: the first backend takes the write');
    const up = await holeRow();
    assert.equal(up.breakerState, BreakerState.CLOSED);
    assert.equal(await metric(/^s3o_backend_breaker_state\{backend="hole"\} (\d+)$/m), '0');

    proxy.setMode('silent');
    const failures: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await getStatus('on-hole');
      assert.equal(r.status, 503, 'no copy is readable');
      failures.push(r.ms);
    }
    for (const ms of failures) {
      assert.ok(ms >= FIRST_BYTE_MS - 50, `a GET failed after ${ms} ms, before the first-byte timeout`);
      assert.ok(ms < FIRST_BYTE_MS + 1_500, `a GET cost ${ms} ms: more than the first-byte timeout once`);
    }

    const open = await holeRow();
    assert.equal(open.breakerState, BreakerState.OPEN);
    assert.equal(open.healthState, HealthState.UNAVAILABLE);
    assert.ok(open.openedAt, 'opened_at is reported');
    assert.match(open.openReason, /failures in a row|probe failed/);
    assert.ok(open.consecutiveFailures >= 2);
    assert.match(open.lastError, /first_byte_timeout/);
    assert.equal(await metric(/^s3o_backend_breaker_state\{backend="hole"\} (\d+)$/m), '2');
    assert.equal(await metric(/^s3o_backend_breaker_transitions_total\{backend="hole",to="open"\} (\d+)$/m), '1');

    // Writes avoid the open backend: not one put reaches it (counted by the registry's wrapper).
    const putsOnHole = () => callsOn(t.adminUrl, 'hole', 'put');
    const before = await putsOnHole();
    for (let i = 0; i < 5; i++) {
      await once.send(new PutObjectCommand({ Bucket: 'data', Key: `while-open/${i}`, Body: `body ${i}` }));
      assert.deepEqual(await copiesOf(`while-open/${i}`), ['s3-1']);
    }
    assert.equal(await putsOnHole(), before, 'no write was tried on the open backend');
    assert.equal((await holeRow()).breakerState, BreakerState.OPEN);
    assert.equal((await getStatus('while-open/0')).body, 'body 0');
    const s3 = (await admin.listBackends({})).backends.find((b) => b.name === 's3-1')!;
    assert.equal(s3.breakerState, BreakerState.CLOSED);
    assert.ok(s3.latency && (s3.latency.seconds > 0n || s3.latency.nanos > 0), 'the latency of the live backend is measured');

    proxy.setMode('forward');
    await eventually('the breaker closes once the backend answers', async () => (await holeRow()).breakerState === BreakerState.CLOSED);
    const closed = await holeRow();
    assert.equal(closed.healthState, HealthState.HEALTHY);
    assert.equal(closed.openReason, '');
    assert.equal(await metric(/^s3o_backend_breaker_state\{backend="hole"\} (\d+)$/m), '0');
    assert.equal(await metric(/^s3o_backend_breaker_transitions_total\{backend="hole",to="closed"\} (\d+)$/m), '1');
    const back = await getStatus('on-hole');
    assert.equal(back.status, 200);
    assert.equal(back.body, 'kept behind the hole');
  });
});

/**
 * Two copies (placement.replicas 2), the black-holed backend read first (read_priority -1): the first GET
 * pays the first-byte timeout once and fails over to the other copy (200, whole body); that failure opens
 * the breaker (breaker.failures 1), so the next GETs read the other copy first at no cost.
 */
describe('per-backend circuit breaker with two copies', () => {
  let hidden: S3rverInstance;
  let proxy: SwitchableProxy;
  let t: TestOrchestrator;
  let once: S3Client;

  before(async () => {
    hidden = await startS3rver();
    proxy = await startSwitchableProxy(hidden.port);
    const hole = {
      ...s3BackendConfig({ endpoint: proxy.endpoint, bucket: hidden.bucket }, 'hole'),
      connectTimeoutMs: 1_000,
      firstByteTimeoutMs: FIRST_BYTE_MS,
      readPriority: -1,
    };
    t = await startTestOrchestrator({
      s3rvers: 1,
      fsBackends: 0,
      extraBackends: [hole],
      extraFirst: true,
      placement: { replicas: 2 },
      breaker: { failures: 1, cooldown: '30s' },
    });
    once = new S3Client({ endpoint: t.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: TEST_CREDS, maxAttempts: 1 });
  });

  after(async () => {
    proxy?.setMode('forward');
    once?.destroy();
    await t?.stop();
    await proxy?.stop();
    await hidden?.stop();
  });

  const timedGet = async (key: string): Promise<{ ms: number; body: string }> => {
    const started = performance.now();
    const r = await once.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    const body = await r.Body!.transformToString();
    return { ms: performance.now() - started, body };
  };

  it('Reads_fail_over_from_a_black_holed_copy_once_then_read_the_healthy_copy_first', async () => {
    const body = 'two copies, one behind a black hole';
    await once.send(new PutObjectCommand({ Bucket: 'data', Key: 'both', Body: body }));
    const { rows } = await t.orch.db.query<{ backend: string }>(
      `SELECT c.backend FROM object_versions v JOIN object_copies c USING (version_id) WHERE v.key = 'both' AND v.state = 'live' ORDER BY 1`,
    );
    assert.deepEqual(rows.map((r) => r.backend), ['hole', 's3-1']);
    assert.deepEqual(t.orch.backends.readOrder(['s3-1', 'hole']), ['hole', 's3-1'], 'read_priority -1 puts the hole first');

    proxy.setMode('silent');
    const first = await timedGet('both');
    assert.equal(first.body, body, 'the read failed over to the other copy');
    assert.ok(first.ms >= FIRST_BYTE_MS - 50, `the first GET took ${first.ms} ms: it did not try the hole first`);
    assert.ok(first.ms < FIRST_BYTE_MS + 1_500, `the first GET cost ${first.ms} ms: more than the first-byte timeout once`);
    assert.equal(t.orch.backends.health!.breakerState('hole'), 'open');
    assert.deepEqual(t.orch.backends.readOrder(['hole', 's3-1']), ['s3-1', 'hole'], 'an open breaker goes last whatever its priority');

    const getsOnHole = await callsOn(t.adminUrl, 'hole', 'get');
    for (let i = 0; i < 3; i++) {
      const next = await timedGet('both');
      assert.equal(next.body, body);
      assert.ok(next.ms < FIRST_BYTE_MS * 3, `GET ${i + 2} took ${next.ms} ms with the breaker open`);
    }
    assert.equal(await callsOn(t.adminUrl, 'hole', 'get'), getsOnHole, 'the open backend was not read: the healthy copy answered first');
  });
});
