import { recordingLogger } from '../../harness/logger.js';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { BackendError } from '../../../src/backends/backend.js';
import { createBackend } from '../../../src/backends/index.js';
import { mapS3Error, S3Backend } from '../../../src/backends/s3.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';
import { bufferStream, readAll, rejectsKind } from './helpers.js';
import { backendSuite, type SuiteTarget } from './suite.js';

/** Keys the failure tests must never leave visible. */
const MUST_NOT_EXIST = new Set(['short/obj', 'long/obj', 'fail/obj', 'abort/never']);

async function s3Target(prefix: string): Promise<SuiteTarget> {
  const server = await startS3rver({ buckets: ['test'] });
  const backend = new S3Backend(s3BackendConfig(server, `s3${prefix ? '-prefixed' : ''}`, { prefix }));
  return {
    backend,
    leftovers: async () =>
      (await backend.list('')).entries.map((e) => e.key).filter((k) => MUST_NOT_EXIST.has(k)),
    abortDiscards: false,
    afterGetDestroyed: (stream: Readable) => {
      const socket = (stream as IncomingMessage).socket;
      assert.ok(socket === null || socket.destroyed, 'the HTTP socket is destroyed, not returned to the pool');
    },
    teardown: async () => {
      await backend.close();
      await server.stop();
    },
  };
}

backendSuite('S3Backend on s3rver', () => s3Target(''));
backendSuite('S3Backend on s3rver with prefix', () => s3Target('tenant/a b/'));

/** A port that nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('S3Backend specifics', () => {
  let server: S3rverInstance;
  before(async () => {
    server = await startS3rver({ buckets: ['main', 'other'] });
  });
  after(async () => {
    await server?.stop();
  });

  it('prefix_is_prepended_to_every_physical_key', async () => {
    const prefixed = createBackend(s3BackendConfig(server, 'p', { prefix: 'pre/fix/' }));
    const raw = createBackend(s3BackendConfig(server, 'raw'));
    try {
      await prefixed.put('k/1', bufferStream(Buffer.from('abc')), 3, { bucket: 'b', key: 'k', versionId: 'v' });
      assert.deepEqual((await raw.list('pre/')).entries.map(({ key, size }) => ({ key, size })), [{ key: 'pre/fix/k/1', size: 3 }]);
      assert.deepEqual((await prefixed.list('')).entries.map(({ key, size }) => ({ key, size })), [{ key: 'k/1', size: 3 }]);
      assert.equal(await raw.head('k/1'), null);
      await prefixed.copy('k/1', 'k/2', { bucket: 'b', key: 'k2', versionId: 'v2' });
      assert.equal((await readAll(await raw.get('pre/fix/k/2'))).toString(), 'abc');
      await prefixed.delete('k/1');
      assert.deepEqual((await raw.list('pre/')).entries.map((e) => e.key), ['pre/fix/k/2']);
    } finally {
      await prefixed.close();
      await raw.close();
    }
  });

  it('buckets_are_isolated', async () => {
    const a = createBackend(s3BackendConfig(server, 'a', { bucket: 'main' }));
    const b = createBackend(s3BackendConfig(server, 'b', { bucket: 'other' }));
    try {
      await a.put('iso', bufferStream(Buffer.from('x')), 1, { bucket: 'b', key: 'k', versionId: 'v' });
      assert.equal(await b.head('iso'), null);
      assert.equal((await a.head('iso'))?.size, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('dead_endpoint_is_Unavailable', async () => {
    const port = await closedPort();
    const dead = new S3Backend({ ...s3BackendConfig(server, 'dead'), endpoint: `http://127.0.0.1:${port}` });
    try {
      await rejectsKind(dead.get('x'), 'Unavailable', 'dead');
      await rejectsKind(dead.head('x'), 'Unavailable', 'dead');
      await rejectsKind(dead.put('x', bufferStream(Buffer.from('abc')), 3, { bucket: 'b', key: 'k', versionId: 'v' }), 'Unavailable', 'dead');
      const err = await rejectsKind(dead.check(), 'Unavailable', 'dead');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(err.message, /"main"/);
    } finally {
      await dead.close();
    }
  });

  it('idle_timeout_cuts_a_stalled_server_but_not_a_slow_one', async () => {
    // Stalls after the headers and half the body; trickles the other path slower than the idle timeout in total.
    const srv = createServer((req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/octet-stream' });
      if (req.url?.includes('stall')) {
        res.write(Buffer.alloc(500));
        return;
      }
      let sent = 0;
      const timer = setInterval(() => {
        res.write(Buffer.alloc(100));
        sent += 100;
        if (sent === 1000) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as { port: number };
    const slow = new S3Backend(
      { ...s3BackendConfig(server, 'slow'), endpoint: `http://127.0.0.1:${port}` },
      { idleTimeoutMs: 400, maxAttempts: 1 },
    );
    try {
      const body = await readAll(await slow.get('trickle'));
      assert.equal(body.length, 1000);
      const stalled = await slow.get('stall');
      await assert.rejects(readAll(stalled), /inactivity|timed out/);
    } finally {
      await slow.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('a_server_that_never_answers_is_Unavailable', async () => {
    const srv = createServer(() => undefined);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as { port: number };
    const mute = new S3Backend(
      { ...s3BackendConfig(server, 'mute'), endpoint: `http://127.0.0.1:${port}` },
      { idleTimeoutMs: 200, maxAttempts: 1 },
    );
    try {
      await rejectsKind(mute.head('x'), 'Unavailable', 'mute');
    } finally {
      await mute.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('unknown_access_key_is_AccessDenied', async () => {
    const cfg = { ...s3BackendConfig(server, 'badkey'), accessKeyId: 'NOT-S3RVER' };
    const bad = new S3Backend(cfg);
    try {
      await rejectsKind(bad.get('x'), 'AccessDenied', 'badkey');
      await rejectsKind(bad.put('x', bufferStream(Buffer.from('a')), 1, { bucket: 'b', key: 'k', versionId: 'v' }), 'AccessDenied', 'badkey');
    } finally {
      await bad.close();
    }
  });

  it('check_on_missing_bucket_names_backend_endpoint_and_bucket', async () => {
    const missing = new S3Backend(s3BackendConfig(server, 'nobucket', { bucket: 'does-not-exist' }));
    try {
      const err = await rejectsKind(missing.check(), 'Unavailable', 'nobucket');
      assert.match(err.message, /s3 backend "nobucket"/);
      assert.match(err.message, /"does-not-exist"/);
      assert.ok(err.message.includes(server.endpoint), err.message);
      assert.match(err.message, /does not exist/);
    } finally {
      await missing.close();
    }
  });

  it('mapS3Error_classifies_provider_errors', () => {
    const sdkErr = (name: string, status: number, message = 'm') =>
      Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
    const cases: [unknown, BackendError['kind']][] = [
      [sdkErr('NoSuchKey', 404), 'NotFound'],
      [sdkErr('NotFound', 404), 'NotFound'],
      [sdkErr('NoSuchBucket', 404), 'Unavailable'],
      [sdkErr('AccessDenied', 403), 'AccessDenied'],
      [sdkErr('SignatureDoesNotMatch', 403), 'AccessDenied'],
      [sdkErr('AccessDenied', 403, 'Cannot upload files, storage cap exceeded.'), 'Full'],
      [sdkErr('Unknown', 507), 'Full'],
      [sdkErr('QuotaExceeded', 400), 'Full'],
      [sdkErr('EntityTooLarge', 400), 'Full'],
      [sdkErr('StorageQuotaExceeded', 403), 'Full'],
      [sdkErr('SlowDown', 503), 'Unavailable'],
      [sdkErr('InternalError', 500), 'Unavailable'],
      [sdkErr('Unknown', 502), 'Unavailable'],
      [sdkErr('TooManyRequests', 429), 'Unavailable'],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'Unavailable'],
      [Object.assign(new Error('socket idle'), { name: 'TimeoutError' }), 'Unavailable'],
      [Object.assign(new Error('aborted'), { name: 'AbortError' }), 'Aborted'],
      [sdkErr('InvalidArgument', 400), 'Other'],
      ['a string', 'Other'],
    ];
    for (const [err, kind] of cases) {
      const mapped = mapS3Error('bk', err, 'op');
      assert.equal(mapped.kind, kind, `${String((err as Error).name ?? err)} -> ${mapped.kind}`);
      assert.ok(mapped.message.startsWith('bk: op'));
    }
  });

  it('oversized_meta_goes_to_a_sidecar_and_an_unencodable_identity_is_refused_before_sending', async () => {
    const b = createBackend(s3BackendConfig(server, 'meta'));
    try {
      const huge = { bucket: 'b', key: 'k'.repeat(1024), versionId: 'v', contentDisposition: '☃'.repeat(300) };
      await b.put('m', bufferStream(Buffer.from('a')), 1, huge);
      assert.deepEqual((await b.head('m'))?.meta, huge);
      await b.delete('m');
      // Keys are at most 1024 bytes in S3; an identity that cannot travel in 2 KB of headers is refused.
      const impossible = { bucket: 'b', key: '☃'.repeat(1000), versionId: 'v' };
      await rejectsKind(b.put('m2', bufferStream(Buffer.from('a')), 1, impossible), 'Other', 'meta');
      assert.equal(await b.head('m2'), null);
    } finally {
      await b.close();
    }
  });
});

describe('S3Backend multipart specifics', () => {
  let stock: S3rverInstance;
  let native: S3rverInstance;
  before(async () => {
    [stock, native] = await Promise.all([startS3rver(), startS3rver({ uploadPartCopy: true })]);
  });
  after(async () => {
    await Promise.all([stock?.stop(), native?.stop()]);
  });

  /** Copies two ranges of a source whose key needs percent-encoding into a new object, under a prefix. */
  async function copyTwoRanges(server: S3rverInstance, lines: string[]): Promise<void> {
    const b = new S3Backend(s3BackendConfig(server, 'pc', { prefix: 'ten ant/' }), { logger: recordingLogger(lines) });
    try {
      const src = Buffer.from('0123456789abcdefghij');
      const srcKey = 'src/a+b?c#d %é';
      await b.put(srcKey, bufferStream(src), src.length, { bucket: 'b', key: 'k', versionId: 'v' });
      const id = await b.createMultipart('dst/obj', { bucket: 'b', key: 'k2', versionId: 'v2' });
      const e1 = await b.uploadPartCopy('dst/obj', id, 1, srcKey, { start: 2, end: 5 });
      const e2 = await b.uploadPartCopy('dst/obj', id, 2, srcKey, { start: 19, end: 19 });
      await rejectsKind(b.uploadPartCopy('dst/obj', id, 3, 'src/missing', { start: 0, end: 1 }), 'NotFound', 'pc');
      await b.completeMultipart('dst/obj', id, [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: e2 },
      ]);
      assert.equal((await readAll(await b.get('dst/obj'))).toString(), '2345j');
    } finally {
      await b.close();
    }
  }

  it('upload_part_copy_is_native_where_the_provider_has_it', async () => {
    const lines: string[] = [];
    await copyTwoRanges(native, lines);
    assert.deepEqual(lines.filter((l) => /UploadPartCopy/.test(l)), []);
  });

  it('upload_part_copy_falls_back_once_and_remembers', async () => {
    const lines: string[] = [];
    await copyTwoRanges(stock, lines);
    // One native attempt answered NotImplemented; the later copies went straight to the fallback.
    assert.equal(lines.filter((l) => /lacks UploadPartCopy/.test(l)).length, 1);
  });

  it('abort_on_a_provider_without_it_succeeds_and_is_logged', async () => {
    const lines: string[] = [];
    const b = new S3Backend(s3BackendConfig(stock, 'ab'), { logger: recordingLogger(lines) });
    try {
      const id = await b.createMultipart('ab/obj', { bucket: 'b', key: 'k', versionId: 'v' });
      await b.uploadPart('ab/obj', id, 1, bufferStream(Buffer.from('x')), 1);
      await b.abortMultipart('ab/obj', id);
      await b.abortMultipart('ab/obj', id);
      assert.equal(lines.filter((l) => /lacks AbortMultipartUpload/.test(l)).length, 1);
      assert.equal(await b.head('ab/obj'), null);
    } finally {
      await b.close();
    }
  });

  it('unknown_upload_id_is_NotFound', async () => {
    const b = new S3Backend(s3BackendConfig(stock, 'nu'));
    try {
      await rejectsKind(b.uploadPart('nu/obj', 'deadbeef', 1, bufferStream(Buffer.from('x')), 1), 'NotFound', 'nu');
      await rejectsKind(b.completeMultipart('nu/obj', 'deadbeef', [{ partNumber: 1, etag: 'x' }]), 'NotFound', 'nu');
    } finally {
      await b.close();
    }
  });

  it('dead_endpoint_multipart_is_Unavailable', async () => {
    const port = await closedPort();
    const dead = new S3Backend({ ...s3BackendConfig(stock, 'dead-mpu'), endpoint: `http://127.0.0.1:${port}` }, { maxAttempts: 1 });
    try {
      await rejectsKind(dead.createMultipart('x', { bucket: 'b', key: 'k', versionId: 'v' }), 'Unavailable', 'dead-mpu');
      await rejectsKind(dead.uploadPart('x', 'id', 1, bufferStream(Buffer.from('abc')), 3), 'Unavailable', 'dead-mpu');
      await rejectsKind(dead.abortMultipart('x', 'id'), 'Unavailable', 'dead-mpu');
    } finally {
      await dead.close();
    }
  });
});
