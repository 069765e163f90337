import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Raised by {@link ExactLength} when a body is shorter or longer than announced. It is the caller's fault
 * (client disconnect, lying Content-Length), so backends classify it as `Aborted`, never `Unavailable`:
 * trying another backend with the same body would not help.
 */
export class BodyLengthError extends Error {
  readonly expected: number;
  readonly received: number;
  constructor(expected: number, received: number, more: boolean) {
    super(
      more
        ? `body is longer than the announced ${expected} bytes`
        : `body ended after ${received} of ${expected} bytes`,
    );
    this.name = 'BodyLengthError';
    this.expected = expected;
    this.received = received;
  }
}

/**
 * A pass-through that fails unless exactly `size` bytes flow through it. A chunk that would cross the limit
 * is not forwarded at all, so the downstream writer never sees a complete-looking object from an oversized
 * body.
 */
export class ExactLength extends Transform {
  private readonly size: number;
  private seen = 0;

  constructor(size: number) {
    super({ highWaterMark: 256 * 1024 });
    this.size = size;
  }

  /** Bytes forwarded so far. */
  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen + chunk.length > this.size) {
      cb(new BodyLengthError(this.size, this.seen + chunk.length, true));
      return;
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    cb(this.seen === this.size ? null : new BodyLengthError(this.size, this.seen, false));
  }
}

/** Passes bytes through while computing their MD5 (the S3 part ETag). */
export class Md5Tap extends Transform {
  private readonly hash = createHash('md5');
  constructor() {
    super({ highWaterMark: 256 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  /** Hex MD5 of everything that passed; call once, after the end. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** True for the errors an aborted AbortSignal or an aborted stream operation produce. */
export function isAbortError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  return e.name === 'AbortError' || e.code === 'ABORT_ERR';
}

/**
 * Reports whether an error originated with the caller's body (its own error, a length mismatch) or the
 * caller's signal, rather than with the backend.
 */
export function callerCaused(err: unknown, bodyError: unknown, signal?: AbortSignal): boolean {
  return bodyError !== undefined || err instanceof BodyLengthError || signal?.aborted === true;
}
