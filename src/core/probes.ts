/**
 * The probe loop of live backend health (core/health.ts): a light `check()` of each backend that had no
 * traffic lately or is not healthy; for an open breaker, the probe is the half-open trial, so clients rarely
 * pay for one.
 */
import type { Logger } from '../log.js';
import type { HealthTracker } from './health.js';

/** What the probe loop needs: a backend's check by name. */
export interface Probeable {
  get(name: string): { check(): Promise<void> } | undefined;
}

/**
 * Probes due backends every `tickMs` until stopped. Probe calls go straight to the backend (not through
 * the instrumented wrapper) and report through {@link HealthTracker.recordProbe}; a probe is bounded by
 * `timeoutMs` (a hung provider counts as a failed probe).
 */
export function startHealthProbes(
  tracker: HealthTracker,
  backends: Probeable,
  log: Logger,
  opts: { tickMs?: number; timeoutMs?: number } = {},
): { stop(): Promise<void> } {
  const tickMs = opts.tickMs ?? 1_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const running = new Set<Promise<void>>();
  let stopped = false;
  const probe = async (name: string): Promise<void> => {
    const b = backends.get(name);
    if (!b) return tracker.probeDone(name);
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    try {
      await Promise.race([
        b.check(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`probe timed out after ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]);
      if (!stopped) tracker.recordProbe(name, undefined, performance.now() - started);
    } catch (err) {
      if (!stopped) tracker.recordProbe(name, err);
      log.debug('backend probe failed', { backend: name, err });
    } finally {
      clearTimeout(timer);
      tracker.probeDone(name);
    }
  };
  const timer = setInterval(() => {
    for (const name of tracker.takeDue()) {
      const p = probe(name).finally(() => running.delete(p));
      running.add(p);
    }
  }, tickMs);
  timer.unref();
  return {
    // Probes still running are not waited for (a dead provider may take the whole timeout): their
    // outcome is dropped, and closing the backends ends them.
    async stop() {
      stopped = true;
      clearInterval(timer);
      running.clear();
    },
  };
}
