/**
 * Helpers to drive real S3 tools (rclone, s3cmd, restic, boto3, the aws cli) against a test orchestrator:
 * a sandbox with its own HOME and a minimal environment, a runner that kills the tool's whole process
 * group on timeout, config-file writers, deterministic file and tree generators, tree hashing, and a
 * capturing HTTP proxy to record what a tool actually sent when it fails.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** Access key pair as the tools take it. */
export interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Outcome of one tool run. `code` is null when the tool was killed. */
export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options of {@link runTool}. */
export interface RunOptions {
  /** The complete environment (use {@link ToolSandbox.env}); nothing is inherited from the test process. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the process group after this long (default 45 s). */
  timeoutMs?: number;
  input?: string | Buffer;
}

/** Output kept per stream: enough for -vv logs of a failing run, bounded so a chatty tool cannot exhaust memory. */
const MAX_OUTPUT = 4 * 1024 * 1024;

/**
 * Runs `file args` in its own process group and resolves when it exits (never rejects for a non-zero exit).
 * On timeout the whole group gets SIGKILL: restic and rclone start helper processes that would outlive a
 * plain kill of the parent.
 */
export function runTool(file: string, args: readonly string[], opts: RunOptions): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(b);
      errLen += b.length;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone between the timer firing and the kill.
      }
    }, opts.timeoutMs ?? 45_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
    child.stdin.on('error', () => {
      // A tool that exits without reading its stdin is not an error of the runner.
    });
    child.stdin.end(opts.input);
  });
}

/** A failure message naming the tool, its exit and the tail of its output. */
export function describeFailure(name: string, args: readonly string[], r: ToolResult): string {
  const tail = (s: string) => (s.length > 6000 ? '…' + s.slice(-6000) : s);
  const how = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
  return `${name} ${args.join(' ')} ${how}\n--- stderr ---\n${tail(r.stderr)}\n--- stdout ---\n${tail(r.stdout)}`;
}

/** Runs a tool and throws (with its output) unless it exits 0; returns stdout. */
export async function runOk(file: string, args: readonly string[], opts: RunOptions): Promise<string> {
  const r = await runTool(file, args, opts);
  if (r.code !== 0) throw new Error(describeFailure(path.basename(file), args, r));
  return r.stdout;
}

/** `false` when `bin` exists, else a skip message naming the Debian package that provides it. */
/** Whether `python` exists and can import boto3 (Debian's python3-boto3, or a newer one on another interpreter). */
export function hasBoto3(python: string): boolean {
  if (!existsSync(python)) return false;
  try {
    execFileSync(python, ['-c', 'import boto3'], { stdio: 'ignore', env: { PATH: '/usr/bin:/bin' }, timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export function missingTool(bin: string, debianPackage: string): string | false {
  return existsSync(bin) ? false : `${bin} not installed (Debian package ${debianPackage}; .ci/run installs it)`;
}

/** A temp directory with its own HOME, used as the whole world of one tool run. */
export interface ToolSandbox {
  dir: string;
  home: string;
  /**
   * A minimal environment: PATH of system directories only (so /usr/bin tools win over pyenv or other
   * shims), HOME in the sandbox, no AWS_* variables from the caller (AWS_CA_BUNDLE breaks rclone;
   * AWS_PROFILE/AWS_CONFIG_FILE would leak a developer's settings), plus `extra`.
   */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Writes `content` to `name` inside the sandbox and returns the absolute path. */
  file(name: string, content: string | Buffer): Promise<string>;
  cleanup(): Promise<void>;
}

/** Creates a {@link ToolSandbox} under os.tmpdir(). */
export async function createSandbox(prefix: string): Promise<ToolSandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `s3o-${prefix}-`));
  const home = path.join(dir, 'home');
  await mkdir(home);
  return {
    dir,
    home,
    env: (extra = {}) => ({
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      TMPDIR: dir,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...extra,
    }),
    file: async (name, content) => {
      const p = path.join(dir, name);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, content);
      return p;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The host:port part of an http endpoint URL. */
export function hostPort(endpoint: string): string {
  return new URL(endpoint).host;
}

/** An rclone config with one S3 remote named `remote` (default `orch`), the snippet docs/clients.md shows. */
export function rcloneConfig(endpoint: string, creds: Creds, remote = 'orch'): string {
  return [
    `[${remote}]`,
    'type = s3',
    'provider = Other',
    `access_key_id = ${creds.accessKeyId}`,
    `secret_access_key = ${creds.secretAccessKey}`,
    `endpoint = ${endpoint}`,
    'region = us-east-1',
    'force_path_style = true',
    '',
  ].join('\n');
}

/** An s3cmd config file for the orchestrator, the snippet docs/clients.md shows. */
export function s3cmdConfig(endpoint: string, creds: Creds): string {
  const hp = hostPort(endpoint);
  return [
    '[default]',
    `access_key = ${creds.accessKeyId}`,
    `secret_key = ${creds.secretAccessKey}`,
    `host_base = ${hp}`,
    `host_bucket = ${hp}`,
    'bucket_location = us-east-1',
    'use_https = False',
    'signature_v2 = False',
    '',
  ].join('\n');
}

/**
 * Writes `size` pseudo-random bytes derived from `seed` to `file` in 1 MiB pieces (never the whole file in
 * memory) and returns their SHA-256 in hex. Different seeds give different contents.
 */
export async function writePatternFile(file: string, size: number, seed = 1): Promise<string> {
  const h = createHash('sha256');
  const piece = Buffer.alloc(Math.min(size, 1024 * 1024));
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try {
    for (let off = 0, n = 0; off < size; off += piece.length, n++) {
      const x = Math.imul(seed * 7919 + n + 1, 2654435761) >>> 0;
      for (let i = 0; i + 4 <= piece.length; i += 4) piece.writeUInt32LE((x ^ Math.imul(i + 1, 40503)) >>> 0, i);
      const part = piece.subarray(0, Math.min(piece.length, size - off));
      h.update(part);
      await fh.write(part);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** SHA-256 of a file, streamed. */
export async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** SHA-256 of an object read through the orchestrator with the SDK, streamed. */
export async function objectSha256(client: S3Client, bucket: string, key: string): Promise<string> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  for await (const chunk of got.Body as AsyncIterable<Uint8Array>) h.update(chunk);
  return h.digest('hex');
}

/** Relative path (with '/') → SHA-256 of every regular file under `dir`. */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.set(r, await hashFile(path.join(dir, r)));
    }
  };
  await walk('');
  return out;
}

/** Human-readable differences between two hashed trees (empty when identical). */
export function treeDiff(expected: Map<string, string>, actual: Map<string, string>): string[] {
  const diffs: string[] = [];
  for (const [k, h] of expected) {
    const a = actual.get(k);
    if (a === undefined) diffs.push(`missing: ${k}`);
    else if (a !== h) diffs.push(`differs: ${k}`);
  }
  for (const k of actual.keys()) if (!expected.has(k)) diffs.push(`extra: ${k}`);
  return diffs;
}

/** Names that trip up URL encoding, signing and path handling. */
export const ODD_NAMES = [
  'space in name.txt',
  'plus+sign.txt',
  'amp&ersand=eq.txt',
  'percent%20literal.txt',
  'hash#mark.txt',
  'question?mark.txt',
  'unicode-é-日本語.txt',
  'tilde~and,comma;semi.txt',
  "quote'single.txt",
  '(parens) [brackets] {braces}.txt',
] as const;

/** What {@link generateTree} builds. */
export interface TreeSpec {
  /** Small files spread over nested directories. */
  smallFiles: number;
  /** Sizes of the big files (each in its own nested directory). */
  bigSizes?: number[];
  /** Add one file per {@link ODD_NAMES} entry. */
  oddNames?: boolean;
  seed?: number;
}

/** Builds a deterministic tree under `dir` and returns its {@link hashTree} map. */
export async function generateTree(dir: string, spec: TreeSpec): Promise<Map<string, string>> {
  const seed = spec.seed ?? 1;
  const out = new Map<string, string>();
  const add = async (rel: string, size: number, s: number) => out.set(rel, await writePatternFile(path.join(dir, rel), size, s));
  for (let i = 0; i < spec.smallFiles; i++) {
    const rel = `d${i % 7}/sub${i % 3}/${i % 11 === 0 ? 'deep/er/' : ''}file-${i}.dat`;
    // Sizes from 0 bytes to about 70 KiB, including empty files and odd lengths.
    await add(rel, i === 0 ? 0 : (i * 7919) % 70_001, seed * 100_000 + i);
  }
  for (const [i, size] of (spec.bigSizes ?? []).entries()) await add(`big/${i}/blob-${i}.bin`, size, seed * 100_000 + 50_000 + i);
  if (spec.oddNames) for (const [i, name] of ODD_NAMES.entries()) await add(`odd/${name}`, 100 + i * 37, seed * 100_000 + 60_000 + i);
  return out;
}

/**
 * The python3 that comes first on the caller's PATH (pyenv or similar), resolved to its real executable,
 * if it is not /usr/bin/python3 and can import boto3; else undefined. Run with a minimal environment, a
 * shim would not find its interpreter, hence the resolution.
 */
export function newerPython(): string | undefined {
  try {
    const exe = execFileSync('python3', ['-c', 'import boto3, sys; print(sys.executable)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 20_000 }).trim();
    return exe && exe !== '/usr/bin/python3' && existsSync(exe) ? exe : undefined;
  } catch {
    return undefined;
  }
}

/** One request seen by a {@link CaptureProxy}. */
export interface CapturedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  status?: number;
  responseHeaders?: http.IncomingHttpHeaders;
  /** The first 4 KiB of a non-2xx response body (the S3 error XML). */
  errorBody?: string;
}

/** A forwarding HTTP proxy that records every request, for bug reports (point a tool at `url`). */
export interface CaptureProxy {
  url: string;
  requests: CapturedRequest[];
  /** Resolves with the first request matching `pred` once its response headers came back. */
  responded(pred: (r: CapturedRequest) => boolean): Promise<CapturedRequest>;
  close(): Promise<void>;
}

/**
 * Starts a reverse proxy on 127.0.0.1:0 to `target`. The Host header is passed through unchanged from the
 * tool, so the tool must sign for the proxy's host: the orchestrator sees the same signed bytes.
 */
export async function startCaptureProxy(target: string): Promise<CaptureProxy> {
  const t = new URL(target);
  const requests: CapturedRequest[] = [];
  const waiters: { pred: (r: CapturedRequest) => boolean; resolve: (r: CapturedRequest) => void }[] = [];
  const settle = (rec: CapturedRequest): void => {
    for (const w of waiters.splice(0)) {
      if (w.pred(rec)) w.resolve(rec);
      else waiters.push(w);
    }
  };
  const server = http.createServer((req, res) => {
    const rec: CapturedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0 };
    requests.push(rec);
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      rec.status = ur.statusCode;
      rec.responseHeaders = ur.headers;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      settle(rec);
      if ((ur.statusCode ?? 500) >= 300) {
        const chunks: Buffer[] = [];
        ur.on('data', (b: Buffer) => chunks.push(b));
        ur.on('end', () => (rec.errorBody = Buffer.concat(chunks).toString('utf8').slice(0, 4096)));
      }
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.on('data', (b: Buffer) => (rec.bodyBytes += b.length));
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    responded: (pred) => {
      const seen = requests.find((r) => r.status !== undefined && pred(r));
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
