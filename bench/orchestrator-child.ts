/**
 * Runs one orchestrator in its own process for the benchmark, so that the figure for its memory is not
 * polluted by the benchmark client (which lives in the parent with its own buffers and SDK state).
 *
 * Started by bench/setup.ts as `node --import tsx --expose-gc bench/orchestrator-child.ts '<raw config JSON>'`
 * with an IPC channel. The raw configuration is the YAML-shaped object `resolveConfig` reads, so the child
 * starts exactly as `s3-orchestrator serve` would from a file.
 *
 * Messages (parent → child): `mark` (collect garbage, reset baseline and peak to the current RSS), `report`
 * (reply with baseline, peak and current RSS), `stop` (stop the orchestrator and exit 0, which also writes
 * a `--cpu-prof` profile when that flag was given). Child → parent: `ready` with the ports, `marked`,
 * `report`, `error`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { startOrchestrator, type Orchestrator } from '../src/app.js';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';

/** What the child reports about its memory. All figures are bytes. */
export interface RssReport {
  /** RSS right after the last `mark` (after a forced GC when --expose-gc is on). */
  baseline: number;
  /** Highest RSS seen by the 50 ms sampler since the last `mark`. */
  peak: number;
  /** RSS now. */
  current: number;
  /**
   * The kernel's own high-water mark (VmHWM) since the last `mark`, which catches spikes shorter than the
   * sampling interval; undefined when /proc/self/clear_refs cannot be written (not Linux, no permission).
   */
  hwm?: number;
  /** Samples taken since the last `mark`. */
  samples: number;
}

/** Messages the child sends. */
export type ChildMessage =
  | { type: 'ready'; s3Port: number; adminPort: number }
  | { type: 'marked'; baseline: number }
  | ({ type: 'report' } & RssReport)
  | { type: 'error'; message: string };

/** Messages the child accepts. */
export type ParentMessage = { type: 'mark' } | { type: 'report' } | { type: 'stop' };

const SAMPLE_MS = 50;

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

/** VmHWM in bytes, or undefined when /proc is not available. */
function readHwm(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0). */
function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const raw: unknown = JSON.parse(process.argv[2] ?? '{}');
  const config = resolveConfig(raw, 'bench');
  const log = createLogger({ bench: 'orchestrator' }, (process.env.S3O_LOG_LEVEL as 'debug' | undefined) ?? 'warn');
  const orch: Orchestrator = await startOrchestrator(config, { log });

  let baseline = process.memoryUsage.rss();
  let peak = baseline;
  let samples = 0;
  let hwmValid = resetHwm();
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    samples++;
    if (rss > peak) peak = rss;
  }, SAMPLE_MS);

  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (msg: ParentMessage) => {
    switch (msg.type) {
      case 'mark':
        // Two passes: the first can only schedule finalisers for what the second then frees.
        gc?.();
        gc?.();
        baseline = process.memoryUsage.rss();
        peak = baseline;
        samples = 0;
        hwmValid = resetHwm();
        send({ type: 'marked', baseline });
        break;
      case 'report': {
        const current = process.memoryUsage.rss();
        const hwm = hwmValid ? readHwm() : undefined;
        send({ type: 'report', baseline, peak: Math.max(peak, current), current, samples, ...(hwm !== undefined ? { hwm } : {}) });
        break;
      }
      case 'stop':
        clearInterval(sampler);
        orch.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            send({ type: 'error', message: `stop failed: ${String(err)}` });
            process.exit(1);
          },
        );
        break;
    }
  });
  // The parent died without sending `stop`: nobody else would end this process.
  process.on('disconnect', () => {
    clearInterval(sampler);
    void orch.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready', s3Port: orch.s3Port, adminPort: orch.adminPort });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
