/**
 * Nemeses: faults injected while the load runs, each bounded in time and undone before the next of its
 * schedule (a fault whose undoing fails stops the run: the environment is no longer what the report says).
 * One schedule takes the nemeses in turn; with --overlap each nemesis has its own, so faults coincide.
 *
 * - `kill`: SIGKILL of an orchestrator instance, restarted after 0.5–3 s (with the embedded database its
 *   postmaster survives the kill and the new instance takes it over);
 * - `backend`: SIGKILL of an s3rver backend, restarted on the same port and directory after 2–8 s;
 * - `blackhole`: the proxy in front of backend s3-1 accepts connections and never answers for 3–10 s,
 *   then resets the connections it held;
 * - `db`: the metadata server stopped for 2–8 s — a clean stop and restart of a server the harness owns,
 *   or a crash (SIGKILL of the postmaster, which the orchestrator's watchdog restarts) of the embedded
 *   one — or frozen (SIGSTOP of all its processes, then SIGCONT).
 *
 * - `drain`: a drain of one backend started through the admin API (JobService.DrainBackend on a running
 *   instance), left to run for 3–8 s, then waited for (up to 45 s) and undone with CancelDrain — which
 *   cancels a drain still running or makes a drained backend active again — so the backend takes copies
 *   again.
 *
 * - `clock`: one instance's task clock (leases, heartbeats, janitors, due times; src/core/tasks.ts Clock)
 *   skewed by ±3–20 s against the others for 5–15 s, then set right (needs --instances 2 or more; the
 *   instances then run bench/chaos-serve.ts, `serve` with the skew read from a file).
 *
 * New nemeses are one more entry in NEMESES.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { JobService, JobState } from '../gen/s3o/admin/v1/jobs_pb.js';
import type { ChaosEnv } from './chaos-env.js';

export type NemesisName = 'kill' | 'backend' | 'blackhole' | 'db' | 'drain' | 'clock';
export const NEMESIS_NAMES: readonly NemesisName[] = ['kill', 'backend', 'blackhole', 'db', 'drain', 'clock'];

export interface FaultRecord {
  nemesis: NemesisName;
  what: string;
  /** Run-clock times (the history's milliseconds). */
  at: number;
  restoredAt: number;
}

export interface NemesisContext {
  env: ChaosEnv;
  now(): number;
  rand(): number;
  log(line: string): void;
  /** Resolves once the load has done enough work since the last fault was undone (before the next gap). */
  settle?(): Promise<void>;
}

interface Injected {
  what: string;
  /** Undoes the fault; may add to the description. */
  restore(): Promise<string | void>;
}

interface Nemesis {
  /** How long the fault lasts, ms. */
  duration: [number, number];
  inject(ctx: NemesisContext): Promise<Injected>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(ctx: NemesisContext, xs: readonly T[]): T => xs[Math.floor(ctx.rand() * xs.length)]!;

/** The processes of a PostgreSQL server: the postmaster and its children. */
function serverProcesses(pid: number): number[] {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // gone
    }
  }
}

/** The JobService of a running instance (a drain call goes to whichever instance is up). */
function jobService(ctx: NemesisContext) {
  const up = ctx.env.instances.filter((i) => i.running);
  const inst = up.length ? pick(ctx, up) : ctx.env.instances[0]!;
  return createClient(JobService, createConnectTransport({ baseUrl: `http://127.0.0.1:${inst.adminPort}`, httpVersion: '1.1' }));
}

/** Retries an admin call for up to 60 s (its instance may be restarting under another nemesis). */
async function adminCall<T>(ctx: NemesisContext, fn: (jobs: ReturnType<typeof jobService>) => Promise<T>): Promise<T> {
  for (const until = Date.now() + 60_000; ; await sleep(500)) {
    try {
      return await fn(jobService(ctx));
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (Date.now() > until || code === Code.FailedPrecondition || code === Code.NotFound || code === Code.InvalidArgument) throw err;
    }
  }
}

const drain: Nemesis = {
  duration: [3000, 8000],
  async inject(ctx) {
    const backend = pick(ctx, ctx.env.backendNames);
    const { job } = await adminCall(ctx, (jobs) => jobs.drainBackend({ backend }));
    const id = job!.id;
    return {
      what: `drain of ${backend} (job ${id})`,
      restore: async () => {
        let last = job!;
        for (const until = Date.now() + 45_000; Date.now() < until; await sleep(500)) {
          last = (await adminCall(ctx, (jobs) => jobs.getJob({ id }))).job!;
          if (last.state !== JobState.RUNNING && last.state !== JobState.CANCELLING) break;
        }
        const p = last.progress;
        const how = `${JobState[last.state].toLowerCase()} after ${p?.itemsDone ?? 0}/${p?.itemsTotal ?? 0} moves${last.message ? `: ${last.message}` : ''}`;
        await adminCall(ctx, (jobs) => jobs.cancelDrain({ backend }));
        return `${how}; CancelDrain: ${backend} active again`;
      },
    };
  },
};

const clock: Nemesis = {
  duration: [5000, 15_000],
  async inject(ctx) {
    if (ctx.env.instances.length < 2) throw new Error('the clock nemesis skews one instance against others: it needs --instances 2 or more');
    const inst = pick(ctx, ctx.env.instances);
    const ms = Math.round((3000 + ctx.rand() * 17_000) * (ctx.rand() < 0.5 ? -1 : 1));
    inst.skew(ms);
    return { what: `clock of ${inst.name} skewed ${ms > 0 ? '+' : ''}${(ms / 1000).toFixed(1)} s`, restore: async () => inst.skew(0) };
  },
};

const NEMESES: Record<NemesisName, Nemesis> = {
  drain,
  clock,
  kill: {
    duration: [500, 3000],
    async inject(ctx) {
      const inst = pick(ctx, ctx.env.instances);
      await inst.kill();
      return { what: `SIGKILL ${inst.name}`, restore: () => inst.start() };
    },
  },
  backend: {
    duration: [2000, 8000],
    async inject(ctx) {
      const s = pick(ctx, ctx.env.s3rvers);
      await s.kill();
      return { what: `SIGKILL s3rver of ${s.name}`, restore: () => s.start() };
    },
  },
  blackhole: {
    duration: [3000, 10_000],
    async inject(ctx) {
      ctx.env.proxy.blackhole();
      return {
        what: 'black hole in front of s3-1',
        restore: async () => `${ctx.env.proxy.restore()} held connections reset`,
      };
    },
  },
  db: {
    duration: [2000, 8000],
    async inject(ctx) {
      const db = ctx.env.db;
      const pid = db.postmasterPid();
      if (pid === undefined) throw new Error('the database is not a server this harness may stop (db nemesis needs --db embedded, or external with a harness-owned server)');
      if (ctx.rand() < 0.5) {
        const pids = serverProcesses(pid);
        signalAll(pids, 'SIGSTOP');
        return {
          what: `PostgreSQL frozen (SIGSTOP of ${pids.length} processes)`,
          restore: async () => signalAll(serverProcesses(pid), 'SIGCONT'),
        };
      }
      if (db.owned) {
        const owned = db.owned;
        await owned.stop();
        return { what: 'PostgreSQL stopped (fast shutdown)', restore: () => owned.restart() };
      }
      process.kill(pid, 'SIGKILL');
      return {
        what: 'embedded PostgreSQL crashed (SIGKILL of the postmaster)',
        restore: async () => {
          // The orchestrator's watchdog starts it again; wait for that (bounded).
          for (const until = Date.now() + 60_000; Date.now() < until; await sleep(200)) {
            const now = db.postmasterPid();
            if (now !== undefined && now !== pid && (await Promise.all(ctx.env.instances.map((i) => i.ready()))).every(Boolean)) return `restarted as pid ${now}`;
          }
          throw new Error('the embedded PostgreSQL was not restarted by the orchestrator within 60 s');
        },
      };
    },
  },
};

export interface ScheduleOptions {
  nemeses: readonly NemesisName[];
  /** Date.now() after which no fault starts or lasts. */
  until: number;
  /** Quiet time between faults, ms. */
  gap: [number, number];
  /** At most this many faults (default: as many as fit). */
  maxFaults?: number;
}

/**
 * Injects faults until `until`: the nemeses take turns in the order given. Returns what was done. A fault
 * that cannot be undone throws (after recording it) — the run is void.
 */
export async function runNemeses(ctx: NemesisContext, opts: ScheduleOptions): Promise<FaultRecord[]> {
  const done: FaultRecord[] = [];
  for (let i = 0; opts.nemeses.length > 0 && (opts.maxFaults === undefined || done.length < opts.maxFaults); i++) {
    const name = opts.nemeses[i % opts.nemeses.length]!;
    const n = NEMESES[name];
    await ctx.settle?.();
    const gap = opts.gap[0] + ctx.rand() * (opts.gap[1] - opts.gap[0]);
    if (Date.now() + gap + n.duration[0] > opts.until) break;
    await sleep(gap);
    const duration = Math.min(n.duration[0] + ctx.rand() * (n.duration[1] - n.duration[0]), opts.until - Date.now());
    const at = ctx.now();
    const f = await n.inject(ctx);
    ctx.log(`fault ${done.length + 1}: ${f.what} for ${(duration / 1000).toFixed(1)} s`);
    await sleep(Math.max(0, duration));
    let what = f.what;
    try {
      const extra = await f.restore();
      if (extra) what += ` (${extra})`;
    } catch (err) {
      done.push({ nemesis: name, what: `${what} — NOT RESTORED: ${String(err)}`, at, restoredAt: ctx.now() });
      throw Object.assign(new Error(`could not undo fault "${f.what}": ${String(err)}`), { faults: done });
    }
    done.push({ nemesis: name, what, at, restoredAt: ctx.now() });
    ctx.log(`restored: ${what}`);
  }
  return done;
}
