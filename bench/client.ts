/**
 * The one piece of client code both sides of the benchmark use: an @aws-sdk/client-s3 client over plain
 * http with keep-alive, object bodies generated on the fly, and GETs that hash and discard what they read.
 * The two sides differ only in the endpoint, the credentials and the checksum mode.
 */
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Target } from './setup.js';

/**
 * `sdk-default`: the SDK's own defaults (PutObject sends a CRC32: as a header for buffers, as an aws-chunked
 * trailer for streams; GetObject asks for and validates the checksum). `when-required`: no checksums unless
 * the operation demands one, so bodies are sent plain.
 */
export type ChecksumMode = 'sdk-default' | 'when-required';

/** Chunk size of generated bodies: what a file read stream of a large file would typically hand out. */
const CHUNK = 1024 * 1024;

let block: Buffer | undefined;
/** 1 MiB of fixed pseudo-random bytes (incompressible, reproducible across runs). */
function baseBlock(): Buffer {
  if (!block) {
    block = Buffer.alloc(CHUNK);
    let x = 0x9e3779b9;
    for (let i = 0; i < CHUNK; i += 4) {
      // xorshift32: fast and good enough to defeat any accidental compression or dedup.
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      block.writeUInt32LE(x >>> 0, i);
    }
  }
  return block;
}

/**
 * The object's bytes, one freshly allocated chunk at a time (the SDK may still hold a chunk when it asks
 * for the next, so chunks are never reused). Chunk i is the base block with i stamped into its first 8
 * bytes, so a GET that returns chunks out of order or repeated fails the hash check.
 */
export function* payload(size: number): Generator<Buffer> {
  const base = baseBlock();
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
    const n = Math.min(CHUNK, size - off);
    const chunk = Buffer.allocUnsafe(n);
    base.copy(chunk, 0, 0, n);
    if (n >= 8) chunk.writeBigUInt64LE(BigInt(i), 0);
    yield chunk;
  }
}

/** The whole payload as one Buffer; only for small objects. */
export function payloadBuffer(size: number): Buffer {
  return Buffer.concat([...payload(size)]);
}

const digests = new Map<number, string>();
/** SHA-256 of {@link payload}(size), computed once per size. */
export function payloadDigest(size: number): string {
  let d = digests.get(size);
  if (d === undefined) {
    const h = createHash('sha256');
    for (const chunk of payload(size)) h.update(chunk);
    d = h.digest('hex');
    digests.set(size, d);
  }
  return d;
}

/** A client for `target`; `sockets` bounds the keep-alive pool (at least the benchmark's concurrency). */
export function makeClient(target: Target, mode: ChecksumMode, sockets: number): S3Client {
  const checksums =
    mode === 'when-required' ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const : {};
  return new S3Client({
    endpoint: target.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: target.credentials,
    // A retry would hide a failure and distort the timing: every attempt counts.
    maxAttempts: 1,
    ...checksums,
    // Idle sockets are dropped after 2 s, before either server's keep-alive timeout (s3rver 5 s, uWS 10 s):
    // otherwise a request can go out on a socket the server is closing, and fail with EPIPE or ECONNRESET.
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: sockets, timeout: 2_000 }) },
  });
}

/** PUT with a Buffer body (small objects: what an application holding the bytes would do). */
export async function putBuffer(client: S3Client, target: Target, key: string, body: Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body, ContentLength: body.length }));
}

/** PUT streamed from the generator; the client never holds more than a few chunks. */
export async function putStream(client: S3Client, target: Target, key: string, size: number): Promise<void> {
  const body = Readable.from(payload(size), { objectMode: false, highWaterMark: CHUNK });
  await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body, ContentLength: size }));
}

/**
 * GET that reads the whole body, hashing and discarding it, and fails unless the bytes are exactly
 * {@link payload}(size).
 */
export async function getAndVerify(client: S3Client, target: Target, key: string, size: number): Promise<void> {
  const res = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
  if (!(res.Body instanceof Readable)) throw new Error(`GET ${key}: body is not a Node stream`);
  const h = createHash('sha256');
  let n = 0;
  for await (const chunk of res.Body as AsyncIterable<Buffer>) {
    h.update(chunk);
    n += chunk.length;
  }
  if (n !== size) throw new Error(`GET ${key}: ${n} bytes, expected ${size}`);
  if (h.digest('hex') !== payloadDigest(size)) throw new Error(`GET ${key}: content differs from what was PUT`);
}
