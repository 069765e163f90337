/**
 * @aws-sdk/lib-storage `Upload` with its defaults (5 MiB parts, queue of 4, the SDK's default CRC32
 * checksums, which make it create the upload with ChecksumAlgorithm CRC32) against a real orchestrator:
 * a 17 MiB stream of unknown length goes up in 4 parts and reads back identical; an upload aborted through
 * its AbortController leaves no multipart upload and no object behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { objectSha256 } from '../../harness/clients.js';
import { clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const MiB = 1024 * 1024;

let t: TestOrchestrator;

/**
 * A stream of `size` pseudo-random bytes in 256 KiB chunks and their SHA-256 (known once it ended).
 * `gate`, when given, is awaited before each chunk past `gateAfter` bytes: it holds the stream so an abort
 * lands while the upload is still in progress.
 */
function patternStream(size: number, seed: number, gate?: { after: number; wait: Promise<void> }): { stream: Readable; sha256: () => string } {
  const h = createHash('sha256');
  let sent = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    while (sent < size) {
      if (gate && sent >= gate.after) await gate.wait;
      const n = Math.min(256 * 1024, size - sent);
      const b = Buffer.alloc(n);
      for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((Math.imul(seed, 2654435761) ^ Math.imul(sent + i + 1, 40503)) >>> 0, i);
      h.update(b);
      sent += n;
      yield b;
    }
  }
  return { stream: Readable.from(gen(), { objectMode: false }), sha256: () => h.digest('hex') };
}

/** A client for the orchestrator that reports, per command name, a promise of its first completion. */
function watchedClient(): { client: S3Client; completed: (command: string) => Promise<void> } {
  const client = clientFor(t.endpoint);
  const waiters = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const waiter = (name: string) => {
    let w = waiters.get(name);
    if (!w) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      w = { promise, resolve };
      waiters.set(name, w);
    }
    return w;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } finally {
        waiter(context.commandName ?? '?').resolve();
      }
    },
    { step: 'initialize', name: 'completionWatcher' },
  );
  return { client, completed: (name) => waiter(name).promise };
}

describe('@aws-sdk/lib-storage Upload', () => {
  before(async () => {
    t = await startTestOrchestrator();
  });
  after(async () => {
    await t?.stop();
  });

  it('upload_17MiB_stream_with_defaults_then_get_matches', async () => {
    const src = patternStream(17 * MiB, 17);
    const upload = new Upload({ client: t.client, params: { Bucket: 'data', Key: 'lib-storage/17MiB.bin', Body: src.stream } });
    const parts = new Set<number>();
    upload.on('httpUploadProgress', (p) => {
      if (p.part !== undefined) parts.add(p.part);
    });
    const res = await upload.done();
    assert.match(res.ETag ?? '', /-4"$/, '17 MiB in 5 MiB parts is 4 parts');
    assert.deepEqual([...parts].sort(), [1, 2, 3, 4]);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'lib-storage/17MiB.bin' }));
    assert.equal(head.ContentLength, 17 * MiB);
    assert.equal(await objectSha256(t.client, 'data', 'lib-storage/17MiB.bin'), src.sha256());
  });

  it('upload_below_part_size_is_a_single_put', async () => {
    const src = patternStream(3 * MiB + 1, 3);
    const res = await new Upload({ client: t.client, params: { Bucket: 'data', Key: 'lib-storage/small.bin', Body: src.stream } }).done();
    assert.doesNotMatch(res.ETag ?? '', /-/);
    assert.equal(await objectSha256(t.client, 'data', 'lib-storage/small.bin'), src.sha256());
  });

  it('abort_midway_leaves_no_upload_and_no_object', { timeout: 30_000 }, async () => {
    const key = 'lib-storage/aborted.bin';
    const { client, completed } = watchedClient();
    try {
      let release!: () => void;
      const wait = new Promise<void>((r) => (release = r));
      // The stream stops after 12 MiB until released: parts 1 and 2 go up, part 3 waits for data.
      const src = patternStream(30 * MiB, 30, { after: 12 * MiB, wait });
      const abortController = new AbortController();
      const upload = new Upload({ client, params: { Bucket: 'data', Key: key, Body: src.stream }, abortController });
      const done = upload.done();
      // `done` in the race surfaces a failure of CreateMultipartUpload/UploadPart instead of a hang.
      await Promise.race([completed('UploadPartCommand'), done]);
      abortController.abort();
      await assert.rejects(done, { name: 'AbortError' });
      release();
      // lib-storage sends AbortMultipartUpload from its background loop once in-flight parts settle.
      await completed('AbortMultipartUploadCommand');
      const uploads = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'lib-storage/' }));
      assert.deepEqual(uploads.Uploads ?? [], []);
      await assert.rejects(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })), { name: 'NotFound' });
    } finally {
      client.destroy();
    }
  });
});
