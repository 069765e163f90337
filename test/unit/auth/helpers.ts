/**
 * Test helpers for SigV4: the AWS SDK's own signer (@smithy/signature-v4 with its Sha256), an aws-chunked
 * encoder (written from the AWS documentation, checked against its worked example), stream plumbing.
 */
import { createHash, createHmac } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import type { Credential } from '../../../src/core/types.js';
import { S3Error } from '../../../src/s3/errors.js';
import { createBodyVerifier } from '../../../src/s3/auth/body.js';
import type { AuthenticatedRequest, CredentialLookup, RequestHead } from '../../../src/s3/auth/types.js';
import type { BodyDigests } from '../../../src/core/types.js';

export const REGION = 'us-east-1';
/** A fixed "now" for tests: 2024-03-01T12:00:00Z. */
export const NOW = Date.UTC(2024, 2, 1, 12, 0, 0);

/** A credential store with one or more keys. */
export function lookupOf(...creds: Credential[]): CredentialLookup {
  const map = new Map(creds.map((c) => [c.accessKeyId, c]));
  return async (id) => map.get(id);
}

export const ALICE: Credential = {
  accessKeyId: 'AKIDALICE',
  secretAccessKey: 'alice/secret+key=with+symbols',
  buckets: ['b'],
};

/** Encodes a path segment the way the AWS SDK does for S3 keys (extendedEncodeURIComponent). */
export function sdkEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A request to sign: path already encoded; query as name → value(s), encoded into rawQuery by the SDK's rules. */
export interface SignInput {
  method: string;
  path: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  /** Payload hash header value; omitted → the hex SHA-256 of `body`. */
  payloadHash?: string;
  body?: Buffer | string;
  credential?: Credential;
  region?: string;
  date?: number;
}

/** The raw query the SDK would put on the wire for `query`. */
export function sdkRawQuery(query: Record<string, string | string[]> = {}): string {
  const parts: string[] = [];
  for (const k of Object.keys(query).sort()) {
    const v = query[k]!;
    for (const one of Array.isArray(v) ? [...v].sort() : [v]) parts.push(`${sdkEncode(k)}=${sdkEncode(one)}`);
  }
  return parts.join('&');
}

function lowerHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

/** Signs with the SDK's SignatureV4 (Authorization header) and returns the RequestHead a server sees. */
export async function signHead(input: SignInput): Promise<RequestHead> {
  const cred = input.credential ?? ALICE;
  const signer = new SignatureV4({
    credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey },
    region: input.region ?? REGION,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const body = input.body === undefined ? Buffer.alloc(0) : Buffer.from(input.body);
  const headers: Record<string, string> = {
    host: '127.0.0.1:9000',
    'x-amz-content-sha256': input.payloadHash ?? createHash('sha256').update(body).digest('hex'),
    ...input.headers,
  };
  const signed = await signer.sign(
    { method: input.method, protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: input.path, query: input.query ?? {}, headers, body },
    { signingDate: new Date(input.date ?? NOW) },
  );
  return {
    method: input.method,
    rawPath: input.path,
    rawQuery: sdkRawQuery(input.query),
    headers: lowerHeaders(signed.headers as Record<string, string>),
  };
}

/** Presigns with the SDK's SignatureV4 and returns the RequestHead of the URL being fetched. */
export async function presignHead(
  input: SignInput & { expiresIn: number; extraHeaders?: Record<string, string> },
): Promise<RequestHead> {
  const cred = input.credential ?? ALICE;
  const signer = new SignatureV4({
    credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: cred.secretAccessKey },
    region: input.region ?? REGION,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const headers = { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...input.headers };
  const signed = await signer.presign(
    { method: input.method, protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: input.path, query: input.query ?? {}, headers },
    { signingDate: new Date(input.date ?? NOW), expiresIn: input.expiresIn },
  );
  const query = signed.query as Record<string, string | string[]>;
  const wireHeaders = lowerHeaders(signed.headers as Record<string, string>);
  return {
    method: input.method,
    rawPath: input.path,
    rawQuery: sdkRawQuery(query),
    headers: { ...wireHeaders, ...input.extraHeaders },
  };
}

/** Asserts-friendly: the S3 error code a promise rejects with, or 'ok'. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
}

/** Feeds `raw` (as the given slices) through a body verifier; resolves to decoded bytes and digests. */
export async function runBody(
  auth: AuthenticatedRequest,
  head: RequestHead,
  slices: Buffer[],
): Promise<{ body: Buffer; digests: BodyDigests }> {
  const v = createBodyVerifier(auth, head);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(slices, { objectMode: false }),
    v.stream,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(Buffer.from(chunk));
        cb();
      },
    }),
  );
  return { body: Buffer.concat(out), digests: v.digests() };
}

/** Splits a buffer into pieces of random size (deterministic for a seed). */
export function randomSlices(buf: Buffer, seed: number, max = 97): Buffer[] {
  const out: Buffer[] = [];
  let s = seed >>> 0 || 1;
  let i = 0;
  while (i < buf.length) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = 1 + (s % max);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Every single byte as its own slice. */
export function byteSlices(buf: Buffer): Buffer[] {
  return Array.from(buf, (b) => Buffer.from([b]));
}

const EMPTY = createHash('sha256').digest('hex');

/**
 * Encodes a body as signed aws-chunked, following the AWS documentation independently of the code under
 * test (own HMAC chain). `trailer` adds a checksum trailer plus x-amz-trailer-signature.
 */
export function encodeSignedChunked(opts: {
  data: Buffer;
  chunkSize: number;
  signingKey: Buffer;
  seed: string;
  amzDate: string;
  scope: string;
  trailer?: { name: string; value: string };
}): Buffer {
  const mac = (s: string): string => createHmac('sha256', opts.signingKey).update(s).digest('hex');
  const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
  const parts: Buffer[] = [];
  let prev = opts.seed;
  const chunks: Buffer[] = [];
  for (let i = 0; i < opts.data.length; i += opts.chunkSize) chunks.push(opts.data.subarray(i, i + opts.chunkSize));
  chunks.push(Buffer.alloc(0));
  for (const c of chunks) {
    prev = mac(`AWS4-HMAC-SHA256-PAYLOAD\n${opts.amzDate}\n${opts.scope}\n${prev}\n${EMPTY}\n${sha(c)}`);
    parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${prev}\r\n`), c);
    if (c.length > 0 || opts.trailer === undefined) parts.push(Buffer.from('\r\n'));
  }
  if (opts.trailer !== undefined) {
    const line = `${opts.trailer.name}:${opts.trailer.value}`;
    const sig = mac(`AWS4-HMAC-SHA256-TRAILER\n${opts.amzDate}\n${opts.scope}\n${prev}\n${sha(`${line}\n`)}`);
    parts.push(Buffer.from(`${line}\r\nx-amz-trailer-signature:${sig}\r\n\r\n`));
  }
  return Buffer.concat(parts);
}

/** Encodes a body as unsigned aws-chunked with an optional trailer (the SDK's STREAMING-UNSIGNED-PAYLOAD-TRAILER shape). */
export function encodeUnsignedChunked(data: Buffer, chunkSize: number, trailer?: { name: string; value: string }): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) {
    const c = data.subarray(i, i + chunkSize);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n'));
  if (trailer !== undefined) parts.push(Buffer.from(`${trailer.name}:${trailer.value}\r\n`));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}
