/**
 * BackendRegistry.readOrder and writable over a real HealthTracker with a controllable clock: breaker state
 * first (closed, half-open, open), then read_priority, then the latency average; writable is false only
 * while the breaker is open; availableFirst (placement) puts open backends last.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendError, type Backend } from '../../../src/backends/backend.js';
import { BackendRegistry } from '../../../src/core/backends.js';
import { HealthTracker } from '../../../src/core/health.js';

/** A backend whose `head` answers after `delayMs` or fails; nothing else is called here. */
function backend(name: string, behaviour: { delayMs?: number; fail?: boolean }): Backend {
  const no = () => Promise.reject(new Error('not used'));
  return {
    name,
    type: 'fs',
    head: async () => {
      await new Promise((r) => setTimeout(r, behaviour.delayMs ?? 0));
      if (behaviour.fail) throw new BackendError(name, 'Unavailable', 'connect ETIMEDOUT');
      return null;
    },
    put: no, get: no, delete: no, copy: no, list: no, check: no, createMultipart: no, uploadPart: no,
    uploadPartCopy: no, completeMultipart: no, abortMultipart: no, close: async () => {},
  } as Backend;
}

describe('BackendRegistry read order', () => {
  it('orders_by_breaker_then_read_priority_then_measured_latency', async () => {
    let t = 1_000_000;
    const names = ['slow', 'fast', 'dead', 'pref'];
    const health = new HealthTracker(names, { now: () => t, breaker: { failures: 1, cooldownMs: 5_000 } });
    const reg = new BackendRegistry(
      [backend('slow', { delayMs: 60 }), backend('fast', { delayMs: 1 }), backend('dead', { fail: true }), backend('pref', { delayMs: 80 })],
      undefined,
      health,
    );
    assert.deepEqual(reg.readOrder(names), names, 'nothing known: the given order');
    for (const n of names) await reg.get(n)!.head('k').catch(() => undefined);
    assert.equal(health.breakerState('dead'), 'open');
    assert.ok(health.latency('slow')! > health.latency('fast')!, 'latency measured through the registry');
    assert.deepEqual(reg.readOrder(names), ['fast', 'slow', 'pref', 'dead']);
    reg.setReadPriorities([['pref', -1], ['fast', 2]]);
    assert.deepEqual(reg.readOrder(names), ['pref', 'slow', 'fast', 'dead'], 'lower read_priority first, latency within a priority');
    assert.equal(reg.writable('dead'), false);
    assert.equal(reg.writable('slow'), true);
    assert.deepEqual(reg.availableFirst(['dead', 'slow']), ['slow', 'dead'], 'placement tries open backends last');
    t += 5_000;
    assert.equal(health.breakerState('dead'), 'half_open');
    assert.equal(reg.writable('dead'), true, 'a half-open backend takes trial writes');
    health.recordCall('slow', new BackendError('slow', 'Unavailable', 'x'));
    assert.deepEqual(reg.readOrder(names), ['pref', 'fast', 'dead', 'slow'], 'closed, then half-open, then open');
    assert.deepEqual(reg.readOrder(['dead', 'unknown']), ['unknown', 'dead'], 'an unknown backend counts as closed, priority 0');
  });
});
