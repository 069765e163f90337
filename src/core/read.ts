/**
 * Reading one version from its physical copies, with failover. The copies of a version hold the same bytes,
 * so a read can move from one copy to the next at any byte offset:
 *
 * - {@link openVersion} resolves only once a copy has produced its first bytes. A copy that is missing,
 *   whose backend is down, whose stream fails or ends early, or that stays silent for `stallMs` is dropped
 *   and the next is tried; when none delivers, the read fails with ServiceUnavailable before anything was
 *   promised to the client (the S3 layer then answers a clean 503 instead of a 200 without a body).
 * - After that, a copy that fails, ends early or stalls mid-stream is replaced by the next copy, opened at
 *   the first byte not yet delivered; the caller sees one uninterrupted stream. Only when no copy is left
 *   does the stream fail (the S3 layer then cuts the response short of its Content-Length).
 *
 * The stall timer runs only while this stream wants data and the copy has none: a slow client (backpressure)
 * never counts against a copy. Memory stays O(one chunk): nothing is buffered beyond the stream's own buffer.
 */
import { Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { BackendError } from '../backends/backend.js';
import { CoreError } from './errors.js';

/** One copy the reader may use: `open` streams an inclusive byte range of it. */
export interface ReadableCopy {
  /** Names the copy in logs (backend and physical key). */
  describe: Record<string, string>;
  open(range: { start: number; end: number }, signal?: AbortSignal): Promise<Readable>;
  /**
   * Called when the copy proved bad — its backend answered NotFound, or it ended before the version's
   * size — so that it is never trusted again until repaired (not called for transient failures).
   */
  bad?(reason: string): void;
}

/** Options of {@link openVersion}. */
export interface OpenVersionOptions {
  copies: readonly ReadableCopy[];
  /** Inclusive range to read; `end - start + 1` bytes in all. */
  range: { start: number; end: number };
  /** A copy that produces no byte for this long while bytes are wanted is abandoned for the next. */
  stallMs: number;
  signal?: AbortSignal;
  log: Logger;
  /** What the read is of, for the error and logs (`bucket/key`). */
  what: string;
}

/** A copy that ended cleanly before its first byte (it holds fewer bytes than the version). */
class EndedError extends Error {
  constructor() {
    super('the copy ended before its first byte');
    this.name = 'EndedError';
  }
}

/** A copy that produced nothing for `stallMs`. */
class StallError extends Error {
  constructor(ms: number) {
    super(`no byte within ${ms} ms`);
    this.name = 'StallError';
  }
}

/** Waits for the first chunk of `s` (at most `ms`); rejects if it fails, ends or stays silent first. */
function firstChunk(s: Readable, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.off('readable', onReadable);
      s.off('end', onEnd);
      s.off('error', onError);
      fn();
    };
    const onReadable = (): void => {
      const c = s.read() as Buffer | null;
      if (c !== null) settle(() => resolve(c));
    };
    const onEnd = (): void => settle(() => reject(new EndedError()));
    const onError = (err: unknown): void => settle(() => reject(err));
    const timer = setTimeout(() => settle(() => reject(new StallError(ms))), ms);
    s.on('readable', onReadable);
    s.on('end', onEnd);
    s.on('error', onError);
  });
}

/** Lets a copy's stream finish on its own (its keep-alive socket returns to the pool), errors ignored. */
function release(s: Readable): void {
  s.removeAllListeners('readable');
  s.removeAllListeners('end');
  s.on('error', () => {});
  s.resume();
}

/** The stream handed to callers; see the module comment. */
class VersionReader extends Readable {
  readonly #o: OpenVersionOptions;
  readonly #total: number;
  #next = 0;
  #delivered = 0;
  #src: Readable | undefined;
  #head: Buffer | undefined;
  /** `_read` asked for data and no push has said "enough" since. */
  #wanting = false;
  #stall: NodeJS.Timeout | undefined;
  #switching = false;
  #last: unknown;

  constructor(o: OpenVersionOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.#o = o;
    this.#total = o.range.end - o.range.start + 1;
    // A read failing after its consumer went away must not be an unhandled 'error' event.
    this.on('error', () => {});
  }

  /** Opens copies in order until one yields its first bytes; false when none did. */
  async acquire(): Promise<boolean> {
    const o = this.#o;
    while (this.#next < o.copies.length && !this.destroyed) {
      if (o.signal?.aborted) throw o.signal.reason;
      const copy = o.copies[this.#next++]!;
      const range = { start: o.range.start + this.#delivered, end: o.range.end };
      let s: Readable | undefined;
      try {
        s = await copy.open(range, o.signal);
        const head = await firstChunk(s, o.stallMs);
        if (this.destroyed) {
          s.on('error', () => {});
          s.destroy();
          return false;
        }
        this.#attach(s, head, copy);
        return true;
      } catch (err) {
        // A copy given up may still report its socket's end (e.g. "aborted"): never an unhandled 'error'.
        s?.on('error', () => {});
        s?.destroy();
        this.#last = err;
        if (o.signal?.aborted) throw o.signal.reason;
        if (err instanceof BackendError && err.kind === 'NotFound') copy.bad?.('the backend does not have it');
        else if (err instanceof EndedError) copy.bad?.(`it is shorter than the version (ended at byte ${range.start})`);
        o.log.warn('copy unreadable, trying the next', { ...copy.describe, offset: range.start, err });
      }
    }
    return false;
  }

  /** Why the last copy failed (the cause of ServiceUnavailable). */
  get lastError(): unknown {
    return this.#last;
  }

  #attach(s: Readable, head: Buffer, copy: ReadableCopy): void {
    this.#src = s;
    this.#head = head;
    s.on('readable', () => {
      if (this.#src === s && this.#wanting) this.#pump();
    });
    s.on('end', () => {
      if (this.#src !== s) return;
      // A clean end before the version's last byte: the copy is shorter than the version.
      copy.bad?.(`it is shorter than the version (ended at byte ${this.#o.range.start + this.#delivered})`);
      this.#fail(new Error(`the copy ended after ${this.#delivered} of ${this.#total} bytes`));
    });
    s.on('error', (err) => {
      if (this.#src === s) this.#fail(err);
    });
  }

  override _read(): void {
    this.#wanting = true;
    if (!this.#switching) this.#pump();
  }

  #pump(): void {
    for (;;) {
      const s = this.#src;
      if (!s || this.destroyed) return;
      let chunk = this.#head ?? (s.read() as Buffer | null);
      this.#head = undefined;
      if (chunk === null) {
        this.#armStall();
        return;
      }
      this.#clearStall();
      const left = this.#total - this.#delivered;
      if (chunk.length > left) chunk = chunk.subarray(0, left);
      this.#delivered += chunk.length;
      const more = this.push(chunk);
      if (this.#delivered === this.#total) {
        this.#src = undefined;
        release(s);
        this.push(null);
        return;
      }
      if (!more) {
        this.#wanting = false;
        return;
      }
    }
  }

  #armStall(): void {
    if (this.#stall) return;
    this.#stall = setTimeout(() => {
      this.#stall = undefined;
      if (this.#wanting) this.#fail(new StallError(this.#o.stallMs));
    }, this.#o.stallMs);
  }

  #clearStall(): void {
    if (this.#stall) clearTimeout(this.#stall);
    this.#stall = undefined;
  }

  /** The current copy failed mid-stream: continue from the next copy at the first byte not delivered. */
  #fail(err: unknown): void {
    const s = this.#src;
    this.#src = undefined;
    this.#clearStall();
    if (s) {
      s.removeAllListeners('readable');
      s.on('error', () => {});
      s.destroy();
    }
    if (this.destroyed) return;
    this.#last = err;
    this.#o.log.warn('copy failed mid-read, trying the next', { what: this.#o.what, offset: this.#o.range.start + this.#delivered, err });
    this.#switching = true;
    this.acquire().then(
      (ok) => {
        this.#switching = false;
        if (!ok) this.destroy(err instanceof Error ? err : new Error(String(err)));
        else if (this.#wanting) this.#pump();
      },
      (e: unknown) => {
        this.#switching = false;
        this.destroy(e instanceof Error ? e : new Error(String(e)));
      },
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clearStall();
    const s = this.#src;
    this.#src = undefined;
    if (s) {
      s.on('error', () => {});
      s.destroy();
    }
    cb(err);
  }
}

/**
 * Opens a read of `range` over `copies` (in the order they should be tried) and resolves once the first
 * bytes are in hand; ServiceUnavailable when no copy delivers any.
 */
export async function openVersion(o: OpenVersionOptions): Promise<Readable> {
  const reader = new VersionReader(o);
  // The caller is gone: stop reading (consumers see a premature close; there is nobody to tell why).
  const onAbort = (): void => {
    reader.destroy();
  };
  if (await reader.acquire()) {
    if (o.signal) {
      o.signal.addEventListener('abort', onAbort, { once: true });
      reader.once('close', () => o.signal?.removeEventListener('abort', onAbort));
    }
    return reader;
  }
  reader.destroy();
  throw new CoreError('ServiceUnavailable', `no copy of ${o.what} is readable`, { cause: reader.lastError });
}
