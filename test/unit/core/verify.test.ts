/**
 * The byte checks of copy-version and the deep scrub (size, single-part MD5, multipart ETag recomputed from
 * part sizes) and the bandwidth token bucket.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { Bandwidth, BytesCheck, expectedBytes } from '../../../src/core/verify.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest();

async function check(data: Buffer, want: ReturnType<typeof expectedBytes>, chunk = 7): Promise<string | undefined> {
  const c = new BytesCheck(want);
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), c, new Writable({ write: (_c, _e, cb) => cb() }));
  return c.mismatch();
}

test('single-part: the MD5 and the size are checked', async () => {
  const data = Buffer.from('the quick brown fox');
  const etag = md5(data).toString('hex');
  assert.equal(await check(data, expectedBytes(data.length, `"${etag}"`, null)), undefined);
  const bad = Buffer.from(data);
  bad[3] ^= 1;
  assert.match((await check(bad, expectedBytes(data.length, etag, null)))!, /^ETag [0-9a-f]{32}, expected/);
  assert.match((await check(data.subarray(1), expectedBytes(data.length, etag, null)))!, /^size 18, expected 19/);
});

test('multipart: md5 of the part md5s over the stored part sizes, whatever the chunking', async () => {
  const parts = [Buffer.alloc(10, 'a'), Buffer.alloc(13, 'b'), Buffer.alloc(4, 'c')];
  const etag = `${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-3`;
  const data = Buffer.concat(parts);
  const want = expectedBytes(data.length, etag, [10, 13, 4]);
  assert.ok(want.partSizes);
  for (const chunk of [1, 3, 10, 27, 100]) assert.equal(await check(data, want, chunk), undefined, `chunk ${chunk}`);
  const swapped = Buffer.concat([parts[0]!, Buffer.alloc(13, 'c'), Buffer.alloc(4, 'b')]);
  assert.match((await check(swapped, want))!, /ETag/);
});

test('what cannot be recomputed is checked by size only', () => {
  assert.deepEqual(expectedBytes(5, 'abc-2', null), { size: 5 }, 'multipart without part sizes');
  assert.deepEqual(expectedBytes(5, `${'a'.repeat(32)}-2`, [1, 1]), { size: 5 }, 'part sizes that do not add up');
  assert.deepEqual(expectedBytes(5, 'not-an-md5', null), { size: 5 });
  assert.deepEqual(expectedBytes(5, null, null), { size: 5 });
});

test('the bandwidth bucket paces a stream to its rate (after a one-second burst) and 0 is unlimited', async () => {
  const rate = 200_000;
  const b = new Bandwidth(rate);
  const start = Date.now();
  const data = Array.from({ length: 20 }, () => Buffer.alloc(20_000));
  await pipeline(Readable.from(data), b.throttle(), new Writable({ write: (_c, _e, cb) => cb() }));
  const ms = Date.now() - start;
  // 400 kB at 200 kB/s with a 200 kB burst: about one second.
  assert.ok(ms >= 900 && ms < 3_000, `took ${ms} ms`);
  const free = new Bandwidth(0);
  assert.equal(free.limited, false);
  const t = Date.now();
  await free.take(1e9);
  assert.ok(Date.now() - t < 50);
});
