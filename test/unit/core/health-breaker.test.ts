/**
 * The per-backend circuit breaker (src/core/health.ts) with a controllable clock: every transition
 * (closed → open by failures in a row, by error rate over the sliding window, by a failed probe;
 * open → half-open after the cool-down or on a success; half-open → closed after K successes;
 * half-open → open when a trial fails), the health states derived from it, the transition events,
 * and the latency average.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendError } from '../../../src/backends/backend.js';
import { BREAKER_DEFAULTS, HealthTracker, type BreakerTransition } from '../../../src/core/health.js';
import { BREAKER_KEY_DEFAULTS } from '../../../src/config/breaker.js';

function clock(start = 5_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const down = (b = 'a') => new BackendError(b, 'Unavailable', 'first byte timeout after 200 ms');
const answer = (b = 'a') => new BackendError(b, 'NotFound', 'no such key');

function tracker(opts: ConstructorParameters<typeof HealthTracker>[1] = {}) {
  const c = clock();
  const h = new HealthTracker(['a', 'b'], { now: c.now, ...opts });
  const moves: string[] = [];
  h.onTransition((t: BreakerTransition) => moves.push(`${t.backend}:${t.from}->${t.to}`));
  return { c, h, moves };
}

describe('circuit breaker', () => {
  it('defaults_match_the_configuration_defaults', () => {
    assert.deepEqual({ ...BREAKER_DEFAULTS }, { ...BREAKER_KEY_DEFAULTS.breaker });
  });

  it('opens_after_N_failures_in_a_row_and_a_success_in_between_resets_the_count', () => {
    const { h, moves } = tracker({ breaker: { failures: 3, minRequests: 1000 } });
    h.recordCall('a', down());
    h.recordCall('a', down());
    h.recordCall('a');
    h.recordCall('a', down());
    h.recordCall('a', down());
    assert.equal(h.breakerState('a'), 'closed');
    assert.equal(h.get('a')!.state, 'degraded');
    h.recordCall('a', down());
    const a = h.get('a')!;
    assert.equal(a.breaker, 'open');
    assert.equal(a.state, 'unavailable');
    assert.equal(a.openReason, '3 failures in a row');
    assert.ok(a.openedAt);
    assert.equal(h.isAvailable('a'), false);
    assert.equal(h.breakerState('b'), 'closed', 'each backend has its own breaker');
    assert.deepEqual(moves, ['a:closed->open']);
  });

  it('opens_on_the_error_rate_over_the_window_only_once_min_requests_calls_were_seen', () => {
    const { h } = tracker({ breaker: { failures: 100, errorRate: 0.5, minRequests: 10, windowMs: 10_000 } });
    // 4 failures out of 8 calls: 50 %, but fewer than min_requests calls.
    for (let i = 0; i < 4; i++) {
      h.recordCall('a');
      h.recordCall('a', down());
    }
    assert.equal(h.breakerState('a'), 'closed');
    assert.deepEqual(h.get('a')!.window, { calls: 8, failures: 4 });
    h.recordCall('a');
    assert.equal(h.breakerState('a'), 'closed', 'successes never open it');
    h.recordCall('a', down());
    // 5 of 10 = 50 % >= error_rate.
    assert.equal(h.breakerState('a'), 'open');
    assert.equal(h.get('a')!.openReason, 'error rate 50% over 10 calls');
  });

  it('the_window_slides_old_failures_out', () => {
    const { c, h } = tracker({ breaker: { failures: 100, errorRate: 0.5, minRequests: 10, windowMs: 10_000 } });
    for (let i = 0; i < 9; i++) h.recordCall('a', down());
    assert.equal(h.breakerState('a'), 'closed', '9 calls < min_requests');
    c.advance(11_000);
    assert.deepEqual(h.get('a')!.window, { calls: 0, failures: 0 }, 'all of them left the window');
    for (let i = 0; i < 9; i++) h.recordCall('a');
    h.recordCall('a', down());
    assert.equal(h.breakerState('a'), 'closed', '1 failure in 10 calls is 10 %');
    // Half of the window later, the next failures land next to the successes still in it.
    c.advance(5_000);
    for (let i = 0; i < 8; i++) h.recordCall('a', down());
    assert.deepEqual(h.get('a')!.window, { calls: 18, failures: 9 });
    h.recordCall('a', down());
    assert.equal(h.breakerState('a'), 'open', '10 of 19 failed');
  });

  it('ignored_outcomes_do_not_count_and_answers_about_the_request_are_successes', () => {
    const { h } = tracker({ breaker: { failures: 2 } });
    h.recordCall('a', down());
    h.recordCall('a', new BackendError('a', 'Aborted', 'client went away'));
    h.recordCall('a', new Error('a bug'));
    assert.equal(h.get('a')!.consecutiveFailures, 1);
    h.recordCall('a', answer());
    assert.equal(h.get('a')!.consecutiveFailures, 0);
    assert.equal(h.get('a')!.state, 'healthy');
  });

  it('open_turns_half_open_after_the_cool_down_and_K_successes_close_it', () => {
    const { c, h, moves } = tracker({ breaker: { failures: 1, cooldownMs: 10_000, probes: 2 } });
    const changes: string[] = [];
    h.onChange((x, prev) => changes.push(`${prev}->${x.state}`));
    h.recordCall('a', down());
    assert.equal(h.breakerState('a'), 'open');
    c.advance(9_999);
    assert.equal(h.breakerState('a'), 'open');
    c.advance(1);
    assert.equal(h.breakerState('a'), 'half_open');
    assert.equal(h.isAvailable('a'), true, 'half-open takes trial calls');
    assert.equal(h.get('a')!.state, 'degraded');
    h.recordCall('a');
    assert.equal(h.breakerState('a'), 'half_open', 'one success of two');
    h.recordProbe('a');
    const a = h.get('a')!;
    assert.equal(a.breaker, 'closed');
    assert.equal(a.state, 'healthy');
    assert.equal(a.openedAt, undefined);
    assert.deepEqual(a.window, { calls: 0, failures: 0 }, 'a closed breaker starts a fresh window');
    assert.deepEqual(moves, ['a:closed->open', 'a:open->half_open', 'a:half_open->closed']);
    assert.deepEqual(changes, ['healthy->unavailable', 'unavailable->degraded', 'degraded->healthy']);
  });

  it('a_failed_trial_reopens_and_restarts_the_cool_down', () => {
    const { c, h, moves } = tracker({ breaker: { failures: 1, cooldownMs: 1_000, probes: 3 } });
    h.recordCall('a', down());
    c.advance(1_000);
    assert.equal(h.breakerState('a'), 'half_open');
    h.recordCall('a');
    h.recordCall('a', down());
    const a = h.get('a')!;
    assert.equal(a.breaker, 'open');
    assert.equal(a.openReason, 'the trial call failed');
    assert.equal(a.openedAt!.getTime(), c.now());
    c.advance(999);
    assert.equal(h.breakerState('a'), 'open');
    c.advance(1);
    assert.equal(h.breakerState('a'), 'half_open');
    h.recordProbe('a', down());
    assert.equal(h.get('a')!.openReason, 'the trial probe failed');
    assert.deepEqual(moves, ['a:closed->open', 'a:open->half_open', 'a:half_open->open', 'a:open->half_open', 'a:half_open->open']);
  });

  it('failures_while_open_extend_the_cool_down', () => {
    const { c, h } = tracker({ breaker: { failures: 1, cooldownMs: 1_000 } });
    h.recordCall('a', down());
    c.advance(800);
    h.recordCall('a', down());
    c.advance(800);
    assert.equal(h.breakerState('a'), 'open', 'the failure at 800 ms restarted the cool-down');
    c.advance(200);
    assert.equal(h.breakerState('a'), 'half_open');
  });

  it('a_success_while_open_is_a_first_trial', () => {
    const { h, moves } = tracker({ breaker: { failures: 1, cooldownMs: 60_000, probes: 2 } });
    h.recordCall('a', down());
    h.recordCall('a', answer());
    assert.equal(h.breakerState('a'), 'half_open');
    h.recordCall('a');
    assert.equal(h.breakerState('a'), 'closed');
    assert.deepEqual(moves, ['a:closed->open', 'a:open->half_open', 'a:half_open->closed']);
  });

  it('a_failed_probe_opens_a_closed_breaker_and_probes_stay_out_of_the_window', () => {
    const { h } = tracker({ breaker: { failures: 5 } });
    h.recordProbe('a', down());
    const a = h.get('a')!;
    assert.equal(a.breaker, 'open');
    assert.equal(a.openReason, 'a probe failed');
    assert.deepEqual(a.window, { calls: 0, failures: 0 });
  });

  it('open_breakers_are_probed_as_soon_as_the_cool_down_ends_and_stay_open_while_the_trial_probe_runs', () => {
    const { c, h, moves } = tracker({ breaker: { failures: 1, cooldownMs: 2_000 }, retryProbeMs: 5_000, idleProbeMs: 60_000 });
    h.recordCall('a', down());
    assert.deepEqual(h.takeDue(), []);
    c.advance(2_000);
    assert.deepEqual(h.takeDue(), ['a'], 'the trial probe');
    assert.equal(h.breakerState('a'), 'open', 'no client call takes a trial while the probe is one');
    c.advance(10_000);
    assert.equal(h.isAvailable('a'), false, 'a probe held by a silent provider keeps it open');
    h.recordProbe('a', down());
    h.probeDone('a');
    assert.equal(h.breakerState('a'), 'open', 'the failed trial restarted the cool-down');
    c.advance(2_000);
    assert.deepEqual(h.takeDue(), ['a']);
    h.recordProbe('a');
    h.probeDone('a');
    assert.equal(h.breakerState('a'), 'closed');
    assert.deepEqual(moves, ['a:closed->open', 'a:open->half_open', 'a:half_open->closed']);
  });

  it('backends_added_and_removed_at_runtime', () => {
    const { h } = tracker({ breaker: { failures: 1 } });
    h.recordCall('a', down());
    h.track('a');
    assert.equal(h.breakerState('a'), 'open', 'tracking a known name keeps its state');
    h.track('c');
    assert.equal(h.get('c')!.state, 'healthy');
    assert.deepEqual(h.all().map((x) => x.name), ['a', 'b', 'c']);
    h.untrack('a');
    assert.equal(h.get('a'), undefined);
    assert.deepEqual(h.all().map((x) => x.name), ['b', 'c']);
  });

  it('latency_is_a_moving_average_of_measured_successes', () => {
    const { h } = tracker();
    assert.equal(h.latency('a'), undefined);
    h.recordCall('a', undefined, 100);
    assert.equal(h.latency('a'), 100);
    h.recordCall('a', undefined, 200);
    assert.equal(h.latency('a'), 120);
    h.recordCall('a', down(), 5);
    h.recordCall('a');
    assert.equal(h.latency('a'), 120, 'failures and unmeasured calls leave it');
    assert.equal(h.get('a')!.latencyMs, 120);
    h.recordProbe('b', undefined, 40);
    assert.equal(h.latency('b'), 40, 'a backend without traffic is measured by its probes');
  });
});
