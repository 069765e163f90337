/**
 * Task retry backoff (src/core/tasks.ts backoffMs): 1 s after the first failed attempt, doubling, capped
 * at one hour — the schedule docs/data-model.md promises.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs } from '../../../src/core/tasks.js';

describe('backoffMs', () => {
  it('1 s, 2 s, 4 s … doubling from the first attempt', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 10].map(backoffMs), [1000, 2000, 4000, 8000, 16000, 512_000]);
  });

  it('caps at one hour, also for absurd attempt counts', () => {
    assert.equal(backoffMs(13), 3_600_000, '2^12 s would be 68 min');
    assert.equal(backoffMs(12), 2_048_000);
    for (const n of [14, 100, 1100, 1e6]) assert.equal(backoffMs(n), 3_600_000, `attempt ${n}`);
  });

  it('never below 1 s (attempts 0 or negative, e.g. a task never claimed)', () => {
    assert.equal(backoffMs(0), 1000);
    assert.equal(backoffMs(-3), 1000);
  });

  it('never decreases as attempts grow', () => {
    let prev = 0;
    for (let n = 0; n <= 64; n++) {
      const d = backoffMs(n);
      assert.ok(Number.isFinite(d) && d >= prev, `attempt ${n}: ${d} after ${prev}`);
      prev = d;
    }
  });
});
