/**
 * The one piece of client code both sides of the benchmark use: an @aws-sdk/client-s3 client over plain
 * http with keep-alive, object bodies generated on the fly, and GETs that hash and discard what they read.
 * The two sides differ only in the endpoint, the credentials and the checksum mode.
 */
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { Target } from './setup.js';

/**
 * `sdk-default`: the SDK's own defaults (PutObject sends a CRC32: as a header for buffers, as an aws-chunked
 * trailer for streams; GetObject asks for and validates the checksum). `when-required`: no checksums unless
 * the operation demands one, so bodies are sent plain.
 */
export type ChecksumMode = 'sdk-default' | 'when-required';

/** Chunk size of generated bodies: what a file read stream of a large file would typically hand out. */
const CHUNK = 1024 * 1024;
/** Multipart part sizes must be a multiple of this (see {@link payloadSlice}). */
export const PAYLOAD_CHUNK = CHUNK;

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

/** Chunk i of every payload, `n` bytes long: the base block with i stamped into its first 8 bytes. */
function chunkAt(i: number, n: number): Buffer {
  const chunk = Buffer.allocUnsafe(n);
  baseBlock().copy(chunk, 0, 0, n);
  if (n >= 8) chunk.writeBigUInt64LE(BigInt(i), 0);
  return chunk;
}

/**
 * The object's bytes, one freshly allocated chunk at a time (the SDK may still hold a chunk when it asks
 * for the next, so chunks are never reused). Chunk i is stamped with i, so a GET that returns chunks out
 * of order or repeated fails the hash check.
 */
export function* payload(size: number): Generator<Buffer> {
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) yield chunkAt(i, Math.min(CHUNK, size - off));
}

/**
 * Bytes [offset, offset + length) of {@link payload}, as one Buffer: a multipart part. `offset` must be a
 * multiple of the 1 MiB chunk, so a part is a run of whole chunks (the last one possibly short).
 */
export function payloadSlice(offset: number, length: number): Buffer {
  if (offset % CHUNK !== 0) throw new Error(`payloadSlice: offset ${offset} is not a multiple of ${CHUNK}`);
  const out = Buffer.allocUnsafe(length);
  const base = baseBlock();
  for (let done = 0, i = offset / CHUNK; done < length; done += CHUNK, i++) {
    const n = Math.min(CHUNK, length - done);
    base.copy(out, done, 0, n);
    if (n >= 8) out.writeBigUInt64LE(BigInt(i), done);
  }
  return out;
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

/** How a multipart upload is cut and sent. */
export interface MultipartShape {
  /** Bytes per part (the last part may be shorter); a multiple of {@link PAYLOAD_CHUNK}. */
  partSize: number;
  /** UploadPart requests in flight at once. */
  parallel: number;
}

/** Timings of one multipart upload, in ms. */
export interface MultipartTiming {
  /** CreateMultipartUpload through CompleteMultipartUpload, both included. */
  totalMs: number;
  /** The CompleteMultipartUpload call alone. */
  completeMs: number;
}

/**
 * Uploads {@link payload}(size) as a multipart upload: CreateMultipartUpload, UploadPart with
 * `shape.parallel` in flight (each part a Buffer built when its turn comes, so the client holds at most
 * `parallel` parts), CompleteMultipartUpload. On failure the upload is aborted and the first error thrown.
 */
export async function multipartUpload(client: S3Client, target: Target, key: string, size: number, shape: MultipartShape): Promise<MultipartTiming> {
  const t0 = performance.now();
  const where = { Bucket: target.bucket, Key: key };
  const { UploadId } = await client.send(new CreateMultipartUploadCommand(where));
  if (!UploadId) throw new Error(`CreateMultipartUpload ${key}: no UploadId`);
  const count = Math.max(1, Math.ceil(size / shape.partSize));
  const parts: CompletedPart[] = new Array<CompletedPart>(count);
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++;
      const offset = i * shape.partSize;
      const length = Math.min(shape.partSize, size - offset);
      try {
        const res = await client.send(
          new UploadPartCommand({ ...where, UploadId, PartNumber: i + 1, Body: payloadSlice(offset, length), ContentLength: length }),
        );
        if (!res.ETag) throw new Error(`UploadPart ${i + 1} of ${key}: no ETag`);
        // With SDK defaults each part carries a CRC32; a Complete that lists it is what lib-storage sends.
        parts[i] = { PartNumber: i + 1, ETag: res.ETag, ...(res.ChecksumCRC32 ? { ChecksumCRC32: res.ChecksumCRC32 } : {}) };
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(shape.parallel, count) }, worker));
  try {
    if (failure !== undefined) throw failure;
    const c0 = performance.now();
    await client.send(new CompleteMultipartUploadCommand({ ...where, UploadId, MultipartUpload: { Parts: parts } }));
    const end = performance.now();
    return { totalMs: end - t0, completeMs: end - c0 };
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ ...where, UploadId })).catch(() => undefined);
    throw err;
  }
}
