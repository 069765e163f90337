/**
 * The checker on hand-made histories: each anomaly class is found (with the operations that show it), and
 * valid histories — concurrent writes read in either order, unknown outcomes seen late or never, 404s
 * explained by concurrent deletes — are accepted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, formatResult, type AnomalyKind } from '../../../src/check/checker.js';
import { H } from './build.js';

function kinds(h: H): AnomalyKind[] {
  return checkHistory(h.ops).anomalies.map((a) => a.kind);
}
function assertValid(h: H): void {
  const r = checkHistory(h.ops);
  assert.deepEqual(r.anomalies, [], formatResult(r));
}
function only(h: H, kind: AnomalyKind, opIds?: number[]) {
  const r = checkHistory(h.ops);
  assert.deepEqual(
    r.anomalies.map((a) => a.kind),
    [kind],
    formatResult(r),
  );
  if (opIds) assert.deepEqual(r.anomalies[0]!.ops.map((o) => o.id).sort((a, b) => a - b), opIds, formatResult(r));
  return r.anomalies[0]!;
}

describe('checker: reads of values', () => {
  it('a read after an acknowledged overwrite that returns the older value is a stale read', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 2, 3);
    h.get('k', 'w1', 4, 5);
    const a = only(h, 'stale-read', [0, 1, 2]);
    assert.match(a.message, /returned w1/);
  });

  it('concurrent writes may be read in either order, as long as the reads agree on one order', () => {
    const h = new H();
    h.put('k', 'w1', 0, 10);
    h.put('k', 'w2', 1, 9);
    h.get('k', 'w1', 11, 12);
    h.get('k', 'w1', 13, 14);
    assertValid(h);
    const h2 = new H();
    h2.put('k', 'w1', 0, 10);
    h2.put('k', 'w2', 1, 9);
    h2.get('k', 'w2', 2, 12);
    h2.get('k', 'w1', 3, 13); // overlapping reads may see the two values either way round
    h2.get('k', 'w1', 14, 15);
    assertValid(h2);
  });

  it('two later reads that disagree about the order of concurrent writes are caught', () => {
    const h = new H();
    h.put('k', 'w1', 0, 10);
    h.put('k', 'w2', 1, 9);
    h.get('k', 'w1', 11, 12);
    h.get('k', 'w2', 13, 14);
    only(h, 'stale-read', [0, 1, 2, 3]);
  });

  it('a read concurrent with a write may return the old or the new value', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 2, 6);
    h.get('k', 'w1', 3, 4);
    h.get('k', 'w2', 3.5, 5);
    h.get('k', 'w2', 7, 8);
    assertValid(h);
  });

  it('a value never written, a value of another key, a failed write, a read from the future', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.get('k', 'w9', 2, 3);
    assert.deepEqual(kinds(h), ['unknown-value']);
    const h2 = new H();
    h2.put('other', 'w1', 0, 1);
    h2.get('k', 'w1', 2, 3);
    assert.deepEqual(kinds(h2), ['foreign-value']);
    const h3 = new H();
    h3.put('k', 'w1', 0, 1, 'fail');
    h3.get('k', 'w1', 2, 3);
    assert.deepEqual(kinds(h3), ['failed-write-visible']);
    const h4 = new H();
    h4.get('k', 'w1', 0, 1);
    h4.put('k', 'w1', 2, 3);
    assert.deepEqual(kinds(h4), ['future-read']);
    const h5 = new H();
    h5.get('k', '', 0, 1);
    assert.deepEqual(kinds(h5), ['unknown-value']);
  });

  it('a short, spliced or mismatched body, and metadata of another value', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 0, 1);
    h.get('k', 'w1', 2, 3, { bodyError: '40 bytes, the value has 100' });
    h.get('k', 'w1', 4, 5, { origin: 'w2' }); // metadata of w1, bytes of w2
    h.head('k', 'w1', 6, 7, { etag: 'e-w2' });
    h.head('k', 'w1', 8, 9, { size: 99 });
    assert.deepEqual(kinds(h), ['corrupt-body', 'corrupt-body', 'corrupt-metadata', 'corrupt-metadata']);
  });
});

describe('checker: deletes and 404s', () => {
  it('an acknowledged delete before the read makes a 404, unless a later or concurrent write explains the value', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.del('k', 2, 3);
    h.get('k', null, 4, 5);
    h.put('k', 'w2', 6, 10);
    h.get('k', 'w2', 7, 8); // concurrent with its write
    h.get('k', null, 11, 12).id; // …but then 404 again with no delete: the write was lost
    const a = only(h, 'stale-404');
    assert.deepEqual(a.ops.map((o) => o.id), [1, 3, 4, 5]);
  });

  it('a deleted value that comes back is a stale read', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.del('k', 2, 3);
    h.get('k', 'w1', 4, 5);
    only(h, 'stale-read', [0, 1, 2]);
  });

  it('a 404 after an acknowledged write needs a delete that may come after it', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.get('k', null, 2, 3);
    only(h, 'stale-404', [0, 1]);
    const ok = new H();
    ok.put('k', 'w1', 0, 1);
    ok.del('k', 1.5, 20, 'unknown');
    ok.get('k', null, 2, 3);
    ok.get('k', null, 4, 5);
    assertValid(ok);
    const concurrent = new H();
    concurrent.del('k', 0, 10);
    concurrent.put('k', 'w1', 1, 2);
    concurrent.get('k', null, 3, 4); // the delete may have come after the write
    assertValid(concurrent);
  });

  it('a 404 before any write is the initial state; a write of unknown outcome never seen is fine', () => {
    const h = new H();
    h.get('k', null, 0, 1);
    h.put('k', 'w1', 2, 3, 'unknown');
    h.get('k', null, 4, 5);
    h.put('k', 'w2', 6, 7, 'fail');
    h.get('k', null, 8, 9);
    assertValid(h);
  });
});

describe('checker: unknown outcomes must be consistent', () => {
  it('a write of unknown outcome may take effect late, but once seen it cannot vanish and come back', () => {
    const late = new H();
    late.put('k', 'w1', 0, 2, 'unknown');
    late.get('k', null, 3, 4);
    late.get('k', 'w1', 5, 6); // took effect after the client gave up
    late.get('k', 'w1', 7, 8);
    assertValid(late);
    const vanish = new H();
    vanish.put('k', 'w1', 0, 2, 'unknown');
    vanish.get('k', 'w1', 3, 4);
    vanish.get('k', null, 5, 6);
    only(vanish, 'stale-404', [0, 1, 2]);
    const back = new H();
    back.put('k', 'w0', 0, 1);
    back.put('k', 'w1', 0, 2, 'unknown');
    back.get('k', 'w1', 3, 4);
    back.get('k', 'w0', 5, 6);
    back.get('k', 'w1', 7, 8);
    assert.deepEqual(kinds(back), ['stale-read', 'stale-read']);
  });

  it('an overwritten value of unknown outcome does not reappear', () => {
    const h = new H();
    h.put('k', 'w1', 0, 2, 'unknown');
    h.get('k', 'w1', 3, 4);
    h.put('k', 'w2', 5, 6);
    h.get('k', 'w1', 7, 8);
    only(h, 'stale-read', [0, 1, 2, 3]);
  });
});

describe('checker: listings', () => {
  it('a listing after an acknowledged write includes the key unless a delete may have come after it', () => {
    const h = new H();
    h.put('p/a', 'w1', 0, 1);
    h.put('p/b', 'w2', 0, 1);
    h.del('p/b', 1.5, 30, 'unknown');
    h.list('p/', ['p/b=w2'], 2, 3);
    only(h, 'list-missing', [0, 3]);
  });

  it('a listing after an acknowledged delete does not show the key, unless a write may have come after it', () => {
    const h = new H();
    h.put('p/a', 'w1', 0, 1);
    h.del('p/a', 2, 3);
    h.list('p/', ['p/a=w1'], 4, 5);
    only(h, 'list-phantom');
    const ok = new H();
    ok.put('p/a', 'w1', 0, 1);
    ok.del('p/a', 2, 3);
    ok.put('p/a', 'w2', 2.5, 9);
    ok.list('p/', ['p/a=w2'], 4, 5);
    assertValid(ok);
  });

  it('a listing with a key nobody wrote, or an ETag no value has', () => {
    const h = new H();
    h.put('p/a', 'w1', 0, 1);
    h.list('p/', ['p/a=w1', 'p/zz=w1'], 2, 3);
    assert.deepEqual(kinds(h), ['list-phantom']);
    const h2 = new H();
    h2.put('p/a', 'w1', 0, 1);
    h2.list('p/', ['p/a=w7'], 2, 3);
    assert.deepEqual(kinds(h2), ['corrupt-metadata']);
  });
});

describe('checker: copies', () => {
  it('a copy is a write of the destination and a read of its source', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.copy('k', 'c', 'x1', 2, 3, 'ok', 'w1');
    h.get('c', 'x1', 4, 5, { origin: 'w1' });
    h.head('c', 'x1', 6, 7, { origin: 'w1' });
    assertValid(h);
  });

  it('a copy that copied an overwritten value is a stale read of its source', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 2, 3);
    h.copy('k', 'c', 'x1', 4, 5, 'ok', 'w1');
    only(h, 'stale-read', [0, 1, 2]);
  });

  it('the bytes of a copy must be the value it answered, of its source', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 0, 1);
    h.copy('k', 'c', 'x1', 2, 3, 'ok', 'w1');
    h.get('c', 'x1', 4, 5, { origin: 'w2' });
    assert.deepEqual(kinds(h), ['corrupt-body']);
  });

  it('a copy of unknown outcome is identified by what a later read of it shows', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 2, 3);
    h.copy('k', 'c', 'x1', 4, 5, 'unknown');
    h.get('c', 'x1', 6, 7, { origin: 'w1' }); // it copied w1 although w2 had replaced it before it began
    assert.deepEqual(kinds(h), ['stale-read']);
  });

  it('a copy answered NoSuchKey is a 404 read of its source', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.copy('k', 'c', 'x1', 2, 3, 'fail', undefined, 'NoSuchKey');
    only(h, 'stale-404', [0, 1]);
  });
});

describe('checker: order anomalies only the zone test sees', () => {
  it('two values each current over overlapping intervals', () => {
    const h = new H();
    h.put('k', 'w1', 0, 10);
    h.put('k', 'w2', 0, 10);
    h.get('k', 'w1', 1, 2);
    h.get('k', 'w2', 1.5, 3);
    h.get('k', 'w1', 4, 11);
    h.get('k', 'w2', 5, 12);
    only(h, 'order');
  });

  it('the same shape with the reads spread out is linearizable', () => {
    const h = new H();
    h.put('k', 'w1', 0, 10);
    h.put('k', 'w2', 0, 10);
    h.get('k', 'w1', 1, 3);
    h.get('k', 'w2', 2, 6);
    h.get('k', 'w1', 4, 8);
    assertValid(h);
  });
});

describe('checker: report', () => {
  it('counts operations by kind and outcome and prints each anomaly with its sub-history', () => {
    const h = new H();
    h.put('k', 'w1', 0, 1);
    h.put('k', 'w2', 2, 3);
    h.get('k', 'w1', 4, 5);
    h.failedRead('k', 6, 7);
    const r = checkHistory(h.ops);
    assert.deepEqual(r.counts, { put: { ok: 2, fail: 0, unknown: 0 }, get: { ok: 1, fail: 0, unknown: 1 } });
    const text = formatResult(r);
    assert.match(text, /anomalies: 1 \(stale-read 1\)/);
    assert.match(text, /#2 c0 get k \[4\.0, 5\.0\] ok → w1/);
  });
});
