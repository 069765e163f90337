/**
 * `s3-orchestrator admin jobs …`, `admin backends drain|cancel-drain NAME`, `admin rebalance plan|apply`:
 * the JobService client. Tables by default, `--json` for automation (one JSON document; `watch` and
 * `--wait` on a pipe print one JSON object per progress report, the last one final), a live progress bar
 * with rate and ETA when stdout is a terminal.
 *
 * Exit codes: 0 success (with --wait / watch: the job is done), 1 the call failed (unreachable, refused,
 * not found…), 2 usage error, 3 the job failed, 4 the job was cancelled.
 */
import { parseArgs } from 'node:util';
import { toJson } from '@bufbuild/protobuf';
import { durationMs, timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import {
  JobKind,
  JobSchema,
  JobService,
  JobState,
  PlanRebalanceResponseSchema,
  type Job,
  type PlanRebalanceResponse,
} from '../../gen/s3o/admin/v1/jobs_pb.js';

/** Where the command writes (process.stdout / stderr, or a collector in tests); `isTTY` enables the bar. */
export interface JobsTextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export const JOBS_USAGE = `usage: s3-orchestrator admin <command> [flags]

job commands:
  jobs list [--kind drain|rebalance|purge-bucket] [--state S[,S]] [--limit N] [--before ID]
  jobs get ID                    one job and its progress
  jobs watch ID                  follow a job until it ends (progress bar on a terminal)
  jobs cancel|pause|resume ID    steer a job
  backends drain NAME [--wait]   move every copy off a backend (then it can be removed)
  backends cancel-drain NAME     stop draining; the backend takes new copies again
  rebalance plan [--max-moves N] dry run: what would move where under the placement strategy
  rebalance apply [--wait]       start moving

flags:
  --server URL   admin endpoint (default http://127.0.0.1:9001)
  --token T      bearer token (default: env S3O_ADMIN_TOKEN)
  --json         JSON output (watch/--wait: one object per report)
  --wait         wait for the job to end (drain, rebalance apply)
  --interval D   time between progress reports, e.g. 500ms, 2s (default 1s)

exit codes: 0 ok (job done), 1 call failed, 2 usage, 3 job failed, 4 job cancelled
`;

const CALL_TIMEOUT_MS = 15_000;
export const EXIT_FAILED = 3;
export const EXIT_CANCELLED = 4;

const KINDS: Record<string, JobKind> = { drain: JobKind.DRAIN, rebalance: JobKind.REBALANCE, 'purge-bucket': JobKind.PURGE_BUCKET };
const KIND_NAMES: Record<number, string> = Object.fromEntries(Object.entries(KINDS).map(([k, v]) => [v, k]));
const STATES: Record<string, JobState> = {
  running: JobState.RUNNING,
  paused: JobState.PAUSED,
  cancelling: JobState.CANCELLING,
  cancelled: JobState.CANCELLED,
  done: JobState.DONE,
  failed: JobState.FAILED,
};
const STATE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(STATES).map(([k, v]) => [v, k]));
const FINAL = new Set([JobState.DONE, JobState.FAILED, JobState.CANCELLED]);

/** Whether `args` (everything after "admin") is one of the job commands this module runs. */
export function isJobsCommand(args: readonly string[]): boolean {
  const pos: string[] = [];
  for (let i = 0; i < args.length && pos.length < 2; i++) {
    const a = args[i]!;
    if (a === '--server' || a === '--token' || a === '--interval' || a === '--kind' || a === '--state' || a === '--limit' || a === '--before' || a === '--max-moves') {
      i++;
      continue;
    }
    if (!a.startsWith('-')) pos.push(a);
  }
  if (pos[0] === 'jobs' || pos[0] === 'rebalance') return true;
  return pos[0] === 'backends' && (pos[1] === 'drain' || pos[1] === 'cancel-drain');
}

function bytes(n: bigint | number): string {
  let v = Number(n);
  if (v < 1024) return `${v} B`;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']) {
    v /= 1024;
    if (v < 1024 || unit === 'PiB') return `${v.toFixed(1)} ${unit}`;
  }
  return `${v} B`;
}

function seconds(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(t % 60).padStart(2, '0')}s`;
}

function iso(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : '-';
}

function table(header: string[], rows: string[][], numeric: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

function percent(j: Job): string {
  const p = j.progress!;
  const total = p.bytesTotal > 0n ? Number(p.bytesTotal) : Number(p.itemsTotal);
  const done = p.bytesTotal > 0n ? Number(p.bytesDone) : Number(p.itemsDone);
  return total === 0 ? (FINAL.has(j.state) || p.planned ? '100%' : '0%') : `${Math.floor((done / total) * 100)}%`;
}

export function formatJob(j: Job): string {
  const p = j.progress!;
  const pairs: [string, string][] = [
    ['id', String(j.id)],
    ['kind', KIND_NAMES[j.kind] ?? '?'],
    ['target', j.target || '-'],
    ['state', STATE_NAMES[j.state] ?? '?'],
    ['progress', `${percent(j)}  ${p.itemsDone}/${p.itemsTotal} items, ${bytes(p.bytesDone)}/${bytes(p.bytesTotal)}${p.planned ? '' : ' (still planning)'}`],
    ['tasks', `${p.queued} queued, ${p.running} running, ${p.dead} failed for good`],
    ['errors', p.errors > 0n ? `${p.errors}: ${p.lastError}` : '0'],
    ['message', j.message || '-'],
    ['created', `${iso(j.createdAt)} by ${j.createdBy || '-'}`],
    ['finished', iso(j.finishedAt)],
  ];
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}\n`).join('');
}

function formatJobs(jobs: Job[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  return table(
    ['ID', 'KIND', 'TARGET', 'STATE', 'DONE', 'ITEMS', 'BYTES', 'ERRORS', 'CREATED'],
    jobs.map((j) => [
      String(j.id),
      KIND_NAMES[j.kind] ?? '?',
      j.target || '-',
      STATE_NAMES[j.state] ?? '?',
      percent(j),
      `${j.progress!.itemsDone}/${j.progress!.itemsTotal}`,
      `${bytes(j.progress!.bytesDone)}/${bytes(j.progress!.bytesTotal)}`,
      String(j.progress!.errors),
      iso(j.createdAt),
    ]),
    [0, 4, 5, 7],
  );
}

function formatPlan(r: PlanRebalanceResponse): string {
  const head = table(
    ['BACKEND', 'QUOTA', 'BEFORE', 'AFTER', 'TARGET', 'COPIES BEFORE', 'COPIES AFTER'],
    r.backends.map((b) => [
      b.name,
      b.quotaBytes === 0n ? 'unlimited' : bytes(b.quotaBytes),
      bytes(b.bytesBefore),
      bytes(b.bytesAfter),
      bytes(b.targetBytes),
      String(b.copiesBefore),
      String(b.copiesAfter),
    ]),
    [1, 2, 3, 4, 5, 6],
  );
  const summary = `\nstrategy ${r.strategy}: ${r.moveCount} move(s), ${bytes(r.moveBytes)}${r.moves.length < Number(r.moveCount) ? ` (first ${r.moves.length} listed)` : ''}\n`;
  if (r.moves.length === 0) return head + summary;
  return head + summary + '\n' + table(['FROM', 'TO', 'SIZE', 'BUCKET/KEY'], r.moves.map((m) => [m.from, m.to, bytes(m.size), `${m.bucket}/${m.key}`]), [2]);
}

/** One line of the progress bar: `[#####.....]  42%  120/300 items  1.2 GiB/2.0 GiB  35.1 MiB/s  ETA 0m23s`. */
export function progressLine(j: Job, width = 80): string {
  const p = j.progress!;
  const total = p.bytesTotal > 0n ? Number(p.bytesTotal) : Number(p.itemsTotal);
  const done = p.bytesTotal > 0n ? Number(p.bytesDone) : Number(p.itemsDone);
  const frac = total === 0 ? (FINAL.has(j.state) ? 1 : 0) : Math.min(1, done / total);
  const eta = p.eta ? `ETA ${seconds(durationMs(p.eta) / 1000)}` : 'ETA -';
  const rate = p.bytesPerSecond > 0 ? `${bytes(Math.round(p.bytesPerSecond))}/s` : `${p.itemsPerSecond.toFixed(1)} items/s`;
  const state = j.state === JobState.RUNNING ? '' : `  ${STATE_NAMES[j.state]}`;
  const tail = `${String(Math.floor(frac * 100)).padStart(3)}%  ${p.itemsDone}/${p.itemsTotal} items  ${bytes(p.bytesDone)}/${bytes(p.bytesTotal)}  ${rate}  ${eta}${p.errors > 0n ? `  ${p.errors} errors` : ''}${state}`;
  const barWidth = Math.max(10, Math.min(40, width - tail.length - 4));
  const filled = Math.round(frac * barWidth);
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]  ${tail}`;
}

/** Exit code for a job in a final state (0 done, 3 failed, 4 cancelled). */
function exitFor(j: Job): number {
  return j.state === JobState.DONE ? 0 : j.state === JobState.FAILED ? EXIT_FAILED : j.state === JobState.CANCELLED ? EXIT_CANCELLED : 0;
}

function jobJson(j: Job): string {
  return JSON.stringify(toJson(JobSchema, j, { alwaysEmitImplicit: true }));
}

type Ctx = {
  client: Client<typeof JobService>;
  call: { headers: Headers; timeoutMs: number };
  json: boolean;
  out: JobsTextSink;
  intervalMs: number;
};

/** Follows a job with WatchJob to its end: a bar on a terminal, JSON lines with --json, the final job otherwise. */
async function follow(ctx: Ctx, id: bigint): Promise<number> {
  const tty = ctx.out.isTTY === true && !ctx.json;
  let last: Job | undefined;
  const stream = ctx.client.watchJob(
    { id, interval: { seconds: BigInt(Math.floor(ctx.intervalMs / 1000)), nanos: (ctx.intervalMs % 1000) * 1_000_000 } },
    { headers: ctx.call.headers },
  );
  for await (const m of stream) {
    last = m.job!;
    if (ctx.json) ctx.out.write(jobJson(last) + '\n');
    else if (tty) ctx.out.write(`\r\x1b[K${progressLine(last, ctx.out.columns ?? 80)}`);
  }
  if (!last) throw new ConnectError('the watch ended without a report', Code.Unavailable);
  if (tty) ctx.out.write('\n');
  if (!ctx.json) ctx.out.write(formatJob(last));
  return exitFor(last);
}

function parseInterval(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  return n >= 100 && n <= 60_000 ? Math.round(n) : undefined;
}

function parseId(s: string | undefined): bigint | string {
  if (s === undefined || !/^[1-9]\d{0,15}$/.test(s)) return `expected a job id (a positive integer), got ${s === undefined ? 'nothing' : JSON.stringify(s)}`;
  return BigInt(s);
}

/**
 * Runs a job command (everything after "admin"). Returns the exit code (see the module comment).
 */
export async function runJobsAdmin(
  args: string[],
  out: JobsTextSink = process.stdout,
  err: JobsTextSink = process.stderr,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: 'string', default: 'http://127.0.0.1:9001' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        wait: { type: 'boolean', default: false },
        interval: { type: 'string', default: '1s' },
        kind: { type: 'string' },
        state: { type: 'string' },
        limit: { type: 'string' },
        before: { type: 'string' },
        'max-moves': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err.write(`admin: ${e instanceof Error ? e.message : String(e)}\n\n${JOBS_USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out.write(JOBS_USAGE);
    return 0;
  }
  const usage = (msg: string) => {
    err.write(`admin: ${msg}\n\n${JOBS_USAGE}`);
    return 2;
  };
  const intervalMs = parseInterval(v.interval);
  if (intervalMs === undefined) return usage(`--interval must be a duration between 100ms and 1m, got ${JSON.stringify(v.interval)}`);
  if (!/^https?:\/\//.test(v.server)) {
    err.write(`admin: --server must be an http:// or https:// URL, got "${v.server}"\n`);
    return 2;
  }
  const [group, verb, arg, ...extra] = positionals;
  if (extra.length > 0) return usage(`unexpected argument ${JSON.stringify(extra[0])}`);
  const token = v.token ?? env.S3O_ADMIN_TOKEN;
  const headers = new Headers();
  if (token) headers.set('authorization', `Bearer ${token}`);
  const ctx: Ctx = {
    client: createClient(JobService, createConnectTransport({ baseUrl: v.server, httpVersion: '1.1' })),
    call: { headers, timeoutMs: CALL_TIMEOUT_MS },
    json: v.json,
    out,
    intervalMs,
  };
  const print = (j: Job) => out.write(v.json ? jobJson(j) + '\n' : formatJob(j));
  const started = async (j: Job): Promise<number> => {
    if (!v.wait) {
      print(j);
      return 0;
    }
    return follow(ctx, j.id);
  };

  let action: (() => Promise<number>) | string;
  if (group === 'jobs') {
    const id = parseId(arg);
    const needId = (fn: (id: bigint) => Promise<number>) => (typeof id === 'string' ? `jobs ${verb}: ${id}` : () => fn(id));
    switch (verb) {
      case 'list': {
        if (arg !== undefined) return usage(`jobs list takes no argument`);
        const kind = v.kind === undefined ? JobKind.UNSPECIFIED : KINDS[v.kind];
        if (kind === undefined) return usage(`--kind must be one of ${Object.keys(KINDS).join(', ')}`);
        const states = (v.state ?? '').split(',').filter((s) => s !== '').map((s) => STATES[s]);
        if (states.some((s) => s === undefined)) return usage(`--state must be a comma-separated list of ${Object.keys(STATES).join(', ')}`);
        const limit = v.limit === undefined ? 0 : Number(v.limit);
        if (!Number.isInteger(limit) || limit < 0 || limit > 1000) return usage(`--limit must be an integer between 1 and 1000`);
        const before = v.before === undefined ? 0n : parseId(v.before);
        if (typeof before === 'string') return usage(`--before: ${before}`);
        action = async () => {
          const r = await ctx.client.listJobs({ kind, states: states as JobState[], limit, beforeId: before }, ctx.call);
          out.write(v.json ? JSON.stringify({ jobs: r.jobs.map((j) => toJson(JobSchema, j, { alwaysEmitImplicit: true })) }, null, 2) + '\n' : formatJobs(r.jobs));
          return 0;
        };
        break;
      }
      case 'get':
        action = needId(async (id) => {
          print((await ctx.client.getJob({ id }, ctx.call)).job!);
          return 0;
        });
        break;
      case 'watch':
        action = needId((id) => follow(ctx, id));
        break;
      case 'cancel':
        action = needId(async (id) => started((await ctx.client.cancelJob({ id }, ctx.call)).job!));
        break;
      case 'pause':
        action = needId(async (id) => {
          print((await ctx.client.pauseJob({ id }, ctx.call)).job!);
          return 0;
        });
        break;
      case 'resume':
        action = needId(async (id) => started((await ctx.client.resumeJob({ id }, ctx.call)).job!));
        break;
      default:
        action = `jobs: unknown command ${JSON.stringify(verb ?? '')} (list, get, watch, cancel, pause, resume)`;
    }
  } else if (group === 'backends') {
    if (arg === undefined || arg === '') return usage(`backends ${verb}: expected a backend name`);
    action =
      verb === 'drain'
        ? async () => {
            const r = await ctx.client.drainBackend({ backend: arg }, ctx.call);
            if (r.alreadyDraining && !v.json) err.write(`backend ${arg} is already being drained by job ${r.job!.id}\n`);
            return started(r.job!);
          }
        : async () => {
            const r = await ctx.client.cancelDrain({ backend: arg }, ctx.call);
            if (r.job) print(r.job);
            else out.write(v.json ? '{}\n' : `backend ${arg} is active again\n`);
            return 0;
          };
  } else {
    if (arg !== undefined) return usage(`rebalance ${verb} takes no argument`);
    if (verb === 'plan') {
      const max = v['max-moves'] === undefined ? 0 : Number(v['max-moves']);
      if (!Number.isInteger(max) || max < 0 || max > 100_000) return usage('--max-moves must be an integer between 1 and 100000');
      action = async () => {
        const r = await ctx.client.planRebalance({ maxMoves: max }, ctx.call);
        out.write(v.json ? JSON.stringify(toJson(PlanRebalanceResponseSchema, r, { alwaysEmitImplicit: true }), null, 2) + '\n' : formatPlan(r));
        return 0;
      };
    } else if (verb === 'apply') {
      action = async () => started((await ctx.client.applyRebalance({}, ctx.call)).job!);
    } else {
      action = `rebalance: unknown command ${JSON.stringify(verb ?? '')} (plan, apply)`;
    }
  }
  if (typeof action === 'string') return usage(action);
  try {
    return await action();
  } catch (e) {
    const ce = ConnectError.from(e);
    const codeName = Code[ce.code] ?? String(ce.code);
    const c = ce.cause as { code?: unknown } | undefined;
    const net = typeof c?.code === 'string' && /^E[A-Z]+$/.test(c.code);
    if (net || ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded) {
      err.write(`admin: cannot reach admin server at ${v.server}: ${codeName}: ${ce.rawMessage}\n`);
    } else if (ce.code === Code.Unauthenticated) {
      err.write(`admin: ${codeName}: ${ce.rawMessage} (set --token or S3O_ADMIN_TOKEN)\n`);
    } else {
      err.write(`admin: ${codeName}: ${ce.rawMessage}\n`);
    }
    return 1;
  }
}
