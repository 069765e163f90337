/**
 * The worker runner (src/workers/runner.ts) with real, short timers: a busy worker runs again at once, an
 * idle one sleeps (or is woken), failures are logged and retried after a growing pause that resets on
 * success, stop() is idempotent, waits for the running step and is bounded by its deadline.
 * Nothing here asserts an upper bound on time: machine load can only make waits longer, so only "not
 * before" (lower bounds) and "not at all while the timer is an hour away" are checked.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../src/log.js';
import { WorkerRunner, type StepResult, type Worker } from '../../../src/workers/runner.js';

const HOUR = 3_600_000;

interface Logged {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function logger(out: Logged[]): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void out.push({ level, msg, ...(fields ? { fields } : {}) });
  const l: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

/** A worker whose n-th step (0-based) does `script(n)`; records when each step started and lets a test await the n-th. */
function scripted(script: (n: number) => Promise<StepResult> | StepResult): Worker & { calls: number[]; reached(n: number): Promise<void> } {
  const calls: number[] = [];
  const waiters = new Map<number, () => void>();
  return {
    name: 'scripted',
    calls,
    reached(n: number) {
      if (calls.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.set(n, resolve));
    },
    async step() {
      const n = calls.length;
      calls.push(performance.now());
      waiters.get(calls.length)?.();
      return script(n);
    },
  };
}

describe('WorkerRunner', () => {
  it('a busy worker runs again at once; an idle one then sleeps', async () => {
    const runner = new WorkerRunner(logger([]));
    const w = scripted((n) => (n < 5 ? 'busy' : 'idle'));
    runner.start(w, HOUR);
    // Five busy steps, then the idle one: reached only if busy steps never waited the hour.
    await w.reached(6);
    await sleep(30);
    assert.equal(w.calls.length, 6, 'an idle worker is not called again while its hour runs');
    await runner.stop();
    assert.equal(w.calls.length, 6);
  });

  it('an idle worker sleeps idleMs (never less) and wake() cuts the sleep short', async () => {
    const runner = new WorkerRunner(logger([]));
    const short = scripted(() => 'idle');
    const long = scripted(() => 'idle');
    runner.start(short, 25);
    runner.start(long, HOUR);
    await short.reached(4);
    for (let i = 1; i < 4; i++) {
      const gap = short.calls[i]! - short.calls[i - 1]!;
      assert.ok(gap >= 24, `idle pause ${i} lasted ${gap.toFixed(1)} ms, less than idleMs`);
    }
    assert.equal(long.calls.length, 1);
    runner.wake();
    await long.reached(2);
    await runner.stop();
  });

  it('failures are logged and retried after a doubling pause; the count resets after a success', async () => {
    const log: Logged[] = [];
    const runner = new WorkerRunner(logger(log));
    const plan: Array<StepResult | 'throw' | 'throw-string'> = ['throw', 'throw', 'throw-string', 'throw', 'busy', 'throw', 'idle'];
    const w = scripted((n) => {
      const what = plan[Math.min(n, plan.length - 1)]!;
      if (what === 'throw') throw new Error(`step ${n} failed`);
      if (what === 'throw-string') throw 'not an Error';
      return what;
    });
    const idleMs = 10;
    runner.start(w, idleMs);
    await w.reached(7);
    await runner.stop();
    const errors = log.filter((l) => l.level === 'error');
    assert.deepEqual(
      errors.map((l) => [l.msg, l.fields?.['worker'], l.fields?.['failures']]),
      [1, 2, 3, 4, 1].map((f) => ['worker step failed', 'scripted', f]),
    );
    assert.equal(errors[2]!.fields?.['err'], 'not an Error', 'whatever was thrown is logged');
    // Pauses after failures 1..4: idleMs * 2^failures (lower bounds only).
    for (const [i, want] of [[1, 20], [2, 40], [3, 80], [4, 160]] as const) {
      const gap = w.calls[i]! - w.calls[i - 1]!;
      assert.ok(gap >= want - 1, `pause after failure ${i}: ${gap.toFixed(1)} ms < ${want} ms`);
    }
  });

  it('stop() waits for the running step, is idempotent, and no step starts after it', async () => {
    const runner = new WorkerRunner(logger([]));
    let release!: (r: StepResult) => void;
    const w = scripted(() => new Promise<StepResult>((resolve) => (release = resolve)));
    runner.start(w, 5);
    await w.reached(1);
    const first = runner.stop(HOUR);
    const second = runner.stop(HOUR);
    assert.equal(first, second, 'a second stop() is the same stop');
    let stopped = false;
    void first.then(() => (stopped = true));
    await sleep(30);
    assert.equal(stopped, false, 'stop() is still waiting for the step');
    release('busy');
    await first;
    await sleep(20);
    assert.equal(w.calls.length, 1, 'a busy worker is not run again once stopping');
  });

  it('stop() gives up on a hung step at its deadline and says so', async () => {
    const log: Logged[] = [];
    const runner = new WorkerRunner(logger(log));
    const w = scripted(() => new Promise<StepResult>(() => {}));
    runner.start(w, 5);
    await w.reached(1);
    const t0 = performance.now();
    await runner.stop(60);
    assert.ok(performance.now() - t0 >= 59, 'not before the deadline');
    assert.deepEqual(
      log.filter((l) => l.level === 'warn').map((l) => [l.msg, l.fields?.['deadlineMs']]),
      [['workers did not stop before the deadline', 60]],
    );
  });

  it('stop() with no workers, and twice after finishing, resolves', async () => {
    const runner = new WorkerRunner(logger([]));
    await runner.stop(HOUR);
    await runner.stop(HOUR);
  });
});
