/**
 * The S3 backend's connect and first-byte deadlines (src/backends/deadline.ts) against black-holed
 * providers on loopback: every call fails with `Unavailable` within about its timeout, ONCE (one
 * connection, no SDK retry), uploads too (small bodies after their last byte, large ones when the provider
 * takes no byte), while a slow client body to a working provider is never cut off.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../../src/backends/backend.js';
import { S3Backend, S3_TIMEOUT_DEFAULTS } from '../../../src/backends/s3.js';
import { BREAKER_KEY_DEFAULTS } from '../../../src/config/breaker.js';
import { startBlackHole, startFullBacklog, type BlackHole } from '../../harness/blackhole.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const FIRST_BYTE_MS = 400;
const CONNECT_MS = 300;
const META = { bucket: 'b', key: 'k', versionId: 'v1' };

/** Runs `fn`, expects an Unavailable BackendError, returns how long it took (ms) and the message. */
async function failsUnavailable(fn: () => Promise<unknown>): Promise<{ ms: number; message: string }> {
  const started = performance.now();
  try {
    await fn();
  } catch (err) {
    const ms = performance.now() - started;
    assert.ok(err instanceof BackendError, `a BackendError, got ${String(err)}`);
    assert.equal(err.kind, 'Unavailable', err.message);
    return { ms, message: err.message };
  }
  return assert.fail('the call must fail');
}

describe('S3 backend deadlines', () => {
  let hole: BlackHole;
  let backend: S3Backend;
  before(async () => {
    hole = await startBlackHole();
    backend = new S3Backend({
      ...s3BackendConfig({ endpoint: hole.endpoint, bucket: 'test' }, 'hole'),
      connectTimeoutMs: CONNECT_MS,
      firstByteTimeoutMs: FIRST_BYTE_MS,
    });
  });
  after(async () => {
    await backend?.close();
    await hole?.stop();
  });

  it('defaults_agree_with_the_configuration', () => {
    assert.equal(S3_TIMEOUT_DEFAULTS.connectMs, BREAKER_KEY_DEFAULTS.connectTimeoutMs);
    assert.equal(S3_TIMEOUT_DEFAULTS.firstByteMs, BREAKER_KEY_DEFAULTS.firstByteTimeoutMs);
  });

  it('GET_HEAD_LIST_DELETE_and_check_fail_once_within_the_first_byte_timeout', async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ['get', () => backend.get('obj')],
      ['get range', () => backend.get('obj', { start: 5, end: 9 })],
      ['head', () => backend.head('obj')],
      ['list', () => backend.list('')],
      ['delete', () => backend.delete('obj')],
      ['check', () => backend.check()],
      ['create multipart', () => backend.createMultipart('mp', META)],
    ];
    for (const [what, fn] of calls) {
      const before = hole.connections;
      const { ms, message } = await failsUnavailable(fn);
      assert.ok(ms >= FIRST_BYTE_MS - 20, `${what}: failed after ${ms} ms, before the timeout`);
      assert.ok(ms < FIRST_BYTE_MS + 600, `${what}: took ${ms} ms`);
      assert.match(message, /first_byte_timeout/, what);
      // delete also removes the sidecar: two requests, each one attempt.
      const expected = what === 'delete' ? 2 : 1;
      assert.equal(hole.connections - before, expected, `${what}: one attempt per request, not the SDK's three`);
    }
  });

  it('small_and_empty_PUTs_fail_within_the_first_byte_timeout_after_their_body', async () => {
    for (const size of [1024, 0]) {
      const before = hole.connections;
      const { ms } = await failsUnavailable(() => backend.put(`small-${size}`, Readable.from(size ? [Buffer.alloc(size, 1)] : []), size, META));
      assert.ok(ms >= FIRST_BYTE_MS - 20 && ms < FIRST_BYTE_MS + 600, `${size} bytes: took ${ms} ms`);
      assert.equal(hole.connections - before, 1, `${size} bytes: one attempt`);
    }
  });

  it('a_large_PUT_the_provider_takes_no_byte_of_fails_once_the_connection_is_full', async () => {
    const size = 64 * 1024 * 1024;
    const body = Readable.from((function* () {
      for (let sent = 0; sent < size; sent += 1024 * 1024) yield Buffer.alloc(1024 * 1024, 2);
    })());
    const { ms, message } = await failsUnavailable(() => backend.put('large', body, size, META));
    assert.match(message, /took no byte|no answer/);
    // Loopback buffers take a few MB at once; then nothing moves for the timeout.
    assert.ok(ms < FIRST_BYTE_MS * 2 + 1_000, `took ${ms} ms`);
  });

  it('the_caller_aborting_is_Aborted_not_a_timeout', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('client went away')), 50);
    const started = performance.now();
    const err = await backend.get('obj', undefined, ac.signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof BackendError);
    assert.equal(err.kind, 'Aborted');
    assert.ok(performance.now() - started < FIRST_BYTE_MS);
  });
});

describe('S3 backend connect timeout', () => {
  it('a_provider_that_never_completes_the_connection_fails_once_within_the_connect_timeout', async (t) => {
    const backlog = await startFullBacklog().catch(() => undefined);
    if (!backlog) return t.skip('python3 is not available');
    const backend = new S3Backend({
      ...s3BackendConfig({ endpoint: backlog.endpoint, bucket: 'test' }, 'syn-drop'),
      connectTimeoutMs: CONNECT_MS,
      firstByteTimeoutMs: 5_000,
    });
    try {
      const { ms, message } = await failsUnavailable(() => backend.head('obj'));
      assert.match(message, /connect_timeout/);
      assert.ok(ms >= CONNECT_MS - 20 && ms < CONNECT_MS + 700, `took ${ms} ms (three attempts would take ${3 * CONNECT_MS}+)`);
    } finally {
      await backend.close();
      await backlog.stop();
    }
  });
});

describe('S3 backend deadlines on a working provider', () => {
  let server: S3rverInstance;
  let backend: S3Backend;
  before(async () => {
    server = await startS3rver();
    backend = new S3Backend({ ...s3BackendConfig(server, 'live'), firstByteTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  });
  after(async () => {
    await backend?.close();
    await server?.stop();
  });

  it('a_slow_client_body_is_never_cut_off_by_the_first_byte_timeout', async () => {
    // 10 chunks 300 ms apart: 3 s of upload with a 1 s first-byte timeout.
    const chunks = Array.from({ length: 10 }, (_, i) => Buffer.alloc(1000, 65 + i));
    const body = Readable.from((async function* () {
      for (const c of chunks) {
        await new Promise((r) => setTimeout(r, 300));
        yield c;
      }
    })());
    await backend.put('slow', body, 10_000, META);
    const got = await backend.get('slow');
    const bytes: Buffer[] = [];
    for await (const c of got) bytes.push(c as Buffer);
    assert.deepEqual(Buffer.concat(bytes), Buffer.concat(chunks));
    await backend.delete('slow');
  });
});
