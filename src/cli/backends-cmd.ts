/**
 * `s3-orchestrator admin backends add|get|list|update|remove`: a client of BackendService (Connect over
 * HTTP/1.1). Tables by default, the proto3 JSON of the response with `--json`.
 *
 * Exit codes: 0 done; 1 the call failed (server unreachable, token refused, internal error); 2 usage or a
 * field the server refused (INVALID_ARGUMENT); 3 no such backend (NOT_FOUND); 4 the name is taken
 * (ALREADY_EXISTS); 5 refused in the current state (FAILED_PRECONDITION: the provider refused the probe,
 * the backend is config-owned or still holds data).
 */
import { parseArgs } from 'node:util';
import { toJson } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { BackendState, BackendType, HealthState } from '../../gen/s3o/admin/v1/admin_pb.js';
import {
  AddBackendResponseSchema,
  BackendService,
  BackendServiceListBackendsResponseSchema,
  ConfigOwnedSchema,
  FieldViolationSchema,
  GetBackendResponseSchema,
  ProbeFailureSchema,
  RemoveBackendResponseSchema,
  UpdateBackendResponseSchema,
  type AddBackendRequestSchema,
  type ManagedBackend,
  type UpdateBackendRequestSchema,
} from '../../gen/s3o/admin/v1/backends_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { parseSize } from '../config/units.js';

/** Where the command writes text (process.stdout / process.stderr, or a collector in tests). */
interface TextSink {
  write(chunk: string): unknown;
}

/** Default admin endpoint (the server's default `server.admin` address). */
const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9001';

/** Bytes in IEC units with one decimal ("1.5 GiB"), exact below 1 KiB. */
function humanBytes(n: number | bigint): string {
  let v = Number(n);
  if (v < 1024) return `${v} B`;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']) {
    v /= 1024;
    if (v < 1024 || unit === 'PiB') return `${v.toFixed(1)} ${unit}`;
  }
  return `${v} B`;
}

const SUBCOMMANDS = new Set(['add', 'get', 'list', 'update', 'remove']);

export const BACKENDS_USAGE = `usage: s3-orchestrator admin backends <command> [flags]

commands:
  list [--all]                        every backend with state, health, usage and quota (--all: removed too)
  get NAME                            one backend in detail
  add NAME --type s3 --bucket B [--endpoint URL] [--region R] [--prefix P] [--path-style]
           --access-key-id K [--secret-access-key S]    (or env S3O_BACKEND_SECRET_ACCESS_KEY)
  add NAME --type fs --path DIR
      [--quota SIZE] [--zone Z] [--read-priority N] [--weight N]
                                      probe the provider (write, read, delete), then store and use it
  update NAME [--quota SIZE] [--zone Z] [--read-priority N] [--weight N]
                                      change an API-owned backend (config-owned ones: edit the file, SIGHUP)
  remove NAME                         stop using an empty backend (drain it first: admin backends drain)

flags:
  --server URL   admin endpoint (default ${DEFAULT_ADMIN_URL})
  --token T      bearer token (default: env S3O_ADMIN_TOKEN)
  --json         print the response as JSON

exit codes: 0 done, 1 call failed, 2 usage or invalid field, 3 not found, 4 name taken,
            5 refused (probe failed, config-owned, still holds data)
`;

/** Whether `args` (after "admin") is a BackendService command. */
export function isBackendsCommand(args: readonly string[]): boolean {
  const pos = args.filter((a) => !a.startsWith('-'));
  return pos[0] === 'backends' && pos[1] !== undefined && SUBCOMMANDS.has(pos[1]);
}

const EXIT_FOR: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 2,
  [Code.NotFound]: 3,
  [Code.AlreadyExists]: 4,
  [Code.FailedPrecondition]: 5,
};

const STATE: Record<number, string> = {
  [BackendState.ACTIVE]: 'active',
  [BackendState.READ_ONLY]: 'read-only',
  [BackendState.DRAINING]: 'draining',
  [BackendState.REMOVED]: 'removed',
};
const HEALTH: Record<number, string> = {
  [HealthState.HEALTHY]: 'healthy',
  [HealthState.DEGRADED]: 'degraded',
  [HealthState.UNAVAILABLE]: 'unavailable',
};

function iso(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : '-';
}

function typeName(b: ManagedBackend): string {
  return b.type === BackendType.S3 ? 's3' : b.type === BackendType.FS ? 'fs' : '?';
}

function where(b: ManagedBackend): string {
  if (b.fs) return b.fs.path;
  if (b.s3) return `${b.s3.endpoint || `aws:${b.s3.region}`}/${b.s3.bucket}${b.s3.prefix ? `/${b.s3.prefix}` : ''}`;
  return '-';
}

function table(header: string[], rows: string[][], numeric: number[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

function formatList(backends: ManagedBackend[]): string {
  if (backends.length === 0) return 'no backends\n';
  const rows = backends.map((b) => {
    const quota = Number(b.quotaBytes);
    return [
      b.name,
      typeName(b),
      STATE[b.state] ?? '?',
      b.source,
      HEALTH[b.healthState] ?? (b.loaded ? '-' : 'not loaded'),
      b.breakerState || '-',
      humanBytes(b.usedBytes),
      humanBytes(b.reservedBytes),
      quota === 0 ? 'unlimited' : humanBytes(quota),
      String(b.objectCount),
      b.zone || '-',
      String(b.readPriority),
      String(b.weight),
    ];
  });
  return table(['NAME', 'TYPE', 'STATE', 'SOURCE', 'HEALTH', 'BREAKER', 'USED', 'RESERVED', 'QUOTA', 'OBJECTS', 'ZONE', 'PRIO', 'WEIGHT'], rows, [6, 7, 8, 9, 11, 12]);
}

function formatOne(b: ManagedBackend): string {
  const pairs: [string, string][] = [
    ['name', b.name],
    ['type', typeName(b)],
    ['location', where(b)],
    ...(b.s3 ? ([['access key id', b.s3.accessKeyId], ['path style', b.s3.forcePathStyle ? 'yes' : 'no']] as [string, string][]) : []),
    ['state', `${STATE[b.state] ?? '?'}${b.drainJobId > 0n ? ` (drain job ${b.drainJobId}, ${b.drainJobState})` : ''}`],
    ['source', b.configRef ? `${b.source} (${b.configRef})` : b.source],
    ...(b.removalRequestedAt ? ([['removal requested', iso(b.removalRequestedAt)]] as [string, string][]) : []),
    ['quota', Number(b.quotaBytes) === 0 ? 'unlimited' : `${humanBytes(b.quotaBytes)} (${b.quotaBytes} bytes)`],
    ['used', `${humanBytes(b.usedBytes)} (${b.usedBytes} bytes)`],
    ['reserved', humanBytes(b.reservedBytes)],
    ['objects', String(b.objectCount)],
    ['zone', b.zone || '-'],
    ['read priority', String(b.readPriority)],
    ['weight', String(b.weight)],
    ['loaded here', b.loaded ? 'yes' : 'no'],
    ['health', `${HEALTH[b.healthState] ?? '-'}${b.healthSince ? ` since ${iso(b.healthSince)}` : ''}`],
    ['breaker', b.breakerState || '-'],
    ...(b.lastError ? ([['last error', b.lastError]] as [string, string][]) : []),
    ['created', iso(b.createdAt)],
    ['updated', iso(b.updatedAt)],
  ];
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}\n`).join('');
}

/** The error's details, one line each (what to fix and where). */
function detailLines(e: ConnectError): string[] {
  const lines: string[] = [];
  for (const d of e.findDetails(ConfigOwnedSchema)) lines.push(`  config-owned: edit ${d.file}: ${d.keyPath} and reload (SIGHUP)`);
  for (const d of e.findDetails(ProbeFailureSchema)) lines.push(`  probe step ${d.step} failed (${d.kind}): ${d.providerError}`);
  for (const d of e.findDetails(FieldViolationSchema)) lines.push(`  field ${d.field}: ${d.description}`);
  return lines;
}

type Flags = Record<string, string | boolean | undefined>;

function int(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new Error(`--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function size(flags: Flags, name: string): bigint | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  try {
    return BigInt(parseSize(v));
  } catch (err) {
    throw new Error(`--${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

function addRequest(name: string, f: Flags, env: Readonly<Record<string, string | undefined>>): MessageInitShape<typeof AddBackendRequestSchema> {
  const type = str(f, 'type');
  const quota = size(f, 'quota');
  const weight = int(f, 'weight');
  const knobs = {
    ...(quota !== undefined ? { quotaBytes: quota } : {}),
    zone: str(f, 'zone') ?? '',
    readPriority: int(f, 'read-priority') ?? 0,
    ...(weight !== undefined ? { weight } : {}),
  };
  if (type === 'fs') {
    const path = str(f, 'path');
    if (!path) throw new Error('add --type fs: --path DIR is required');
    return { name, settings: { case: 'fs', value: { path } }, ...knobs };
  }
  if (type === 's3') {
    const secret = str(f, 'secret-access-key') ?? env.S3O_BACKEND_SECRET_ACCESS_KEY ?? '';
    return {
      name,
      settings: {
        case: 's3',
        value: {
          endpoint: str(f, 'endpoint') ?? '',
          region: str(f, 'region') ?? '',
          bucket: str(f, 'bucket') ?? '',
          prefix: str(f, 'prefix') ?? '',
          accessKeyId: str(f, 'access-key-id') ?? '',
          secretAccessKey: secret,
          forcePathStyle: f['path-style'] === true,
        },
      },
      ...knobs,
    };
  }
  throw new Error(`add: --type must be s3 or fs${type === undefined ? '' : `, got ${JSON.stringify(type)}`}`);
}

function updateRequest(name: string, f: Flags): MessageInitShape<typeof UpdateBackendRequestSchema> {
  const quota = size(f, 'quota');
  const readPriority = int(f, 'read-priority');
  const weight = int(f, 'weight');
  const zone = str(f, 'zone');
  return {
    name,
    ...(quota !== undefined ? { quotaBytes: quota } : {}),
    ...(readPriority !== undefined ? { readPriority } : {}),
    ...(weight !== undefined ? { weight } : {}),
    ...(zone !== undefined ? { zone } : {}),
  };
}

/** Runs `admin backends <sub> ...` (everything after "admin"); returns the exit code. */
export async function runBackendsAdmin(
  args: string[],
  out: TextSink = process.stdout,
  err: TextSink = process.stderr,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let values: Flags;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: 'string', default: DEFAULT_ADMIN_URL },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        all: { type: 'boolean', default: false },
        type: { type: 'string' },
        endpoint: { type: 'string' },
        region: { type: 'string' },
        bucket: { type: 'string' },
        prefix: { type: 'string' },
        'access-key-id': { type: 'string' },
        'secret-access-key': { type: 'string' },
        'path-style': { type: 'boolean', default: false },
        path: { type: 'string' },
        quota: { type: 'string' },
        zone: { type: 'string' },
        'read-priority': { type: 'string' },
        weight: { type: 'string' },
      },
    }));
  } catch (e) {
    err.write(`admin backends: ${e instanceof Error ? e.message : String(e)}\n\n${BACKENDS_USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(BACKENDS_USAGE);
    return 0;
  }
  const [, sub = '', ...rest] = positionals;
  const wantName = sub !== 'list';
  if ((wantName && rest.length !== 1) || (!wantName && rest.length !== 0)) {
    err.write(`admin backends ${sub}: expected ${wantName ? 'one backend name' : 'no argument'}, got ${rest.length}\n\n${BACKENDS_USAGE}`);
    return 2;
  }
  const name = rest[0] ?? '';
  const server = str(values, 'server')!;
  if (!/^https?:\/\//.test(server)) {
    err.write(`admin: --server must be an http:// or https:// URL, got "${server}"\n`);
    return 2;
  }
  const token = str(values, 'token') ?? env.S3O_ADMIN_TOKEN;
  const headers = new Headers();
  if (token) headers.set('authorization', `Bearer ${token}`);
  const opts = { headers, timeoutMs: sub === 'add' ? 60_000 : 15_000 };
  const client = createClient(BackendService, createConnectTransport({ baseUrl: server, httpVersion: '1.1' }));
  const json = values.json === true;
  const emit = (text: string, body: unknown) => out.write(json ? JSON.stringify(body, null, 2) + '\n' : text);

  let call: () => Promise<void>;
  try {
    switch (sub) {
      case 'list':
        call = async () => {
          const r = await client.listBackends({ includeRemoved: values.all === true }, opts);
          emit(formatList(r.backends), toJson(BackendServiceListBackendsResponseSchema, r, { alwaysEmitImplicit: true }));
        };
        break;
      case 'get':
        call = async () => {
          const r = await client.getBackend({ name }, opts);
          emit(formatOne(r.backend!), toJson(GetBackendResponseSchema, r, { alwaysEmitImplicit: true }));
        };
        break;
      case 'add': {
        const req = addRequest(name, values, env);
        call = async () => {
          const r = await client.addBackend(req, opts);
          emit(`added backend ${name}\n\n${formatOne(r.backend!)}`, toJson(AddBackendResponseSchema, r, { alwaysEmitImplicit: true }));
        };
        break;
      }
      case 'update': {
        const req = updateRequest(name, values);
        call = async () => {
          const r = await client.updateBackend(req, opts);
          emit(`updated backend ${name}\n\n${formatOne(r.backend!)}`, toJson(UpdateBackendResponseSchema, r, { alwaysEmitImplicit: true }));
        };
        break;
      }
      case 'remove':
        call = async () => {
          const r = await client.removeBackend({ name }, opts);
          emit(`removed backend ${name}\n`, toJson(RemoveBackendResponseSchema, r, { alwaysEmitImplicit: true }));
        };
        break;
      default:
        err.write(`admin backends: unknown command "${sub}"\n\n${BACKENDS_USAGE}`);
        return 2;
    }
  } catch (e) {
    err.write(`admin backends ${sub}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  try {
    await call();
    return 0;
  } catch (e) {
    const ce = ConnectError.from(e);
    const codeName = Code[ce.code] ?? String(ce.code);
    const c = ce.cause as { code?: unknown; message?: unknown } | undefined;
    const net = typeof c?.code === 'string' && /^E[A-Z]+$/.test(c.code) ? String(c.message ?? c.code) : undefined;
    if (net !== undefined || ce.code === Code.Unavailable || ce.code === Code.DeadlineExceeded) {
      err.write(`admin: cannot reach admin server at ${server}: ${codeName}: ${net ?? ce.rawMessage}\n`);
      return 1;
    }
    const hint = ce.code === Code.Unauthenticated ? ' (set --token or S3O_ADMIN_TOKEN)' : '';
    err.write([`admin backends ${sub}: ${codeName}: ${ce.rawMessage}${hint}`, ...detailLines(ce)].join('\n') + '\n');
    return EXIT_FOR[ce.code] ?? 1;
  }
}
