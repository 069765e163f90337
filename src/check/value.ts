/**
 * Self-identifying object values for the consistency checker. Every value the load generator writes is
 *
 *   s3chk1 <write id> <key> <total length, 10 digits> <sha256 hex of the fields and the filler>\n<filler>
 *
 * so a reader can tell, from the bytes alone, which write produced them, for which key, and whether it
 * got all of them and only them: a short body fails the length, a body spliced from two values (or with
 * a stale range in the middle) fails the hash, a value of another key names that key. The filler is
 * random, so two values never share a hash.
 */
import { createHash, randomBytes } from 'node:crypto';

const MAGIC = 's3chk1';
/** Bytes of the header before the filler, for a write id and key (the fields have fixed widths otherwise). */
export function headerLength(writeId: string, key: string): number {
  return MAGIC.length + 1 + writeId.length + 1 + key.length + 1 + 10 + 1 + 64 + 1;
}

/** The smallest value that can carry a header for this write id and key. */
export function minValueSize(writeId: string, key: string): number {
  return headerLength(writeId, key) + 1;
}

/** A value ready to upload: its parts (one for a PUT), and the ETags S3 may give it. */
export interface Value {
  parts: Buffer[];
  size: number;
  /** Hex MD5 of the whole body (a single PUT's ETag, or a copy's of it). */
  md5: string;
  /** Every ETag an object holding this value may show: the MD5, and S3's multipart ETag when it has parts. */
  etags: string[];
}

/**
 * Makes a value of `size` bytes for `writeId` at `key`, split into parts of the given sizes (the last part
 * takes the rest; no sizes = one part).
 */
export function makeValue(writeId: string, key: string, size: number, partSizes: number[] = []): Value {
  if (/\s/.test(writeId) || /\s/.test(key)) throw new Error('write ids and keys of checker values must not contain white space');
  const hlen = headerLength(writeId, key);
  if (size <= hlen) throw new Error(`value size ${size} too small for its header (${hlen + 1} at least)`);
  const filler = randomBytes(size - hlen);
  const sha = createHash('sha256').update(hashPrefix(writeId, key, size)).update(filler).digest('hex');
  const header = Buffer.from(`${MAGIC} ${writeId} ${key} ${String(size).padStart(10, '0')} ${sha}\n`, 'latin1');
  const body = Buffer.concat([header, filler]);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of partSizes) {
    if (at + p >= size) break;
    parts.push(body.subarray(at, at + p));
    at += p;
  }
  parts.push(body.subarray(at));
  const md5 = createHash('md5').update(body).digest('hex');
  const etags = [md5];
  if (parts.length > 1) {
    const h = createHash('md5');
    for (const p of parts) h.update(createHash('md5').update(p).digest());
    etags.push(`${h.digest('hex')}-${parts.length}`);
  }
  return { parts, size, md5, etags };
}

/** The hash covers the header's fields too, so a header rewritten to name another write does not verify. */
function hashPrefix(writeId: string, key: string, size: number): string {
  return `${writeId} ${key} ${size}\n`;
}

/** What a body says about itself, or why it cannot be trusted. */
export type Parsed = { ok: true; writeId: string; key: string; size: number } | { ok: false; writeId?: string; key?: string; error: string };

/**
 * Verifies a body as it streams: feed every chunk to `update`, then `finish()`. Memory stays bounded (the
 * header is at most a few hundred bytes; the rest only goes through the hash).
 */
export class ValueVerifier {
  private head = Buffer.alloc(0);
  private header: { writeId: string; key: string; size: number; sha: string } | undefined;
  private headerError: string | undefined;
  private readonly hash = createHash('sha256');
  private total = 0;

  update(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.header || this.headerError) {
      this.hash.update(chunk);
      return;
    }
    this.head = Buffer.concat([this.head, chunk]);
    const nl = this.head.indexOf(10);
    if (nl < 0) {
      if (this.head.length > 2048) this.headerError = 'no header line in the first 2 KiB';
      return;
    }
    const line = this.head.subarray(0, nl).toString('latin1');
    const m = /^s3chk1 (\S+) (\S+) (\d{10}) ([0-9a-f]{64})$/.exec(line);
    if (!m) this.headerError = `unparseable header ${JSON.stringify(line.slice(0, 120))}`;
    else {
      this.header = { writeId: m[1]!, key: m[2]!, size: Number(m[3]), sha: m[4]! };
      this.hash.update(hashPrefix(this.header.writeId, this.header.key, this.header.size));
    }
    this.hash.update(this.head.subarray(nl + 1));
    this.head = Buffer.alloc(0);
  }

  finish(): Parsed {
    if (this.headerError) return { ok: false, error: this.headerError };
    if (!this.header) return { ok: false, error: `no header line (${this.total} bytes)` };
    const { writeId, key, size, sha } = this.header;
    if (this.total !== size) return { ok: false, writeId, key, error: `${this.total} bytes, the value has ${size}` };
    if (this.hash.digest('hex') !== sha) return { ok: false, writeId, key, error: 'content hash mismatch (bytes of another value or corrupted)' };
    return { ok: true, writeId, key, size };
  }
}

/** Verifies a whole body at once. */
export function parseValue(body: Buffer): Parsed {
  const v = new ValueVerifier();
  v.update(body);
  return v.finish();
}
