/**
 * One chaos run: start the local deployment (chaos-env.ts), run the checker's load (src/check) and the
 * nemeses side by side for the given time, undo every fault, let the deployment settle, read every key
 * again, check convergence (chaos-converge.ts) and the history (src/check/checker.ts).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkHistory, formatResult, type CheckResult } from '../src/check/checker.js';
import { historyToJsonl, type Op } from '../src/check/history.js';
import { clientFor, Ops } from '../src/check/s3ops.js';
import { Workload } from '../src/check/workload.js';
import type { FsckReport } from '../src/core/fsck.js';
import { checkConvergence, type Convergence } from './chaos-converge.js';
import { startChaosEnv } from './chaos-env.js';
import { runNemeses, type FaultRecord, type NemesisName } from './chaos-nemesis.js';

export interface ChaosOptions {
  nemeses: NemesisName[];
  timeMs: number;
  clients: number;
  keys: number;
  db: 'external' | 'embedded';
  instances: number;
  /** `placement.replicas` over the 3 backends (default 1). */
  replicas?: number;
  /** At most this many faults (default: as many as fit in the time). */
  maxFaults?: number;
  /** Each nemesis on its own schedule, so that faults of different kinds overlap (default: one at a time). */
  overlap?: boolean;
  /**
   * With `maxFaults`: the load ends 2 s after the last fault is undone (at the latest after `timeMs`), so a
   * run makes its faults however slowly the instances restart on a loaded machine.
   */
  endAfterFaults?: boolean;
  /**
   * Before each gap between faults, wait (at most 60 s) until this many writes were acknowledged since the
   * last fault was undone, so that a slow restart on a loaded machine does not leave the load nothing to do
   * between faults (default 0).
   */
  okWritesBetweenFaults?: number;
  /** Quiet time between faults, ms (default 2–5 s). */
  gap?: [number, number];
  multipart: boolean;
  large: boolean;
  seed?: number;
  /** How long the queue may take to drain after the load (default 120 s). */
  convergeTimeoutMs?: number;
  /** Also wait for tasks claimed by killed instances to be reclaimed at their lease's end (up to 5 min). */
  waitLeases?: boolean;
  /** Keep the run directory (logs, history) even when everything passed. */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ChaosResult {
  faults: FaultRecord[];
  check: CheckResult;
  finalReadsAnswered: boolean;
  convergence: Convergence;
  ops: number;
  replicas?: number;
  durationMs: number;
  loadavg: string;
  /** Where the logs and the history were kept (undefined when removed). */
  runDir?: string;
  history: Op[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const runDir = mkdtempSync(path.join(os.tmpdir(), 's3o-chaos-'));
  log(`run directory ${runDir}; starting ${opts.instances} orchestrator(s), 2 s3rvers, ${opts.db} PostgreSQL, replicas ${opts.replicas ?? 1}`);
  const env = await startChaosEnv({ db: opts.db, dbTarget: opts.nemeses.includes('db'), instances: opts.instances, runDir, replicas: opts.replicas ?? 1, skewable: opts.nemeses.includes('clock') });
  let keep = opts.keep ?? false;
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const stopLoad = new AbortController();
  const w = new Workload({
    targets: env.targets,
    clients: opts.clients,
    keys: opts.keys,
    copyKeys: 2,
    durationMs: opts.timeMs,
    opTimeoutMs: 20_000,
    multipart: opts.multipart,
    large: opts.large,
    seed,
    signal: stopLoad.signal,
    progress: (line) => log(line),
  });
  try {
    log(`load: ${opts.clients} clients for ${(opts.timeMs / 1000).toFixed(0)} s under ${w.prefix} (seed ${seed}); nemeses: ${opts.nemeses.join(', ') || 'none'}`);
    const load = w.run();
    let faults: FaultRecord[] = [];
    let faultError: unknown;
    try {
      const schedule = (nemeses: NemesisName[]) =>
        runNemeses(
          { env, now: () => w.rec.now(), rand, log, settle: () => acknowledged(w, opts.okWritesBetweenFaults ?? 0, stopLoad.signal) },
          { nemeses, until: Date.now() + opts.timeMs - 1000, gap: opts.gap ?? [2000, 5000], ...(opts.maxFaults !== undefined ? { maxFaults: opts.maxFaults } : {}) },
        );
      // Overlapping: one schedule per nemesis, side by side, so faults of different kinds coincide.
      faults = opts.overlap ? (await Promise.all(opts.nemeses.map((n) => schedule([n])))).flat().sort((a, b) => a.at - b.at) : await schedule(opts.nemeses);
      if (opts.endAfterFaults && opts.maxFaults !== undefined) {
        await sleep(2000);
        stopLoad.abort();
      }
    } catch (err) {
      faultError = err;
      faults = (err as { faults?: FaultRecord[] }).faults ?? [];
      stopLoad.abort();
    }
    await load;
    if (faultError) throw faultError;
    log(`load done: ${w.status()}; ${faults.length} faults; quiet phase`);
    // Every fault was undone; make sure (an instance that could not restart would fail its final reads).
    for (const i of env.instances) if (!i.running) await i.start();
    await sleep(2000);
    const finalReadsAnswered = await w.finalReads();
    // Multipart uploads the load left open (a client that gave up): abort them, as a client would.
    const s3 = clientFor(env.targets[0]!, 2, 20_000);
    const aborted = await new Ops(w.rec, s3, env.targets[0]!.bucket, -1, 20_000).abortUploads(w.prefix).catch(() => -1);
    s3.destroy();
    log(`final reads ${finalReadsAnswered ? 'answered' : 'NOT all answered'}; ${aborted} open uploads aborted; waiting for convergence`);
    const convergence = await checkConvergence(env, opts.convergeTimeoutMs ?? (opts.waitLeases ? 420_000 : 120_000), opts.waitLeases);
    w.rec.closeOpen();
    const check = checkHistory(w.rec.ops);
    if (check.anomalies.length || !convergence.ok || !finalReadsAnswered) keep = true;
    writeFileSync(path.join(runDir, 'history.jsonl'), historyToJsonl(w.rec.ops));
    writeFileSync(path.join(runDir, 'faults.json'), JSON.stringify(faults, null, 1));
    return {
      faults,
      check,
      finalReadsAnswered,
      convergence,
      ops: w.rec.ops.length,
      replicas: opts.replicas ?? 1,
      durationMs: Date.now() - started,
      loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
      ...(keep ? { runDir } : {}),
      history: w.rec.ops,
    };
  } catch (err) {
    keep = true;
    writeFileSync(path.join(runDir, 'history.jsonl'), historyToJsonl(w.rec.ops));
    throw err;
  } finally {
    w.close();
    const stopping = Date.now();
    await env.stop();
    log(`stopped the deployment in ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
    if (!keep) await rm(runDir, { recursive: true, force: true });
    else log(`kept ${runDir} (orchestrator logs, history.jsonl, faults.json)`);
  }
}

/** The report printed at the end (and pasted into docs/reliability.md). */
export function formatChaos(r: ChaosResult, command: string): string {
  const lines = [
    `command: ${command}`,
    `duration: ${(r.durationMs / 1000).toFixed(0)} s; /proc/loadavg at the end: ${r.loadavg}`,
    `faults (${r.faults.length}):`,
    ...r.faults.map((f) => `  [${(f.at / 1000).toFixed(1)}–${(f.restoredAt / 1000).toFixed(1)} s] ${f.nemesis}: ${f.what}`),
    `final reads: ${r.finalReadsAnswered ? 'every key answered' : 'SOME KEYS STAYED UNREADABLE'}`,
    `convergence: ${r.convergence.ok ? `ok (queue drained ${(r.convergence.waitedMs / 1000).toFixed(1)} s after the quiet phase; ledger exact; no stray bytes; fsck clean)` : `FAILED: ${r.convergence.problems.join('; ')}`}`,
    `  replicas: ${r.convergence.replicas.versions - r.convergence.replicas.wrong} of ${r.convergence.replicas.versions} live versions at their replica count (${r.replicas ?? 1})`,
    ...(r.convergence.fsck ? [`  fsck: ${fsckLine(r.convergence.fsck)}`] : []),
    ...r.convergence.deferred.map((d) => `  deferred: ${d}`),
    formatResult(r.check).trimEnd(),
    unknownWrites(r.history),
  ];
  if (r.runDir) lines.push(`kept: ${r.runDir}`);
  return lines.join('\n') + '\n';
}

/** How many writes of unknown outcome there were, and how many of them a read showed to have happened. */
function unknownWrites(history: readonly Op[]): string {
  const seen = new Set<string>();
  for (const o of history) if (o.seen?.write) seen.add(o.seen.write);
  const unknown = history.filter((o) => o.write && o.outcome === 'unknown');
  return `writes of unknown outcome: ${unknown.length}, of which ${unknown.filter((o) => seen.has(o.write!)).length} were later read (took effect)`;
}

function fsckLine(f: FsckReport): string {
  const objects = f.backends.reduce((n, b) => n + b.objects, 0);
  return (
    `${objects} physical objects on ${f.backends.length} backends; ${f.orphans.count} orphans, ${f.missing.count} missing, ${f.wrongSize.count} wrong size, ` +
    `${f.underReplicated.count} under-replicated (${f.repairing} repairing), ${f.backendCounters.count + f.bucketCounters.count} drifted counters, ${f.dismissed} dismissed on re-check`
  );
}

/** Waits (at most 60 s, or until the load stops) until `n` more writes have been acknowledged. */
async function acknowledged(w: Workload, n: number, stop: AbortSignal): Promise<void> {
  const count = () => w.rec.ops.reduce((k, o) => k + (o.write && o.outcome === 'ok' ? 1 : 0), 0);
  const want = count() + n;
  for (const until = Date.now() + 60_000; n > 0 && count() < want && Date.now() < until && !stop.aborted; ) await sleep(250);
}
