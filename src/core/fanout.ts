import { Readable } from 'node:stream';

/**
 * Feeds ONE source stream (a client's request body) to several destinations at once, at the pace of the
 * slowest: a chunk is read from the source only when every live branch has delivered everything it was
 * given and asks for more, so memory stays O(one chunk per branch) whatever the object size, and the
 * client is slowed down by backpressure from every destination.
 *
 * A branch whose destination fails is destroyed (its writer does that) and simply leaves the fan-out: the
 * others go on. While no more than `limit` bytes have been read from the source, the bytes read so far are
 * kept, so a NEW branch can still start from byte 0 (it replays them, then joins the live ones): that is how
 * a destination that fails early is replaced by another backend without the client noticing. Past the
 * limit the recording is dropped and {@link replayable} turns false.
 */
export class FanOut {
  readonly #source: Readable;
  readonly #limit: number;
  readonly #branches = new Set<Branch>();
  #recorded: Buffer[] = [];
  #consumed = 0;
  #ended = false;
  #error: Error | undefined;
  #pumping = false;

  constructor(source: Readable, limit: number) {
    this.#source = source;
    this.#limit = limit;
    source.on('readable', () => this.#pump());
    source.on('end', () => {
      this.#ended = true;
      for (const b of this.#branches) this.#deliver(b, null);
    });
    source.on('error', (err) => {
      this.#error = err;
      for (const b of [...this.#branches]) b.stream.destroy(err);
    });
  }

  /** True while a new branch can still start from byte 0. */
  get replayable(): boolean {
    return this.#consumed <= this.#limit && this.#error === undefined;
  }

  /** Bytes read from the source so far. */
  get consumed(): number {
    return this.#consumed;
  }

  /** A new destination's view of the body, from byte 0. Throws when that is no longer possible. */
  branch(): Readable {
    if (!this.replayable) {
      if (this.#error) {
        const failed = new Readable({ read() {} });
        failed.on('error', () => {});
        failed.destroy(this.#error);
        return failed;
      }
      throw new Error('the body can no longer be replayed from its first byte');
    }
    const queue: (Buffer | null)[] = [...this.#recorded];
    if (this.#ended) queue.push(null);
    const b: Branch = {
      queue,
      wants: false,
      stream: new Readable({
        highWaterMark: 64 * 1024,
        read: () => {
          b.wants = true;
          this.#flush(b);
          this.#pump();
        },
        destroy: (err, cb) => {
          this.#branches.delete(b);
          cb(err);
          // The branch that held the others back may be gone: the rest can go on.
          queueMicrotask(() => this.#pump());
        },
      }),
    };
    // A destination that gave up (or never started reading) must not turn the source's failure into an
    // unhandled 'error' event.
    b.stream.on('error', () => {});
    this.#branches.add(b);
    return b.stream;
  }

  #deliver(b: Branch, chunk: Buffer | null): void {
    b.queue.push(chunk);
    this.#flush(b);
  }

  #flush(b: Branch): void {
    while (b.wants && b.queue.length > 0 && !b.stream.destroyed) {
      const c = b.queue.shift()!;
      b.wants = b.stream.push(c);
      if (c === null) {
        b.wants = false;
        return;
      }
    }
  }

  /** Reads from the source while every live branch has caught up and wants more. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        if (this.#branches.size === 0 || this.#ended) return;
        for (const b of this.#branches) if (!b.wants || b.queue.length > 0) return;
        const chunk = this.#source.read() as Buffer | null;
        if (chunk === null) return;
        this.#consumed += chunk.length;
        if (this.#consumed <= this.#limit) this.#recorded.push(chunk);
        else this.#recorded = [];
        for (const b of this.#branches) this.#deliver(b, chunk);
      }
    } finally {
      this.#pumping = false;
    }
  }
}

interface Branch {
  stream: Readable;
  /** Chunks given to this branch and not yet pushed into its stream; `null` marks the end. */
  queue: (Buffer | null)[];
  /** The branch's consumer asked for data that has not been pushed yet. */
  wants: boolean;
}
