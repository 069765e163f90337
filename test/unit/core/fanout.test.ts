import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { FanOut } from '../../../src/core/fanout.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A source producing `total` bytes in 16 KiB chunks, counting what was pulled from it. */
function source(total: number): { stream: Readable; pulled: () => number; data: Buffer } {
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
  let off = 0;
  const stream = new Readable({
    highWaterMark: 16 * 1024,
    read() {
      if (off >= total) return void this.push(null);
      const n = Math.min(16 * 1024, total - off);
      this.push(data.subarray(off, off + n));
      off += n;
    },
  });
  return { stream, pulled: () => off, data };
}

/** Consumes a stream, optionally pausing `delayMs` per chunk; resolves with its bytes. */
async function consume(s: Readable, delayMs = 0): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    s,
    new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _e, cb) {
        parts.push(chunk);
        if (delayMs) setTimeout(cb, delayMs);
        else cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('FanOut', () => {
  test('every branch receives the whole body, byte-exact', async () => {
    const src = source(3 * 1024 * 1024 + 123);
    const fan = new FanOut(src.stream, 256 * 1024);
    const outs = await Promise.all([consume(fan.branch()), consume(fan.branch()), consume(fan.branch())]);
    for (const o of outs) assert.equal(md5(o), md5(src.data));
  });

  test('the source is read at the pace of the slowest branch (bounded memory)', async () => {
    const src = source(8 * 1024 * 1024);
    const fan = new FanOut(src.stream, 0);
    const fast = fan.branch();
    const slow = fan.branch();
    let slowGot = 0;
    let maxAhead = 0;
    const slowDone = consume(
      slow.on('data', (c: Buffer) => {
        slowGot += c.length;
        maxAhead = Math.max(maxAhead, src.pulled() - slowGot);
      }),
      1,
    );
    const [a, b] = await Promise.all([consume(fast), slowDone]);
    assert.equal(md5(a), md5(src.data));
    assert.equal(md5(b), md5(src.data));
    // What was pulled from the source never runs ahead of the slow branch by more than a few buffers.
    assert.ok(maxAhead <= 512 * 1024, `source ran ${maxAhead} bytes ahead of the slowest branch`);
  });

  test('a destroyed branch leaves the fan-out and the others complete', async () => {
    const src = source(2 * 1024 * 1024);
    const fan = new FanOut(src.stream, 0);
    const keep = fan.branch();
    const dropped = fan.branch();
    let seen = 0;
    dropped.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > 100 * 1024) dropped.destroy(new Error('destination failed'));
    });
    dropped.on('error', () => {});
    assert.equal(md5(await consume(keep)), md5(src.data));
  });

  test('a branch started within the replay window begins at byte 0; past it, no new branch', async () => {
    const src = source(1024 * 1024);
    const fan = new FanOut(src.stream, 256 * 1024);
    const first = fan.branch();
    // Take ~64 KiB, then fail that branch (a backend that failed early).
    const early: Buffer[] = [];
    await new Promise<void>((resolve) => {
      first.on('data', (c: Buffer) => {
        early.push(c);
        if (Buffer.concat(early).length >= 64 * 1024) {
          first.pause();
          resolve();
        }
      });
    });
    assert.ok(fan.replayable);
    const second = fan.branch();
    first.destroy();
    const all = await consume(second);
    assert.equal(md5(all), md5(src.data));
    assert.equal(fan.replayable, false);
    assert.throws(() => fan.branch(), /can no longer be replayed/);
  });

  test("the source's failure reaches every branch", async () => {
    const src = new PassThrough();
    const fan = new FanOut(src, 0);
    const a = consume(fan.branch());
    const b = consume(fan.branch());
    src.write(Buffer.alloc(1000));
    src.destroy(new Error('client went away'));
    await assert.rejects(a, /client went away/);
    await assert.rejects(b, /client went away/);
  });

  test('an empty body ends every branch', async () => {
    const fan = new FanOut(Readable.from([]), 0);
    const outs = await Promise.all([consume(fan.branch()), consume(fan.branch())]);
    for (const o of outs) assert.equal(o.length, 0);
  });
});
