import type { Logger } from '../log.js';

/** What one step of a background worker reports. */
export type StepResult = 'busy' | 'idle';

/** A background task: `step` does a bounded amount of work and says whether more is waiting. */
export interface Worker {
  readonly name: string;
  step(): Promise<StepResult>;
  /** Finishes work a step left running in the background (a task pool), once the loop has stopped. */
  stop?(): Promise<void>;
}

/**
 * Runs workers until stopped: a busy worker runs again at once, an idle one sleeps `idleMs`, a failing
 * one is logged and retried after a growing pause. Loops never throw. `stop()` is idempotent and waits
 * for the current steps (bounded by `deadlineMs`).
 */
export class WorkerRunner {
  readonly #log: Logger;
  readonly #loops: Promise<void>[] = [];
  #stopped = false;
  #stopping: Promise<void> | undefined;
  readonly #wakers = new Set<() => void>();

  constructor(log: Logger) {
    this.#log = log;
  }

  start(worker: Worker, idleMs: number): void {
    this.#loops.push(this.#loop(worker, idleMs).then(() => worker.stop?.()));
  }

  /** Wakes every idle worker now (e.g. after work was queued by this instance). */
  wake(): void {
    for (const w of this.#wakers) w();
  }

  async #loop(worker: Worker, idleMs: number): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      let pause = 0;
      try {
        const res = await worker.step();
        failures = 0;
        if (res === 'idle') pause = idleMs;
      } catch (err) {
        failures++;
        pause = Math.min(idleMs * 2 ** failures, 60_000);
        this.#log.error('worker step failed', { worker: worker.name, failures, err });
      }
      if (pause > 0 && !this.#stopped) await this.#sleep(pause);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wakers.add(done);
    });
  }

  stop(deadlineMs = 8_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      this.wake();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.#log.warn('workers did not stop before the deadline', { deadlineMs });
          resolve();
        }, deadlineMs);
      });
      await Promise.race([Promise.allSettled(this.#loops), deadline]);
      clearTimeout(timer);
    })();
    return this.#stopping;
  }
}
