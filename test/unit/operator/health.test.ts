/**
 * The backend health state machine (src/core/health.ts) with a controllable clock: transitions driven by
 * call outcomes and probes, which errors count, and which backends are due for a probe.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendError } from '../../../src/backends/backend.js';
import { countsAgainstHealth, HealthTracker } from '../../../src/core/health.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const down = (b = 'a') => new BackendError(b, 'Unavailable', 'connect ECONNREFUSED 127.0.0.1:1');

describe('HealthTracker', () => {
  it('calls_failing_in_a_row_degrade_then_make_unavailable_and_one_success_heals', () => {
    const c = clock();
    const h = new HealthTracker(['a', 'b'], { now: c.now, failuresToUnavailable: 3 });
    const changes: string[] = [];
    h.onChange((x, prev) => changes.push(`${x.name}:${prev}->${x.state}`));
    assert.equal(h.get('a')!.state, 'healthy');
    c.advance(10);
    h.recordCall('a', down());
    assert.equal(h.get('a')!.state, 'degraded');
    assert.equal(h.get('a')!.since.getTime(), 1_000_010);
    h.recordCall('a', down());
    assert.equal(h.get('a')!.state, 'degraded');
    c.advance(5);
    h.recordCall('a', down());
    const a = h.get('a')!;
    assert.equal(a.state, 'unavailable');
    assert.equal(a.since.getTime(), 1_000_015);
    assert.equal(a.consecutiveFailures, 3);
    assert.match(a.lastError!.message, /ECONNREFUSED/);
    assert.equal(h.isAvailable('a'), false);
    assert.equal(h.isAvailable('b'), true);
    c.advance(100);
    h.recordCall('a');
    assert.equal(h.get('a')!.state, 'healthy');
    assert.equal(h.get('a')!.lastOkAt!.getTime(), 1_000_115);
    assert.equal(h.get('a')!.lastError!.at.getTime(), 1_000_015, 'the last error is kept for operators');
    assert.deepEqual(changes, ['a:healthy->degraded', 'a:degraded->unavailable', 'a:unavailable->healthy']);
  });

  it('answers_about_the_request_count_as_success_and_caller_faults_are_ignored', () => {
    const h = new HealthTracker(['a']);
    h.recordCall('a', down());
    h.recordCall('a', new BackendError('a', 'NotFound', 'no such key'));
    assert.equal(h.get('a')!.state, 'healthy', 'a NotFound is an answer from a working backend');
    h.recordCall('a', down());
    h.recordCall('a', new BackendError('a', 'Aborted', 'client went away'));
    h.recordCall('a', new Error('a bug'));
    h.recordCall('a', new BackendError('a', 'Other', 'invalid key'));
    assert.equal(h.get('a')!.state, 'degraded', 'ignored outcomes change nothing');
    assert.equal(h.get('a')!.consecutiveFailures, 1);
    assert.equal(countsAgainstHealth(new BackendError('a', 'AccessDenied', 'key revoked')), true);
    assert.equal(countsAgainstHealth(new BackendError('a', 'Full', 'quota')), false);
  });

  it('a_failed_probe_is_decisive_and_a_good_probe_heals', () => {
    const c = clock();
    const h = new HealthTracker(['a'], { now: c.now });
    h.recordProbe('a', down());
    assert.equal(h.get('a')!.state, 'unavailable');
    assert.deepEqual(h.get('a')!.lastProbe, { at: new Date(c.now()), ok: false });
    c.advance(1);
    h.recordProbe('a');
    assert.equal(h.get('a')!.state, 'healthy');
    assert.equal(h.get('a')!.lastProbe!.ok, true);
  });

  it('probes_idle_healthy_backends_and_retries_unhealthy_ones_sooner', () => {
    const c = clock();
    const h = new HealthTracker(['busy', 'idle', 'sick'], { now: c.now, idleProbeMs: 30_000, retryProbeMs: 5_000 });
    h.recordProbe('sick', down('sick'));
    assert.deepEqual(h.takeDue(), []);
    c.advance(5_000);
    assert.deepEqual(h.takeDue(), ['sick']);
    assert.deepEqual(h.takeDue(), [], 'a probe in progress is not started twice');
    h.recordProbe('sick', down('sick'));
    h.probeDone('sick');
    c.advance(25_000);
    h.recordCall('busy');
    assert.deepEqual(h.takeDue(), ['idle', 'sick'], 'busy had traffic just now');
  });

  it('unknown_names_are_ignored', () => {
    const h = new HealthTracker(['a']);
    h.recordCall('zz', down());
    h.recordProbe('zz');
    assert.equal(h.get('zz'), undefined);
    assert.deepEqual(h.all().map((x) => x.name), ['a']);
  });
});
