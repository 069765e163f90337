import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BackendError, type BackendErrorKind } from '../../../src/backends/backend.js';

/** Reads a (small) stream to one Buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A one-shot stream over `buf`, in 64 KiB chunks so that it exercises backpressure. */
export function bufferStream(buf: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 65536) chunks.push(buf.subarray(i, i + 65536));
  return Readable.from(chunks, { objectMode: false });
}

/**
 * A lazily generated pseudo-random stream of `size` bytes: nothing is produced before it is read, so a
 * consumer that buffers the whole body shows up as memory growth. `digest()` is the SHA-256 of what was
 * produced, available after the stream ended.
 */
export function generatedStream(
  size: number,
  onRead: () => void = () => undefined,
  chunkSize = 256 * 1024,
): { stream: Readable; digest(): string } {
  const base = randomBytes(chunkSize);
  const hash = createHash('sha256');
  let produced = 0;
  let index = 0;
  const stream = new Readable({
    highWaterMark: chunkSize,
    read() {
      onRead();
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, size - produced);
      const chunk = Buffer.from(base.subarray(0, n));
      // Make every chunk different so a misplaced or repeated chunk changes the hash.
      if (n >= 4) chunk.writeUInt32BE(index, 0);
      index++;
      produced += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

/** SHA-256 of a stream, consumed chunk by chunk. */
export async function hashStream(stream: Readable): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    hash.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { digest: hash.digest('hex'), bytes };
}

/**
 * A stream that yields `before` bytes, then calls `onStall` and never ends (until destroyed): the shape of a
 * client that stops sending mid-upload.
 */
export function stallingStream(before: number, onStall: () => void): Readable {
  let sent = 0;
  let stalled = false;
  return new Readable({
    read() {
      if (sent < before) {
        const n = Math.min(65536, before - sent);
        sent += n;
        this.push(Buffer.alloc(n, 0x61));
      } else if (!stalled) {
        stalled = true;
        onStall();
      }
    },
  });
}

/** Asserts that `p` rejects with a BackendError of `kind` that names the backend. */
export async function rejectsKind(p: Promise<unknown>, kind: BackendErrorKind, backend: string): Promise<BackendError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof BackendError, `expected BackendError ${kind}, got ${String(caught)}`);
  assert.equal(caught.kind, kind, `expected kind ${kind}, got ${caught.kind}: ${caught.message}`);
  assert.equal(caught.backend, backend);
  assert.ok(caught.message.includes(backend), `message names the backend: ${caught.message}`);
  return caught;
}

/** A logical key of exactly 1024 UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters. */
export function longUnicodeKey(): string {
  let key = 'dir/é/ключ/日本/🙂/';
  while (Buffer.byteLength(key) + 3 <= 1024) key += '語';
  while (Buffer.byteLength(key) < 1024) key += 'a';
  assert.equal(Buffer.byteLength(key), 1024);
  return key;
}
