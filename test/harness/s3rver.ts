import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3BackendConfig } from '../../src/config/types.js';

const CHILD = fileURLToPath(new URL('./s3rver-child.cjs', import.meta.url));

/** A running s3rver child process. */
export interface S3rverInstance {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  /** Temp directory holding the server's data; removed by stop(). */
  directory: string;
  /** The first configured bucket (default `test`). */
  bucket: string;
  /** All configured buckets. */
  buckets: readonly string[];
  /** Kills the child and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Access key id and secret s3rver accepts (it does not verify signatures). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Options of {@link startS3rver}. */
export interface S3rverOptions {
  /** Buckets to create (default `['test']`). */
  buckets?: string[];
  /**
   * Serve UploadPartCopy (stock s3rver answers 501 NotImplemented). Off by default, so that backends meet the
   * stock behaviour; on to exercise their native part-copy path.
   */
  uploadPartCopy?: boolean;
  /** Listen on this port (default: a free one). With `directory`, restarts a stopped server as it was. */
  port?: number;
  /** Serve this directory (kept by stop()) instead of a new temp one (removed by stop()). */
  directory?: string;
}

/**
 * Starts s3rver 3.7.1 in a child process (`node --openssl-legacy-provider`, needed for its ListObjectsV2
 * continuation tokens on Node 20) on a free 127.0.0.1 port with its own temp directory and the given
 * buckets. Safe to call several times in parallel. See s3rver-child.cjs for what is patched and what is not.
 */
export async function startS3rver(opts: S3rverOptions = {}): Promise<S3rverInstance> {
  const buckets = opts.buckets && opts.buckets.length > 0 ? opts.buckets : ['test'];
  const directory = opts.directory ?? (await mkdtemp(path.join(os.tmpdir(), 's3rver-')));
  const ownsDirectory = opts.directory === undefined;
  const features = opts.uploadPartCopy ? ['partCopy'] : [];
  // execArgv replaces the parent's (tsx loader flags): the child is plain CommonJS and starts faster without.
  const child = fork(CHILD, [directory, buckets.join(','), features.join(','), String(opts.port ?? 0)], {
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
    if (process.env.S3RVER_DEBUG) process.stderr.write(d);
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      // Re-ref so that awaiting the exit keeps the event loop alive (the child was unref'd after start).
      child.ref();
      const exited = waitForExit(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      if (ownsDirectory) await rm(directory, { recursive: true, force: true });
    })());

  try {
    const port = await new Promise<number>((resolve, reject) => {
      const onMessage = (msg: unknown) => {
        const p = (msg as { port?: unknown } | null)?.port;
        if (typeof p === 'number') resolve(p);
      };
      child.on('message', onMessage);
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`s3rver child exited before listening (code ${code}, signal ${signal}): ${stderr}`)),
      );
    });
    // The IPC channel must not keep the test process alive; stop() or process exit ends the child.
    child.unref();
    child.channel?.unref();
    (child.stderr as Socket | null)?.unref();
    return { endpoint: `http://127.0.0.1:${port}`, port, directory, bucket: buckets[0]!, buckets, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * An S3BackendConfig pointing at `server` (path-style, us-east-1, the s3rver credentials). `bucket`
 * defaults to the server's first bucket.
 */
export function s3BackendConfig(
  server: Pick<S3rverInstance, 'endpoint' | 'bucket'>,
  name: string,
  opts: { bucket?: string; prefix?: string; quotaBytes?: number } = {},
): S3BackendConfig {
  return {
    type: 's3',
    name,
    quotaBytes: opts.quotaBytes ?? 0,
    endpoint: server.endpoint,
    region: 'us-east-1',
    bucket: opts.bucket ?? server.bucket,
    prefix: opts.prefix ?? '',
    ...S3RVER_CREDENTIALS,
    forcePathStyle: true,
  };
}
