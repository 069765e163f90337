/**
 * Placement ranking (src/core/placement.ts): which backends may take `size` more bytes and in which order,
 * for `pack` and `spread`. Pure functions over backend rows; the reservation itself is tested against the
 * database in the integration suite.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nextTarget, rankBackends, rankForMultipart, spreadZones } from '../../../src/core/placement.js';
import type { BackendRow } from '../../../src/meta/queries/backends.js';

function row(name: string, quota: number, used: number, reserved = 0, state?: BackendRow['state']): BackendRow {
  return { name, type: 's3', quota_bytes: quota, used_bytes: used, reserved_bytes: reserved, object_count: 0, ...(state ? { state } : {}) };
}

const MiB = 1024 * 1024;

describe('rankBackends', () => {
  it('pack keeps the configured order and drops what cannot fit', () => {
    const rows = [row('a', 100, 95), row('b', 100, 10), row('c', 0, 1_000_000), row('d', 100, 50, 45)];
    assert.deepEqual(rankBackends(rows, ['a', 'b', 'c', 'd'], 'pack', 10), ['b', 'c']);
    assert.deepEqual(rankBackends(rows, ['d', 'c', 'b', 'a'], 'pack', 5), ['d', 'c', 'b', 'a']);
  });

  it('a write that fills a backend exactly fits; one byte more does not', () => {
    const rows = [row('a', 100, 60, 30)];
    assert.deepEqual(rankBackends(rows, ['a'], 'pack', 10), ['a']);
    assert.deepEqual(rankBackends(rows, ['a'], 'pack', 11), []);
  });

  it('quota 0 is unlimited', () => {
    assert.deepEqual(rankBackends([row('u', 0, 2 ** 50)], ['u'], 'pack', 2 ** 40), ['u']);
  });

  it('reserved bytes count like used bytes', () => {
    assert.deepEqual(rankBackends([row('a', 100, 0, 95)], ['a'], 'pack', 10), []);
  });

  it('excluded backends and names without a row are skipped; rows not configured are ignored', () => {
    const rows = [row('a', 0, 0), row('b', 0, 0), row('stray', 0, 0)];
    assert.deepEqual(rankBackends(rows, ['a', 'gone', 'b'], 'pack', 1, new Set(['a'])), ['b']);
    assert.deepEqual(rankBackends(rows, ['a', 'b'], 'spread', 1), ['a', 'b']);
  });

  it('spread orders by (used + reserved) / quota, lowest first', () => {
    const rows = [row('full', 100, 80), row('half', 1000, 400, 100), row('empty', 10, 0), row('mid', 100, 30)];
    assert.deepEqual(rankBackends(rows, ['full', 'half', 'empty', 'mid'], 'spread', 1), ['empty', 'mid', 'half', 'full']);
  });

  it('spread: an unlimited backend counts as ratio 0; ties go to fewer bytes, then configured order', () => {
    const rows = [row('big', 0, 500), row('small', 0, 20), row('zero', 100, 0), row('zero2', 50, 0), row('r', 100, 10)];
    assert.deepEqual(rankBackends(rows, ['big', 'zero2', 'small', 'zero', 'r'], 'spread', 1), ['zero2', 'zero', 'small', 'big', 'r']);
  });

  it('only active backends take new writes (read_only, draining, removed do not)', () => {
    const rows = [row('ro', 0, 0, 0, 'read_only'), row('dr', 0, 0, 0, 'draining'), row('rm', 0, 0, 0, 'removed'), row('ok', 0, 0, 0, 'active'), row('old', 0, 0)];
    const order = ['ro', 'dr', 'rm', 'ok', 'old'];
    assert.deepEqual(rankBackends(rows, order, 'pack', 1), ['ok', 'old']);
    assert.deepEqual(rankBackends(rows, order, 'spread', 1), ['ok', 'old']);
  });

  it('spread never ranks a backend the write cannot fit', () => {
    const rows = [row('a', 100, 0), row('b', 1000, 950)];
    assert.deepEqual(rankBackends(rows, ['a', 'b'], 'spread', 60), ['a']);
    assert.deepEqual(rankBackends(rows, ['a', 'b'], 'spread', 101), []);
  });
});

describe('rankForMultipart', () => {
  it('most free room first whatever the configured order; unlimited first; ties in configured order', () => {
    const rows = [row('small', 100 * MiB, 90 * MiB), row('large', 1000 * MiB, 0), row('mid', 500 * MiB, 100 * MiB), row('inf', 0, 10 ** 12), row('inf2', 0, 0)];
    assert.deepEqual(rankForMultipart(rows, ['small', 'large', 'mid', 'inf', 'inf2'], 5 * MiB), ['inf', 'inf2', 'large', 'mid', 'small']);
    const tie = [row('x', 100 * MiB, 50 * MiB), row('y', 60 * MiB, 10 * MiB)];
    assert.deepEqual(rankForMultipart(tie, ['y', 'x'], 5 * MiB), ['y', 'x']);
    assert.deepEqual(rankForMultipart(tie, ['x', 'y'], 5 * MiB), ['x', 'y']);
  });

  it('needs room for one minimum-size part (reservations count), and an active backend', () => {
    const rows = [row('almost', 100 * MiB, 90 * MiB, 6 * MiB), row('exact', 100 * MiB, 95 * MiB), row('ro', 0, 0, 0, 'read_only')];
    assert.deepEqual(rankForMultipart(rows, ['almost', 'exact', 'ro'], 5 * MiB), ['exact']);
  });

  it('with pack, the first backend nearly full is not chosen over an empty one', () => {
    const rows = [row('first', 100 * MiB, 94 * MiB), row('second', 100 * MiB, 0)];
    assert.deepEqual(rankBackends(rows, ['first', 'second'], 'pack', 5 * MiB), ['first', 'second']);
    assert.deepEqual(rankForMultipart(rows, ['first', 'second'], 5 * MiB), ['second', 'first']);
  });
});

describe('spreadZones / nextTarget', () => {
  const zones: Record<string, string | undefined> = { a1: 'a', a2: 'a', a3: 'a', b1: 'b', b2: 'b', c1: 'c', n1: undefined };
  const zoneOf = (n: string) => zones[n];
  it('zones take turns in the order of their best backend; rank order kept within a zone', () => {
    assert.deepEqual(spreadZones(['a1', 'a2', 'b1', 'a3', 'c1', 'b2'], zoneOf), ['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });
  it('a backend without a zone is a zone of its own', () => {
    assert.deepEqual(spreadZones(['a1', 'a2', 'n1'], zoneOf), ['a1', 'n1', 'a2']);
  });
  it('nextTarget prefers an untried backend in an unused zone, else any untried one', () => {
    assert.equal(nextTarget(['a1', 'a2', 'b1'], new Set(['a1']), new Set(['a']), zoneOf), 'b1');
    assert.equal(nextTarget(['a1', 'a2', 'b1'], new Set(['a1', 'b1']), new Set(['a', 'b']), zoneOf), 'a2');
    assert.equal(nextTarget(['a1'], new Set(['a1']), new Set(), zoneOf), undefined);
  });
});
