/**
 * `s3-orchestrator admin status | backends | buckets | locate BUCKET KEY`: a client of the admin API
 * (Connect protocol over HTTP/1.1, so it works through any plain HTTP proxy). Prints tables by default
 * and the proto3 JSON of the response with `--json`.
 */
import { parseArgs } from 'node:util';
import { isJobsCommand, runJobsAdmin } from './jobs-cmd.js';
import { isBackendsCommand, runBackendsAdmin } from './backends-cmd.js';
import { isTenantsCommand, runTenantsAdmin } from './tenants-cmd.js';
import { isUsageCommand, runUsageAdmin } from './usage-cmd.js';
import { toJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import {
  AdminService,
  BackendType,
  CopyState,
  GetStatusResponseSchema,
  BackendState,
  BreakerState,
  HealthState,
  ListBackendsResponseSchema,
  ListBucketsResponseSchema,
  LocateObjectResponseSchema,
  type GetStatusResponse,
  type ListBackendsResponse,
  type ListBucketsResponse,
  type LocateObjectResponse,
} from '../../gen/s3o/admin/v1/admin_pb.js';

/** Where the command writes text (process.stdout / process.stderr, or a collector in tests). */
export interface AdminTextSink {
  write(chunk: string): unknown;
}

/** Default admin endpoint: the server's default `server.admin` address. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9001';

const USAGE = `usage: s3-orchestrator admin <command> [flags]

commands:
  status                 instance version, uptime, database and totals
  backends               backends with quota and usage
  buckets                virtual buckets with usage and access key ids
  locate BUCKET KEY      the live version of an object and its physical copies
  backends add|get|list|update|remove
                         manage backends at runtime (admin backends --help)
  credentials create|list|get|update|revoke
                         scoped S3 credentials (admin credentials --help)
  buckets create|list|get|update|delete
                         manage buckets at runtime (admin buckets list --help)
  jobs list|get|watch|cancel|pause|resume, backends drain|cancel-drain NAME [--wait],
  rebalance plan|apply [--wait]
                         jobs, drains and rebalances (admin jobs --help)
  usage [--backend X] [--bucket Y] [--month YYYY-MM]
                         requests by class and bytes in/out per month (admin usage --help)

flags:
  --server URL           admin endpoint (default ${DEFAULT_ADMIN_URL})
  --token T              bearer token (default: env S3O_ADMIN_TOKEN)
  --json                 print the response as JSON
`;

/** Per-call deadline: an admin call is a few database reads; anything slower is a stuck server. */
const CALL_TIMEOUT_MS = 15_000;

/** Bytes in IEC units with one decimal ("1.5 GiB"), exact below 1 KiB. */
export function humanBytes(n: number | bigint): string {
  let v = Number(n);
  if (v < 1024) return `${v} B`;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']) {
    v /= 1024;
    if (v < 1024 || unit === 'PiB') return `${v.toFixed(1)} ${unit}`;
  }
  return `${v} B`;
}

/** Seconds as "3d 4h 5m 6s", leading zero units dropped. */
function humanDuration(totalSeconds: number): string {
  const s = Math.floor(totalSeconds);
  const parts: string[] = [];
  const units: [number, string][] = [[86_400, 'd'], [3_600, 'h'], [60, 'm'], [1, 's']];
  let rest = s;
  for (const [size, name] of units) {
    const q = Math.floor(rest / size);
    rest -= q * size;
    if (q > 0 || parts.length > 0 || size === 1) parts.push(`${q}${name}`);
  }
  return parts.join(' ');
}

function iso(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : '-';
}

/** Left-aligned columns, numeric columns (given by index) right-aligned. */
function table(header: string[], rows: string[][], numeric: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

function fields(pairs: [string, string][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}\n`).join('');
}

function formatStatus(s: GetStatusResponse): string {
  const uptime = s.uptime ? Number(s.uptime.seconds) + s.uptime.nanos / 1e9 : 0;
  return fields([
    ['version', s.version],
    ['instance', s.instanceId],
    ['started', iso(s.startedAt)],
    ['uptime', humanDuration(uptime)],
    ['database', `${s.databaseEngine} (schema ${s.schemaVersion})`],
    ['s3 listen', s.s3ListenAddress],
    ['admin listen', s.adminListenAddress],
    ['backends', `${s.backendCount} (${s.healthyBackendCount} healthy)`],
    ['buckets', String(s.bucketCount)],
    ['objects', `${s.objectCount} (${humanBytes(s.totalBytes)})`],
  ]);
}

const HEALTH_NAMES: Record<number, string> = {
  [HealthState.HEALTHY]: 'healthy',
  [HealthState.DEGRADED]: 'degraded',
  [HealthState.UNAVAILABLE]: 'unavailable',
};

const BREAKER_NAMES: Record<number, string> = {
  [BreakerState.CLOSED]: 'closed',
  [BreakerState.HALF_OPEN]: 'half-open',
  [BreakerState.OPEN]: 'open',
};

const STATE_NAMES: Record<number, string> = {
  [BackendState.ACTIVE]: 'active',
  [BackendState.READ_ONLY]: 'read-only',
  [BackendState.DRAINING]: 'draining',
  [BackendState.REMOVED]: 'removed',
};

function formatBackends(r: ListBackendsResponse): string {
  if (r.backends.length === 0) return 'no backends\n';
  const rows = r.backends.map((b) => {
    const quota = Number(b.quotaBytes);
    return [
      b.name,
      b.type === BackendType.S3 ? 's3' : b.type === BackendType.FS ? 'fs' : '?',
      STATE_NAMES[b.state] ?? '?',
      b.healthy ? 'yes' : b.healthState === HealthState.DEGRADED ? 'degraded' : 'NO',
      BREAKER_NAMES[b.breakerState] ?? '-',
      humanBytes(b.usedBytes),
      humanBytes(b.reservedBytes),
      quota === 0 ? 'unlimited' : humanBytes(quota),
      quota === 0 ? '-' : `${((Number(b.usedBytes + b.reservedBytes) / quota) * 100).toFixed(1)}%`,
      String(b.objectCount),
    ];
  });
  // Why a backend is not healthy, one line each under the table.
  const notes = r.backends
    .filter((b) => !b.healthy && b.healthState !== HealthState.UNSPECIFIED)
    .map((b) => {
      const opened = b.openReason ? ` (breaker opened at ${iso(b.openedAt)}: ${b.openReason})` : '';
      return `${b.name}: ${HEALTH_NAMES[b.healthState] ?? '?'} since ${iso(b.healthSince)}${opened}${b.lastError ? `: ${b.lastError}` : ''}\n`;
    });
  const t = table(['NAME', 'TYPE', 'STATE', 'HEALTHY', 'BREAKER', 'USED', 'RESERVED', 'QUOTA', 'FULL', 'OBJECTS'], rows, [5, 6, 7, 8, 9]);
  return notes.length > 0 ? `${t}\n${notes.join('')}` : t;
}

function formatBuckets(r: ListBucketsResponse): string {
  if (r.buckets.length === 0) return 'no buckets\n';
  const rows = r.buckets.map((b) => [
    b.name,
    iso(b.createdAt),
    String(b.objectCount),
    humanBytes(b.totalBytes),
    b.accessKeyIds.length > 0 ? b.accessKeyIds.join(',') : '-',
  ]);
  return table(['NAME', 'CREATED', 'OBJECTS', 'SIZE', 'ACCESS KEYS'], rows, [2, 3]);
}

function formatLocate(r: LocateObjectResponse): string {
  const head = fields([
    ['bucket', r.bucket],
    ['key', r.key],
    ['version', r.versionId],
    ['size', `${humanBytes(r.size)} (${r.size} bytes)`],
    ['etag', r.etag],
    ['modified', iso(r.lastModified)],
    ['copies', String(r.copies.length)],
  ]);
  if (r.copies.length === 0) return head;
  const rows = r.copies.map((c) => [
    c.backend,
    c.state === CopyState.LIVE ? 'live' : c.state === CopyState.PENDING ? 'pending' : '?',
    humanBytes(c.size),
    c.physicalKey,
  ]);
  return head + '\n' + table(['BACKEND', 'STATE', 'SIZE', 'PHYSICAL KEY'], rows, [2]);
}

type CallOptions = { headers: Headers; timeoutMs: number };

/** One subcommand, bound to its arguments: makes the call and renders the response as text or JSON. */
type Runner = (client: Client<typeof AdminService>, opts: CallOptions, json: boolean) => Promise<string>;

function runner<S extends DescMessage>(
  schema: S,
  call: (client: Client<typeof AdminService>, opts: CallOptions) => Promise<MessageShape<S>>,
  format: (res: MessageShape<S>) => string,
): Runner {
  return async (client, opts, json) => {
    const res = await call(client, opts);
    return json ? JSON.stringify(toJson(schema, res, { alwaysEmitImplicit: true }), null, 2) + '\n' : format(res);
  };
}

/** The runner for `name`, or a usage error message. */
function command(name: string, rest: string[]): Runner | string {
  const want = (n: number, r: Runner) =>
    rest.length === n ? r : `admin ${name}: expected ${n} argument(s), got ${rest.length}`;
  switch (name) {
    case 'status':
      return want(0, runner(GetStatusResponseSchema, (c, o) => c.getStatus({}, o), formatStatus));
    case 'backends':
      return want(0, runner(ListBackendsResponseSchema, (c, o) => c.listBackends({}, o), formatBackends));
    case 'buckets':
      return want(0, runner(ListBucketsResponseSchema, (c, o) => c.listBuckets({}, o), formatBuckets));
    case 'locate': {
      const [bucket = '', key = ''] = rest;
      return want(2, runner(LocateObjectResponseSchema, (c, o) => c.locateObject({ bucket, key }, o), formatLocate));
    }
    default:
      return `admin: unknown command "${name}"`;
  }
}

/** Node socket errors (ECONNREFUSED, ENOTFOUND, ECONNRESET...) mean the server could not be talked to. */
function networkCause(e: ConnectError): string | undefined {
  const c = e.cause as { code?: unknown; message?: unknown } | undefined;
  return typeof c?.code === 'string' && /^E[A-Z]+$/.test(c.code) ? String(c.message ?? c.code) : undefined;
}

/** One line naming the Connect code, with a hint for the failures a user can fix. */
function describe(e: ConnectError, server: string): string {
  const codeName = Code[e.code] ?? String(e.code);
  const net = networkCause(e);
  if (net !== undefined || e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) {
    return `admin: cannot reach admin server at ${server}: ${codeName}: ${net ?? e.rawMessage}`;
  }
  if (e.code === Code.Unauthenticated) return `admin: ${codeName}: ${e.rawMessage} (set --token or S3O_ADMIN_TOKEN)`;
  return `admin: ${codeName}: ${e.rawMessage}`;
}

/**
 * Runs `admin ...` with `args` (everything after "admin"). Returns the exit code: 0 on success, 1 when
 * the call fails (server unreachable, wrong token, not found...), 2 on a usage error.
 */
export async function runAdmin(
  args: string[],
  out: AdminTextSink = process.stdout,
  err: AdminTextSink = process.stderr,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  // Jobs, drains and rebalances have their own flags (--wait, --interval…): src/cli/jobs-cmd.ts.
  if (isJobsCommand(args)) return runJobsAdmin(args, out, err, env);
  // Backend management (add, get, list, update, remove): src/cli/backends-cmd.ts.
  if (isBackendsCommand(args)) return runBackendsAdmin(args, out, err, env);
  // Credentials and managed buckets (create, list, get, update, revoke/delete): src/cli/tenants-cmd.ts.
  if (isTenantsCommand(args)) return runTenantsAdmin(args, out, err, env);
  // Usage per backend and bucket: src/cli/usage-cmd.ts.
  if (isUsageCommand(args)) return runUsageAdmin(args, out, err, env);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: 'string', default: DEFAULT_ADMIN_URL },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err.write(`admin: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out.write(USAGE);
    return 0;
  }
  const [name, ...rest] = positionals;
  if (name === undefined) {
    err.write(USAGE);
    return 2;
  }
  const cmd = command(name, rest);
  if (typeof cmd === 'string') {
    err.write(`${cmd}\n\n${USAGE}`);
    return 2;
  }
  const server = values.server;
  if (!/^https?:\/\//.test(server)) {
    err.write(`admin: --server must be an http:// or https:// URL, got "${server}"\n`);
    return 2;
  }
  const token = values.token ?? env.S3O_ADMIN_TOKEN;
  const headers = new Headers();
  if (token !== undefined && token !== '') headers.set('authorization', `Bearer ${token}`);

  const client = createClient(AdminService, createConnectTransport({ baseUrl: server, httpVersion: '1.1' }));
  try {
    out.write(await cmd(client, { headers, timeoutMs: CALL_TIMEOUT_MS }, values.json));
    return 0;
  } catch (e) {
    const ce = ConnectError.from(e);
    err.write(describe(ce, server) + '\n');
    return 1;
  }
}
