/**
 * The pure key functions of listing (src/core/list.ts): code-point comparison, the successor of a prefix
 * (the exclusive upper bound of "starts with") and the common prefix of a key. Checked against UTF-8 byte
 * order computed with Buffer.compare, on fixed cases and on generated strings drawn from the boundaries
 * of the UTF-8 encodings (1–4 bytes), the surrogate gap, U+FFFF, U+10000 and U+10FFFF.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commonPrefixOf, compareKeys, prefixSuccessor } from '../../../src/core/list.js';

const byteCmp = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
const show = (s: string | undefined) =>
  s === undefined ? 'undefined' : JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);

/** Code points at the edges of UTF-8 lengths and of UTF-16's order trap. */
const POOL = [
  0x01, 0x2d, 0x2f, 0x30, 0x61, 0x62, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x1f600, 0x1f601,
  0x10fffe, 0x10ffff,
];

/** Deterministic strings of 0..maxLen code points from POOL (xorshift32). */
function* strings(count: number, maxLen: number, seed: number): Generator<string> {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  for (let i = 0; i < count; i++) {
    const len = next() % (maxLen + 1);
    yield String.fromCodePoint(...Array.from({ length: len }, () => POOL[next() % POOL.length]!));
  }
}

describe('compareKeys', () => {
  it('orders like UTF-8 bytes where UTF-16 code units do not', () => {
    // U+FFFF is EF BF BF, U+10000 is F0 90 80 80: UTF-8 puts U+FFFF first, UTF-16 (0xFFFF vs 0xD800) the other way.
    assert.ok('\uFFFF' > '\u{10000}', 'the trap: JavaScript compares UTF-16 code units');
    assert.ok(compareKeys('\uFFFF', '\u{10000}') < 0);
    assert.ok(compareKeys('\uE000', '\u{1F600}') < 0);
    assert.ok(compareKeys('a\u{10FFFF}', 'a\uFFFD') > 0);
    assert.equal(compareKeys('same', 'same'), 0);
    assert.ok(compareKeys('ab', 'abc') < 0, 'a proper prefix sorts first');
    assert.ok(compareKeys('', 'a') < 0);
  });

  it('agrees with Buffer.compare on generated strings', () => {
    const xs = [...strings(400, 4, 7)];
    for (const a of xs) for (const b of xs.slice(0, 60)) assert.equal(Math.sign(compareKeys(a, b)), byteCmp(a, b), `${show(a)} vs ${show(b)}`);
  });
});

describe('prefixSuccessor', () => {
  it('fixed cases', () => {
    const cases: Array<[string, string | undefined]> = [
      ['', undefined],
      ['a', 'b'],
      ['a/', 'a0'],
      ['photos/2024/', 'photos/20240'],
      ['\u{10FFFF}', undefined],
      ['\u{10FFFF}\u{10FFFF}', undefined],
      ['a\u{10FFFF}', 'b'],
      ['ab\u{10FFFF}\u{10FFFF}', 'ac'],
      ['x\uD7FF', 'x\uE000'], // skips the surrogate block
      ['x\uFFFF', 'x\u{10000}'], // crosses from 3- to 4-byte UTF-8
      ['x\u{1F600}', 'x\u{1F601}'],
      ['x\u{10FFFE}', 'x\u{10FFFF}'],
      ['é', 'ê'],
      ['\x7f', '\x80'],
    ];
    for (const [p, want] of cases) assert.equal(show(prefixSuccessor(p)), show(want), `successor of ${show(p)}`);
  });

  it('bounds exactly the strings that start with the prefix (generated)', () => {
    const prefixes = [...strings(150, 3, 11)];
    const probes = [...strings(300, 5, 13)];
    for (const p of prefixes) {
      const succ = prefixSuccessor(p);
      if (succ === undefined) {
        // No upper bound: every string >= p starts with p (p is empty or all U+10FFFF).
        assert.ok([...p].every((c) => c === '\u{10FFFF}'), `only empty or U+10FFFF prefixes lack a successor, not ${show(p)}`);
        for (const s of probes) if (byteCmp(s, p) >= 0) assert.ok(s.startsWith(p), `${show(s)} >= ${show(p)}`);
        continue;
      }
      assert.ok(byteCmp(succ, p) > 0 && !succ.startsWith(p), `successor of ${show(p)} lies above it`);
      for (const s of [...probes, ...probes.map((x) => p + x)]) {
        const inRange: boolean = byteCmp(s, p) >= 0 && byteCmp(s, succ) < 0;
        assert.equal(inRange, s.startsWith(p), `${show(s)} in [${show(p)}, ${show(succ)}) iff it starts with the prefix`);
      }
    }
  });
});

describe('commonPrefixOf', () => {
  it('cuts after the first delimiter following the prefix', () => {
    assert.equal(commonPrefixOf('a/b/c', 'a/', '/'), 'a/b/');
    assert.equal(commonPrefixOf('a/b/c', '', '/'), 'a/');
    assert.equal(commonPrefixOf('a/b', 'a/', '/'), undefined);
    assert.equal(commonPrefixOf('a/', 'a/', '/'), undefined, 'a key equal to the prefix is a key');
    assert.equal(commonPrefixOf('a', 'a', '/'), undefined);
    assert.equal(commonPrefixOf('x--y--z', '', '--'), 'x--');
    assert.equal(commonPrefixOf('x--y--z', 'x--', '--'), 'x--y--', 'a delimiter inside the prefix does not count');
    assert.equal(commonPrefixOf('x-', 'x', '--'), undefined);
    assert.equal(commonPrefixOf('baaa', '', 'aa'), 'baa', 'overlapping delimiter characters: first occurrence');
    assert.equal(commonPrefixOf('d/a\u{1F600}b', 'd/', '\u{1F600}'), 'd/a\u{1F600}');
    assert.equal(commonPrefixOf('z/\u{10FFFF}\u{10FFFF}x', 'z/', '\u{10FFFF}'), 'z/\u{10FFFF}');
  });

  it('the successor of a common prefix is above every key rolled into it (generated)', () => {
    for (const key of strings(500, 6, 17)) {
      for (const d of ['/', '\u{10FFFF}', '\uFFFF', '\u{1F600}/']) {
        const cp = commonPrefixOf(key, '', d);
        if (cp === undefined) continue;
        assert.ok(key.startsWith(cp) && cp.endsWith(d));
        const succ = prefixSuccessor(cp);
        if (succ !== undefined) assert.ok(byteCmp(key, succ) < 0, `${show(key)} < successor of ${show(cp)}`);
      }
    }
  });
});
