/**
 * The S3 operations of the load generator, each recorded in the history with its outcome: what an S3 error
 * answer means (4xx: not applied; 5xx, timeouts, resets: unknown; a refused connection: not applied, since
 * no byte reached the server), and what a read saw (the write id in the metadata, the value the body
 * verifies as).
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { HistoryRecorder, Listed, Op, Outcome, Seen } from './history.js';
import { makeValue, ValueVerifier } from './value.js';

/** Where the checker sends its requests. */
export interface Target {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style addressing (default): most self-hosted servers and the orchestrator on an IP address need it. */
  pathStyle: boolean;
}

export function clientFor(t: Target, sockets: number, timeoutMs: number): S3Client {
  const agent = { keepAlive: true, maxSockets: sockets };
  return new S3Client({
    endpoint: t.endpoint,
    region: t.region,
    forcePathStyle: t.pathStyle,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    // One attempt: a retry would hide what happened to the first one (the history records outcomes).
    maxAttempts: 1,
    // The checker verifies every body itself; an SDK checksum error would turn a corrupt read into a failed one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent), connectionTimeout: Math.min(5000, timeoutMs), socketTimeout: timeoutMs },
  });
}

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** What an error means for the operation. */
export function classify(err: unknown): { outcome: Exclude<Outcome, 'ok'>; error: string; notFound: boolean } {
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.Code ?? e.name ?? 'Error';
  let code: string | undefined;
  for (let c: unknown = err, i = 0; c && typeof c === 'object' && i < 5; c = (c as SdkError).cause, i++) code ??= (c as SdkError).code;
  const notFound = status === 404 || name === 'NoSuchKey' || name === 'NotFound';
  if (status !== undefined && status >= 400 && status < 500) return { outcome: 'fail', error: `${status} ${name}`, notFound };
  if (code === 'ECONNREFUSED') return { outcome: 'fail', error: 'ECONNREFUSED', notFound: false };
  return { outcome: 'unknown', error: status ? `${status} ${name}` : `${name}${code ? ` ${code}` : ''}: ${String(e.message ?? '').slice(0, 100)}`, notFound: false };
}

const unquote = (etag: string | undefined) => etag?.replace(/^"|"$/g, '');
const copySource = (bucket: string, key: string) => `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;

/** Runs S3 operations for one client and records them. */
export class Ops {
  constructor(
    private readonly rec: HistoryRecorder,
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly clientId: number,
    private readonly timeoutMs: number,
  ) {}

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.timeoutMs);
  }

  private failed(op: Op, err: unknown): Op {
    const c = classify(err);
    return this.rec.finish(op, c.outcome, { error: c.error });
  }

  async put(key: string, write: string, size: number): Promise<Op> {
    const v = makeValue(write, key, size);
    const op = this.rec.begin(this.clientId, 'put', key, { write, size, etags: v.etags });
    try {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: v.parts[0], ContentLength: size, Metadata: { chk: write } }),
        { abortSignal: this.signal() },
      );
      return this.rec.finish(op, 'ok');
    } catch (err) {
      return this.failed(op, err);
    }
  }

  /** CreateMultipartUpload, two parts (5 MiB and a small one), Complete: one write in the history. */
  async multipart(key: string, write: string, lastPart: number): Promise<Op> {
    const first = 5 * 1024 * 1024;
    const v = makeValue(write, key, first + lastPart, [first]);
    const op = this.rec.begin(this.clientId, 'mpu', key, { write, size: v.size, etags: v.etags });
    let uploadId: string | undefined;
    let completing = false;
    try {
      const created = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: { chk: write } }), { abortSignal: this.signal() });
      uploadId = created.UploadId!;
      const parts = [];
      for (let i = 0; i < v.parts.length; i++) {
        const p = v.parts[i]!;
        const r = await this.s3.send(
          new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: p, ContentLength: p.length }),
          { abortSignal: this.signal() },
        );
        parts.push({ PartNumber: i + 1, ETag: r.ETag! });
      }
      completing = true;
      await this.s3.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), {
        abortSignal: this.signal(),
      });
      return this.rec.finish(op, 'ok');
    } catch (err) {
      const c = classify(err);
      // Before Complete was sent nothing can become visible: the write definitely did not happen.
      if (!completing) {
        if (uploadId) await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), { abortSignal: this.signal() }).catch(() => {});
        return this.rec.finish(op, 'fail', { error: `${c.error} (before Complete)` });
      }
      if (c.outcome === 'fail') {
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), { abortSignal: this.signal() }).catch(() => {});
      }
      return this.rec.finish(op, c.outcome, { error: c.error });
    }
  }

  async copy(source: string, key: string, write: string): Promise<Op> {
    const op = this.rec.begin(this.clientId, 'copy', key, { write, source });
    try {
      const r = await this.s3.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: copySource(this.bucket, source), MetadataDirective: 'REPLACE', Metadata: { chk: write } }),
        { abortSignal: this.signal() },
      );
      const etag = unquote(r.CopyObjectResult?.ETag);
      return this.rec.finish(op, 'ok', etag ? { etag } : {});
    } catch (err) {
      return this.failed(op, err);
    }
  }

  async delete(key: string): Promise<Op> {
    const op = this.rec.begin(this.clientId, 'delete', key);
    try {
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: this.signal() });
      return this.rec.finish(op, 'ok');
    } catch (err) {
      return this.failed(op, err);
    }
  }

  async get(key: string): Promise<Op> {
    const op = this.rec.begin(this.clientId, 'get', key);
    const signal = this.signal();
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
      const body = r.Body as Readable;
      const verifier = new ValueVerifier();
      let n = 0;
      const onAbort = () => body.destroy(new Error('timed out reading the body'));
      signal.addEventListener('abort', onAbort);
      try {
        for await (const chunk of body) {
          n += (chunk as Buffer).length;
          verifier.update(chunk as Buffer);
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      // A connection closed short of Content-Length is a failed read the client detects, not a value.
      if (r.ContentLength !== undefined && n < r.ContentLength) return this.rec.finish(op, 'unknown', { error: `body ended after ${n} of ${r.ContentLength} bytes` });
      const p = verifier.finish();
      const seen: Seen = { write: r.Metadata?.['chk'] ?? '', ...(r.ETag ? { etag: unquote(r.ETag)! } : {}), ...(r.ContentLength !== undefined ? { size: r.ContentLength } : {}) };
      if (p.ok) (seen.origin = p.writeId), (seen.bodyKey = p.key);
      else seen.bodyError = p.error;
      return this.rec.finish(op, 'ok', { seen });
    } catch (err) {
      const c = classify(err);
      if (c.notFound && c.outcome === 'fail') return this.rec.finish(op, 'ok', { seen: { write: null } });
      return this.rec.finish(op, c.outcome, { error: c.error });
    }
  }

  async head(key: string): Promise<Op> {
    const op = this.rec.begin(this.clientId, 'head', key);
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: this.signal() });
      const seen: Seen = { write: r.Metadata?.['chk'] ?? '', ...(r.ETag ? { etag: unquote(r.ETag)! } : {}), ...(r.ContentLength !== undefined ? { size: r.ContentLength } : {}) };
      return this.rec.finish(op, 'ok', { seen });
    } catch (err) {
      const c = classify(err);
      if (c.notFound && c.outcome === 'fail') return this.rec.finish(op, 'ok', { seen: { write: null } });
      return this.rec.finish(op, c.outcome, { error: c.error });
    }
  }

  /** ListObjectsV2 of the whole prefix, `pageSize` keys a page: one operation over all its pages. */
  async list(prefix: string, pageSize: number): Promise<Op> {
    const op = this.rec.begin(this.clientId, 'list', prefix);
    const listed: Listed[] = [];
    try {
      let token: string | undefined;
      do {
        const r = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: pageSize, ...(token ? { ContinuationToken: token } : {}) }),
          { abortSignal: this.signal() },
        );
        for (const c of r.Contents ?? []) listed.push({ key: c.Key!, etag: unquote(c.ETag) ?? '', size: c.Size ?? -1 });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return this.rec.finish(op, 'ok', { listed });
    } catch (err) {
      return this.failed(op, err);
    }
  }

  /** Aborts the multipart uploads left under `prefix` (not recorded: housekeeping). Returns how many. */
  async abortUploads(prefix: string): Promise<number> {
    let n = 0;
    const r = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }), { abortSignal: this.signal() });
    for (const u of r.Uploads ?? []) {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! }), { abortSignal: this.signal() });
      n++;
    }
    return n;
  }
}
