/**
 * Helpers of the fs backend (src/backends/fs.ts): errno classification, durable small writes, directory
 * fsync, byte-order comparison and directory usage.
 */
import { open, readdir, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { BackendError, type BackendErrorKind } from './backend.js';
import { isAbortError } from './stream-util.js';

export const MISSING = new Set(['ENOENT', 'ENOTDIR']);
const KIND_BY_CODE: Record<string, BackendErrorKind> = {
  EACCES: 'AccessDenied',
  EPERM: 'AccessDenied',
  EROFS: 'AccessDenied',
  ENOSPC: 'Full',
  EDQUOT: 'Full',
  EFBIG: 'Full',
  EIO: 'Unavailable',
  EMFILE: 'Unavailable',
  ENFILE: 'Unavailable',
  EBUSY: 'Unavailable',
  EAGAIN: 'Unavailable',
  ETIMEDOUT: 'Unavailable',
  ESTALE: 'Unavailable',
  ENOTCONN: 'Unavailable',
  EHOSTDOWN: 'Unavailable',
};

/**
 * Classifies a filesystem error. `missing` says what ENOENT means for the call: a missing object (NotFound)
 * or a vanished root directory while writing (Unavailable).
 */
export function mapFsError(
  backend: string,
  err: unknown,
  what: string,
  missing: BackendErrorKind = 'NotFound',
): BackendError {
  if (err instanceof BackendError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const kind: BackendErrorKind = isAbortError(err)
    ? 'Aborted'
    : MISSING.has(code)
      ? missing
      : (KIND_BY_CODE[code] ?? 'Other');
  const message = err instanceof Error ? err.message : String(err);
  return new BackendError(backend, kind, `${what}: ${message}`, { cause: err });
}

/** Byte order of the UTF-8 encodings, which is the order S3 lists keys in. */
export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!MISSING.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

/** Writes a small file and fsyncs it, so a later rename publishes durable bytes. */
export async function writeDurable(file: string, data: string): Promise<void> {
  const fh = await open(file, 'wx', 0o644);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** An ETag as the client may quote it, compared without quotes and case. */
export function normalEtag(etag: string): string {
  return etag.replace(/"/g, '').toLowerCase();
}

export async function fsyncPath(p: string, flags: string): Promise<void> {
  const fh = await open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}


/** Bytes under a directory and the newest modification time of it and anything in it; null if absent. */
export async function treeUsage(dir: string): Promise<{ bytes: number; newestMtimeMs: number } | null> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) return null;
  let bytes = 0;
  let newest = st.mtimeMs;
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[])) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) {
      const sub = await treeUsage(p);
      if (sub) {
        bytes += sub.bytes;
        newest = Math.max(newest, sub.newestMtimeMs);
      }
      continue;
    }
    const fst = await stat(p).catch(() => null);
    if (!fst) continue;
    bytes += fst.size;
    newest = Math.max(newest, fst.mtimeMs);
  }
  return { bytes, newestMtimeMs: newest };
}
