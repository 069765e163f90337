/**
 * Helpers shared by the operation handlers: the handler context, verified request bodies, the owner
 * element, and S3's URL encoding of listed names.
 */
import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { BodyDigests, ChecksumAlgorithm, MultipartStore, ObjectStore, TenantDirectory, UploadInfo } from '../../core/types.js';
import type { S3ServerConfig } from '../../config/types.js';
import type { Logger } from '../../log.js';
import type { AuthenticatedRequest, RequestHead } from '../auth/types.js';
import { createBodyVerifier } from '../auth/body.js';
import { checksumPlan } from '../checksums.js';
import { S3Error } from '../errors.js';
import { el, type Xml } from '../xml.js';

/** Core's multipart store plus the upload lookup UploadPart needs (the upload's checksum algorithm). */
export interface S3MultipartStore extends MultipartStore {
  getUpload(bucket: string, key: string, uploadId: string): Promise<UploadInfo>;
}

/** Everything a handler may use; handlers never see uWS. */
export interface OpContext {
  store: ObjectStore;
  multipart: S3MultipartStore;
  tenants: TenantDirectory;
  config: S3ServerConfig;
  /** Request-scoped logger (carries the request id). */
  log: Logger;
  requestId: string;
  auth: AuthenticatedRequest;
  head: RequestHead;
  /** The raw (undecoded, unverified) request body. */
  body: Readable;
  /** Fires when the client goes away. */
  signal: AbortSignal;
}

/** A verified body stream plus the first S3Error it failed with (so callers can report it, not core's wrapper). */
export interface VerifiedBody {
  stream: Readable;
  digests: () => BodyDigests;
  /** The S3Error the body failed with (bad signature, bad digest, timeout), if any. */
  failure(): S3Error | undefined;
}

/**
 * Pipes the raw body through the SigV4/aws-chunked/checksum verifier. `algorithm` makes the verifier
 * compute that checksum when the client sent none (UploadPart of an upload created with an algorithm):
 * it is offered as x-amz-sdk-checksum-algorithm, so a client that did send a checksum keeps its own.
 */
export function verifiedBody(ctx: OpContext, opts: { algorithm?: ChecksumAlgorithm } = {}): VerifiedBody {
  let head = ctx.head;
  if (opts.algorithm !== undefined && checksumPlan(head.headers).algorithm === undefined) {
    head = { ...head, headers: { ...head.headers, 'x-amz-sdk-checksum-algorithm': opts.algorithm } };
  }
  const verifier = createBodyVerifier(ctx.auth, head);
  let failure: S3Error | undefined;
  const note = (err: unknown): void => {
    if (failure === undefined && err instanceof S3Error) failure = err;
  };
  verifier.stream.on('error', note);
  pipeline(ctx.body, verifier.stream, (err) => {
    if (err) note(err);
  });
  return { stream: verifier.stream, digests: () => verifier.digests(), failure: () => failure };
}

/**
 * How far past its limit an XML body is still read (and discarded) before the error is sent: a client that
 * is still sending when we answer and close would see a reset connection instead of the error.
 */
const OVERSIZE_DRAIN = 64 * 1024 * 1024;

/**
 * Reads a small verified body (XML requests) of at most `limit` bytes, keeping no more than that: a larger
 * body is MaxMessageLengthExceeded (read to its end, up to {@link OVERSIZE_DRAIN} more, so the client
 * hears it), and one that is not valid UTF-8 is MalformedXML.
 */
export async function readSmallBody(ctx: OpContext, limit: number): Promise<{ text: string; digests: BodyDigests }> {
  const v = verifiedBody(ctx);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of v.stream) {
      n += (chunk as Buffer).length;
      if (n <= limit) chunks.push(chunk as Buffer);
      else if (n > limit + OVERSIZE_DRAIN) break;
      else chunks.length = 0;
    }
  } catch (err) {
    v.stream.destroy();
    throw v.failure() ?? err;
  }
  if (n > limit) {
    v.stream.destroy();
    throw new S3Error('MaxMessageLengthExceeded', `Your request was too big: this request body may hold at most ${limit} bytes.`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks));
  } catch (err) {
    throw new S3Error('MalformedXML', undefined, {}, { cause: err });
  }
  return { text, digests: v.digests() };
}

/** Checks Content-MD5 (when sent) against the body's MD5. */
export function checkContentMd5(ctx: OpContext, md5Hex: string): void {
  const sent = ctx.head.headers['content-md5'];
  if (sent === undefined) return;
  const decoded = Buffer.from(sent, 'base64');
  if (decoded.length !== 16 || decoded.toString('base64') !== sent.trim()) throw new S3Error('InvalidDigest');
  if (decoded.toString('hex') !== md5Hex) throw new S3Error('BadDigest', undefined, { ExpectedDigest: sent });
}

/**
 * The Owner element (or another element of the same shape, e.g. Initiator): a stable canonical-looking
 * id derived from the access key, and its display name.
 */
export function ownerXml(ctx: OpContext, name = 'Owner'): Xml {
  return el(name, [el('ID', ownerId(ctx)), el('DisplayName', ctx.auth.credential.accessKeyId)]);
}

/** The owner id reported to this credential (Owner/ID), also what `x-amz-expected-bucket-owner` is checked against. */
export function ownerId(ctx: Pick<OpContext, 'auth'>): string {
  return createHash('sha256').update(`owner:${ctx.auth.credential.accessKeyId}`).digest('hex');
}

/**
 * S3's `encoding-type=url`: form-style URL encoding (space → `+`, so a literal `+` is `%2B`) with `/`
 * kept, which is what botocore's unquote_plus and the AWS SDKs decode.
 */
export function s3UrlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** Discards an unexpected request body so the connection can be reused. */
export function drainBody(ctx: OpContext): void {
  ctx.body.resume();
  ctx.body.on('error', () => {});
}
