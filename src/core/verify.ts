import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Byte-level checks shared by copy-version (verifying what it copied) and the deep scrub (re-reading a
 * copy): the size, and the S3 ETag recomputed from the bytes — the MD5 of a single-part object, or for a
 * multipart object `md5(md5(part 1) ‖ … ‖ md5(part N))-N` over the part sizes stored with the version. A
 * version whose ETag cannot be recomputed (a multipart object without stored part sizes, or an ETag that is
 * not an MD5) is checked by size only.
 */

/** What a version's bytes must hash to; `etag` undefined when only the size can be checked. */
export interface ExpectedBytes {
  size: number;
  /** The ETag without quotes, when it can be recomputed from the bytes. */
  etag?: string;
  /** Part sizes of a multipart object, in order (required when `etag` has a `-N` suffix). */
  partSizes?: readonly number[];
}

/** What can be checked of a version with this ETag and these part sizes. */
export function expectedBytes(size: number, etag: string | null | undefined, partSizes: readonly number[] | null | undefined): ExpectedBytes {
  const e = (etag ?? '').replace(/"/g, '');
  if (/^[0-9a-f]{32}$/.test(e)) return { size, etag: e };
  const m = /^([0-9a-f]{32})-(\d+)$/.exec(e);
  if (m && partSizes && partSizes.length === Number(m[2]) && partSizes.reduce((a, b) => a + b, 0) === size) {
    return { size, etag: e, partSizes };
  }
  return { size };
}

/**
 * A pass-through stream that counts the bytes and hashes them the way {@link ExpectedBytes} says; after it
 * ended, {@link mismatch} says what differed (undefined when the bytes are what was expected).
 */
export class BytesCheck extends Transform {
  readonly #want: ExpectedBytes;
  #seen = 0;
  #whole: Hash | undefined;
  #part: Hash | undefined;
  #partLeft = 0;
  #partIndex = 0;
  readonly #partDigests: Buffer[] = [];

  constructor(want: ExpectedBytes) {
    super();
    this.#want = want;
    if (want.etag && !want.partSizes) this.#whole = createHash('md5');
    if (want.partSizes) this.#nextPart();
  }

  #nextPart(): void {
    const sizes = this.#want.partSizes!;
    while (this.#partIndex < sizes.length && sizes[this.#partIndex] === 0) {
      this.#partDigests.push(createHash('md5').digest());
      this.#partIndex++;
    }
    if (this.#partIndex < sizes.length) {
      this.#part = createHash('md5');
      this.#partLeft = sizes[this.#partIndex]!;
    } else this.#part = undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    this.#whole?.update(chunk);
    let rest = chunk;
    while (rest.length > 0 && this.#part) {
      const take = Math.min(rest.length, this.#partLeft);
      this.#part.update(rest.subarray(0, take));
      this.#partLeft -= take;
      rest = rest.subarray(take);
      if (this.#partLeft === 0) {
        this.#partDigests.push(this.#part.digest());
        this.#partIndex++;
        this.#nextPart();
      }
    }
    cb(null, chunk);
  }

  /** Bytes seen so far. */
  get seen(): number {
    return this.#seen;
  }

  /** After the end: why the bytes are not the expected ones, or undefined when they are. */
  mismatch(): string | undefined {
    const w = this.#want;
    if (this.#seen !== w.size) return `size ${this.#seen}, expected ${w.size}`;
    if (!w.etag) return undefined;
    let got: string;
    if (w.partSizes) {
      if (this.#partDigests.length !== w.partSizes.length) return `${this.#partDigests.length} parts, expected ${w.partSizes.length}`;
      got = `${createHash('md5').update(Buffer.concat(this.#partDigests)).digest('hex')}-${w.partSizes.length}`;
    } else got = this.#whole!.digest('hex');
    return got === w.etag ? undefined : `ETag ${got}, expected ${w.etag}`;
  }
}

/**
 * A token bucket shared by every stream of one kind of background work on this instance (repair and moves
 * share one, scrub has its own): at most `bytesPerSecond` on average, bursts up to one second's worth.
 * 0 means unlimited.
 */
export class Bandwidth {
  readonly #rate: number;
  #tokens: number;
  #at = Date.now();
  #queue: Promise<void> = Promise.resolve();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#tokens = bytesPerSecond;
  }

  get limited(): boolean {
    return this.#rate > 0;
  }

  /** Resolves once `n` bytes may pass (callers are served in order). */
  take(n: number): Promise<void> {
    if (this.#rate <= 0) return Promise.resolve();
    const turn = this.#queue.then(async () => {
      for (;;) {
        const t = Date.now();
        this.#tokens = Math.min(this.#rate, this.#tokens + ((t - this.#at) / 1000) * this.#rate);
        this.#at = t;
        // A chunk larger than a second's budget passes once the bucket is full (it cannot ever fit whole).
        const need = Math.min(n, this.#rate);
        if (this.#tokens >= need) {
          this.#tokens -= n;
          return;
        }
        await new Promise((r) => setTimeout(r, Math.ceil(((need - this.#tokens) / this.#rate) * 1000)));
      }
    });
    this.#queue = turn;
    return turn;
  }

  /** A pass-through stream paced by this bucket. */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.take(chunk.length).then(() => cb(null, chunk), cb);
      },
    });
  }
}
