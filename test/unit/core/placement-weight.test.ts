/** `backends.weight` in placement: spread compares fill per unit of weight; weight 0 takes no new copies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rankBackends, rankForMultipart } from '../../../src/core/placement.js';
import type { BackendRow } from '../../../src/meta/queries/backends.js';

function row(name: string, used: number, quota = 0, weight?: number): BackendRow {
  return { name, type: 'fs', quota_bytes: quota, used_bytes: used, reserved_bytes: 0, object_count: 0, state: 'active', ...(weight !== undefined ? { weight } : {}) };
}

describe('placement weight', () => {
  it('spread: unlimited backends are filled in proportion to their weight', () => {
    // a holds 300 at weight 3 (100 per unit), b holds 150 at weight 1 (150 per unit): a first.
    assert.deepEqual(rankBackends([row('a', 300, 0, 3), row('b', 150, 0, 1)], ['a', 'b'], 'spread', 10), ['a', 'b']);
    // Without weights, fewer bytes first.
    assert.deepEqual(rankBackends([row('a', 300), row('b', 150)], ['a', 'b'], 'spread', 10), ['b', 'a']);
  });

  it('spread: quota fill ratios are divided by the weight', () => {
    // a is 60% full at weight 2 (0.3), b is 40% full at weight 1 (0.4): a first.
    assert.deepEqual(rankBackends([row('a', 60, 100, 2), row('b', 40, 100, 1)], ['a', 'b'], 'spread', 1), ['a', 'b']);
  });

  it('weight 0 takes no new copies under any strategy, multipart included', () => {
    const rows = [row('a', 0, 0, 0), row('b', 0, 0, 1)];
    assert.deepEqual(rankBackends(rows, ['a', 'b'], 'pack', 1), ['b']);
    assert.deepEqual(rankBackends(rows, ['a', 'b'], 'spread', 1), ['b']);
    assert.deepEqual(rankForMultipart(rows, ['a', 'b'], 1), ['b']);
  });
});
