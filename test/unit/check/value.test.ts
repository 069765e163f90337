/** Self-identifying values: a whole body verifies; short, spliced, re-labelled or foreign bodies do not. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { makeValue, parseValue, ValueVerifier } from '../../../src/check/value.js';

describe('checker values', () => {
  it('a whole value verifies and names its write and key, fed at once or byte by byte', () => {
    const v = makeValue('c1-7', 'run/k3', 1000);
    const body = Buffer.concat(v.parts);
    assert.equal(body.length, 1000);
    assert.deepEqual(parseValue(body), { ok: true, writeId: 'c1-7', key: 'run/k3', size: 1000 });
    const s = new ValueVerifier();
    for (const b of body) s.update(Buffer.from([b]));
    assert.deepEqual(s.finish(), { ok: true, writeId: 'c1-7', key: 'run/k3', size: 1000 });
    assert.equal(v.md5, createHash('md5').update(body).digest('hex'));
    assert.deepEqual(v.etags, [v.md5]);
  });

  it('a short body, bytes of another value spliced in, or a rewritten header are caught', () => {
    const a = Buffer.concat(makeValue('a', 'k', 600).parts);
    const b = Buffer.concat(makeValue('b', 'k', 600).parts);
    const short = parseValue(a.subarray(0, 599));
    assert.equal(short.ok, false);
    assert.match((short as { error: string }).error, /599 bytes, the value has 600/);
    const spliced = Buffer.concat([a.subarray(0, 300), b.subarray(300)]);
    assert.match((parseValue(spliced) as { error: string }).error, /hash mismatch/);
    const relabelled = Buffer.from(a.toString('latin1').replace('s3chk1 a k', 's3chk1 b k'), 'latin1');
    assert.equal(parseValue(relabelled).ok, false);
    assert.match((parseValue(Buffer.from('hello')) as { error: string }).error, /no header line/);
    assert.match((parseValue(Buffer.from('GET / HTTP/1.1\nx')) as { error: string }).error, /unparseable header/);
  });

  it('a multipart value knows its S3 ETag (MD5 of the part MD5s, dash, part count)', () => {
    const v = makeValue('m1', 'k', 5 * 1024 * 1024 + 10, [5 * 1024 * 1024]);
    assert.deepEqual(v.parts.map((p) => p.length), [5 * 1024 * 1024, 10]);
    const h = createHash('md5');
    for (const p of v.parts) h.update(createHash('md5').update(p).digest());
    assert.deepEqual(v.etags, [v.md5, `${h.digest('hex')}-2`]);
    assert.equal(parseValue(Buffer.concat(v.parts)).ok, true);
  });
});
