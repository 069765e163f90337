import { Readable, finished } from 'node:stream';

/**
 * Feeds one source stream to successive write attempts. Each attempt gets a fresh Readable that first
 * replays what earlier attempts consumed, then continues from the source, as long as the consumed total
 * stays within `limit` bytes. Beyond that the recording is dropped (memory stays O(limit)) and the write
 * can no longer move to another backend.
 *
 * This is what lets a write whose first backend fails early (connection refused, 5xx before the body was
 * taken) go to the next backend without the client noticing.
 */
export class ReplayableSource {
  readonly #source: Readable;
  readonly #limit: number;
  #recorded: Buffer[] = [];
  #consumed = 0;
  #ended = false;
  #error: Error | undefined;
  #current: Readable | undefined;
  #wake: (() => void) | undefined;

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.#limit = limit;
    source.on('readable', () => this.#notify());
    source.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    source.on('error', (err) => {
      this.#error = err;
      this.#current?.destroy(err);
    });
  }

  /** True while a new attempt can still start from byte 0. */
  get replayable(): boolean {
    return this.#consumed <= this.#limit && this.#error === undefined;
  }

  /** A Readable for a new attempt; the previous attempt's stream must be finished with. */
  attempt(): Readable {
    // A source that failed meanwhile (its error event can trail the backend's own failure) yields an attempt
    // that fails with the source's error, so the write ends the way a failed body should.
    if (this.#consumed > this.#limit && this.#error === undefined) throw new Error('source is no longer replayable');
    const queue = [...this.#recorded];
    const stream = new Readable({
      highWaterMark: 64 * 1024,
      read: () => this.#pump(stream, queue),
      destroy: (err, cb) => {
        if (this.#current === stream) this.#wake = undefined;
        cb(err);
      },
    });
    // The source's failure reaches every attempt; one whose writer already gave up (or never started reading,
    // e.g. a backend that was never connected) must not turn it into an unhandled 'error' event.
    stream.on('error', () => {});
    this.#current = stream;
    if (this.#error) stream.destroy(this.#error);
    return stream;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #pump(stream: Readable, queue: Buffer[]): void {
    for (;;) {
      if (stream.destroyed) return;
      const replay = queue.shift();
      if (replay) {
        if (!stream.push(replay)) return;
        continue;
      }
      const chunk = this.#source.read() as Buffer | null;
      if (chunk !== null) {
        this.#consumed += chunk.length;
        if (this.#consumed <= this.#limit) this.#recorded.push(chunk);
        else this.#recorded = [];
        if (!stream.push(chunk)) return;
        continue;
      }
      if (this.#ended) {
        stream.push(null);
        return;
      }
      this.#wake = () => this.#pump(stream, queue);
      return;
    }
  }
}

/**
 * Resolves once `body` has ended cleanly; rejects with its error. A backend may acknowledge a write as soon
 * as it holds the declared number of bytes, before the body's own end, which is where the S3 layer finishes
 * verifying it (the aws-chunked final chunk and trailer, digests): only after this are its digests valid.
 * Whatever is still unread is drained (the backend already took the declared length, so excess bytes are
 * the client's error, which the verifier reports through the stream).
 */
export function bodyEnded(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const drain = (): void => {
      while (body.read() !== null) {
        // Discarded: see above.
      }
    };
    finished(body, { writable: false }, (err) => {
      body.off('readable', drain);
      if (err) reject(err);
      else resolve();
    });
    body.on('readable', drain);
    drain();
  });
}
