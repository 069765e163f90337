/**
 * Helpers for the end-to-end S3 tests: reading SDK bodies, asserting S3 errors (code, status, request
 * id), raw signed requests over node:http (to send what no SDK would: tampered bodies, skewed clocks,
 * bad chunk signatures, half bodies), and an inventory of what the backends physically hold.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';
import { S3RVER_CREDENTIALS } from '../../harness/s3rver.js';

/** Hex SHA-256. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes (fast, no crypto needed): the same seed gives the same bytes. */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/** Collects an SDK response body (GetObject `Body`). */
export async function bytesOf(body: unknown): Promise<Buffer> {
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  assert.ok(b?.transformToByteArray, 'response has a body');
  return Buffer.from(await b.transformToByteArray());
}

/** An S3 error as the SDK reports it. */
export interface SdkFailure {
  code: string;
  status: number;
  requestId: string | undefined;
}

/** Awaits `p`, which must reject with an S3ServiceException; returns its code, HTTP status and request id. */
export async function sdkFailure(p: Promise<unknown>): Promise<SdkFailure> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err;
    return { code: err.name, status: err.$metadata.httpStatusCode ?? 0, requestId: err.$metadata.requestId };
  }
  assert.fail('expected the request to fail');
}

/** Asserts `p` fails with S3 error `code` and HTTP `status`, and that the error carries a request id. */
export async function expectS3Error(p: Promise<unknown>, code: string, status: number): Promise<SdkFailure> {
  const f = await sdkFailure(p);
  assert.deepEqual({ code: f.code, status: f.status }, { code, status });
  assert.match(f.requestId ?? '', /^[0-9A-F]{16}$/, 'error responses carry x-amz-request-id');
  return f;
}

/** Fields of an S3 XML error body (`<Error><Code>…`), by element name. */
export function parseErrorXml(xml: string): Record<string, string> {
  const m = /<Error>([\s\S]*)<\/Error>/.exec(xml);
  assert.ok(m, `not an S3 error document: ${xml.slice(0, 300)}`);
  const out: Record<string, string> = {};
  for (const f of m[1]!.matchAll(/<([A-Za-z0-9]+)>([^<]*)<\/\1>/g)) out[f[1]!] = f[2]!;
  return out;
}

/** A response read completely by {@link rawRequest}. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** What {@link rawRequest} signs and sends. */
export interface RawRequest {
  method: string;
  /** Path as sent on the wire (already URL-encoded), e.g. `/data/a%20b`. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** The body to send. */
  body?: Buffer | string;
  /** The body the signature covers (default: `body`); differing from `body` simulates tampering. */
  signedBody?: Buffer | string;
  /** Value of x-amz-content-sha256 (default: hex SHA-256 of `signedBody`). */
  payloadHash?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  signingDate?: Date;
  /** Send no Authorization at all. */
  anonymous?: boolean;
}

function wireQuery(query: Record<string, string> = {}): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return Object.keys(query)
    .sort()
    .map((k) => `${enc(k)}=${enc(query[k]!)}`)
    .join('&');
}

/** Signs `req` with the AWS SDK's own SignatureV4 signer; returns the headers to send. */
export async function signRequest(endpoint: string, req: RawRequest): Promise<Record<string, string>> {
  const url = new URL(endpoint);
  const body = Buffer.from(req.signedBody ?? req.body ?? '');
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': req.payloadHash ?? sha256(body),
    ...(req.headers ?? {}),
  };
  if (req.anonymous) return headers;
  const signer = new SignatureV4({
    credentials: req.credentials ?? TEST_CREDS,
    region: 'us-east-1',
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: req.path, query: req.query ?? {}, headers, body },
    req.signingDate ? { signingDate: req.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}

/** Sends a signed (or anonymous) request over node:http and reads the whole response. */
export async function rawRequest(endpoint: string, req: RawRequest): Promise<RawResponse> {
  const headers = await signRequest(endpoint, req);
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
    headers['content-length'] = String(body.length);
  }
  return sendRaw(endpoint, { method: req.method, path: withQuery(req.path, req.query), headers, ...(body ? { body } : {}) });
}

/** The request target with its query in the SDK's canonical order. */
export function withQuery(p: string, query?: Record<string, string>): string {
  const q = wireQuery(query);
  return q === '' ? p : `${p}?${q}`;
}

/** Sends exactly these headers and body (nothing added but what node:http requires). */
export function sendRaw(
  endpoint: string,
  req: { method: string; path: string; headers: Record<string, string>; body?: Buffer },
): Promise<RawResponse> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

/** Asserts a raw response is the S3 error `code` with `status`, with the full error XML shape. */
export function expectRawError(res: RawResponse, code: string, status: number): Record<string, string> {
  assert.equal(res.status, status, `status (body: ${res.text.slice(0, 400)})`);
  const requestId = res.headers['x-amz-request-id'];
  assert.match(String(requestId ?? ''), /^[0-9A-F]{16}$/);
  if (res.text === '') {
    assert.equal(code, '', 'expected an error body');
    return {};
  }
  const e = parseErrorXml(res.text);
  assert.equal(e['Code'], code, `error code (body: ${res.text.slice(0, 400)})`);
  assert.ok((e['Message'] ?? '') !== '', 'error has a Message');
  assert.equal(e['RequestId'], requestId, 'RequestId in the body equals the x-amz-request-id header');
  assert.ok((e['Resource'] ?? '') !== '', 'error names the Resource');
  return e;
}

/** The SigV4 signing key for a credential and date (yyyymmdd). */
export function signingKey(secret: string, date: string, region = 'us-east-1'): Buffer {
  const h = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();
  return h(h(h(h(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
}

/** Quota counters of every backend, by name. */
export async function backendCounters(
  t: TestOrchestrator,
): Promise<Record<string, { used: number; reserved: number; objects: number }>> {
  const { rows } = await t.orch.db.query<{ name: string; used_bytes: number; reserved_bytes: number; object_count: number }>(
    'SELECT name, used_bytes, reserved_bytes, object_count FROM backends ORDER BY name',
  );
  return Object.fromEntries(rows.map((r) => [r.name, { used: Number(r.used_bytes), reserved: Number(r.reserved_bytes), objects: Number(r.object_count) }]));
}

async function walk(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // The fs backend's identity file (.s3o-backend.json at the root) marks the directory; it holds no object.
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter((rel) => rel !== '.s3o-backend.json');
}

/**
 * Everything the backends physically hold, by backend name: files under each fs backend's directory
 * (temp files included) and keys in each s3rver bucket, listed directly (not through the orchestrator).
 */
export async function physicalInventory(t: TestOrchestrator): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const b of t.config.backends) {
    if (b.type === 'fs') {
      out[b.name] = (await walk(b.path)).sort();
    } else {
      const c = new S3Client({ endpoint: b.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
      try {
        const r = await c.send(new ListObjectsV2Command({ Bucket: b.bucket }));
        out[b.name] = (r.Contents ?? []).map((o) => o.Key!).sort();
      } finally {
        c.destroy();
      }
    }
  }
  return out;
}

/** Physical keys the metadata says exist (live and pending copies), by backend. */
export async function recordedCopies(t: TestOrchestrator): Promise<Record<string, string[]>> {
  const { rows } = await t.orch.db.query<{ backend: string; physical_key: string }>(
    'SELECT backend, physical_key FROM object_copies ORDER BY backend, physical_key',
  );
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.backend] ??= []).push(r.physical_key);
  return out;
}

/**
 * A presigned URL built by hand from the SigV4 documentation (query-string auth, UNSIGNED-PAYLOAD, host
 * signed), for what the SDK refuses to produce (expiry over 7 days). `path` is already URL-encoded.
 */
export function presignByHand(
  endpoint: string,
  opts: { method: string; path: string; expiresSec: number; date: Date; credentials?: { accessKeyId: string; secretAccessKey: string } },
): string {
  const creds = opts.credentials ?? TEST_CREDS;
  const url = new URL(endpoint);
  const amzDate = opts.date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const query: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${creds.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(opts.expiresSec),
    'X-Amz-SignedHeaders': 'host',
  };
  const canonicalQuery = wireQuery(query);
  const canonicalRequest = [opts.method, opts.path, canonicalQuery, `host:${url.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, day)).update(toSign).digest('hex');
  return `${endpoint}${opts.path}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs` (a liveness bound, not a timing assertion). */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Number of object versions still being written (state 'pending'). */
export async function pendingWrites(t: TestOrchestrator): Promise<number> {
  const { rows } = await t.orch.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM object_versions WHERE state = 'pending'`);
  return Number(rows[0]!.n);
}

/** Data files the backends hold (fs sidecars excluded) compared with the copies the metadata records. */
export async function assertNoStrayBytes(t: TestOrchestrator): Promise<void> {
  const phys = await physicalInventory(t);
  const rec = await recordedCopies(t);
  for (const [backend, files] of Object.entries(phys)) {
    const data = files.filter((f) => !f.endsWith('.meta.json'));
    assert.deepEqual(data, rec[backend] ?? [], `backend ${backend} holds exactly the recorded copies (temp files included)`);
  }
}
