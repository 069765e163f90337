/**
 * `s3-orchestrator admin usage [--backend X] [--bucket Y] [--month YYYY-MM | --from YYYY-MM --to YYYY-MM]`:
 * the UsageService client. A table per backend and per bucket (one row per month), or the proto3 JSON of
 * the response with `--json`. Exit codes: 0 ok, 1 the call failed (unreachable, refused, not found, bad
 * month), 2 usage error.
 */
import { parseArgs } from 'node:util';
import { toJson } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { GetUsageResponseSchema, UsageService, type GetUsageResponse, type UsageEntry } from '../../gen/s3o/admin/v1/usage_pb.js';

/** Where the command writes (process.stdout / stderr, or a collector in tests). */
interface TextSink {
  write(chunk: string): unknown;
}

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

export const USAGE_USAGE = `usage: s3-orchestrator admin usage [--backend NAME] [--bucket NAME] [--month YYYY-MM | --from YYYY-MM [--to YYYY-MM]] [--json]

Usage per backend and per bucket: stored bytes and objects now, and per calendar month (UTC) the
requests by S3 class (A: PUT, COPY, POST, LIST, multipart; B: GET, HEAD, others) and the bytes in and
out. Without --backend/--bucket: every backend and bucket. Default month: the current one.

flags:
  --backend NAME   only this backend
  --bucket NAME    only this bucket
  --month YYYY-MM  one month
  --from YYYY-MM   first month of a range (--to defaults to the current month)
  --to YYYY-MM     last month of a range
  --server URL     admin endpoint (default ${DEFAULT_ADMIN_URL})
  --token T        bearer token (default: env S3O_ADMIN_TOKEN)
  --json           print the response as JSON
`;

const CALL_TIMEOUT_MS = 15_000;

/** Whether `args` (everything after "admin") is the usage command. */
export function isUsageCommand(args: readonly string[]): boolean {
  return args.find((a) => !a.startsWith('-')) === 'usage';
}

function section(title: string, entries: readonly UsageEntry[]): string {
  if (entries.length === 0) return '';
  const rows: string[][] = [];
  for (const e of entries) {
    for (const m of e.months) {
      rows.push([e.name, m.month, humanBytes(e.storedBytes), String(e.storedObjects), String(m.requestsA), String(m.requestsB), humanBytes(m.bytesIn), humanBytes(m.bytesOut)]);
    }
  }
  const header = [title, 'MONTH', 'STORED', 'OBJECTS', 'CLASS A', 'CLASS B', 'BYTES IN', 'BYTES OUT'];
  const numeric = [2, 3, 4, 5, 6, 7];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

/** The response as text: one table of backends, one of buckets. */
export function formatUsage(r: GetUsageResponse): string {
  const range = r.fromMonth === r.toMonth ? r.fromMonth : `${r.fromMonth} .. ${r.toMonth}`;
  const parts = [`usage ${range} (UTC)\n`, section('BACKEND', r.backends), section('BUCKET', r.buckets)].filter((p) => p !== '');
  return parts.join('\n');
}

/** Runs `admin usage …`; returns the exit code. */
export async function runUsageAdmin(
  args: string[],
  out: TextSink = process.stdout,
  err: TextSink = process.stderr,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        server: { type: 'string', default: DEFAULT_ADMIN_URL },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        backend: { type: 'string' },
        bucket: { type: 'string' },
        month: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err.write(`admin usage: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE_USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out.write(USAGE_USAGE);
    return 0;
  }
  const usage = (msg: string) => {
    err.write(`admin usage: ${msg}\n\n${USAGE_USAGE}`);
    return 2;
  };
  if (positionals.length > 1) return usage(`unexpected argument ${JSON.stringify(positionals[1])}`);
  if (v.month !== undefined && (v.from !== undefined || v.to !== undefined)) return usage('--month cannot be combined with --from/--to');
  if (!/^https?:\/\//.test(v.server)) return usage(`--server must be an http:// or https:// URL, got "${v.server}"`);
  const token = v.token ?? env.S3O_ADMIN_TOKEN;
  const headers = new Headers();
  if (token) headers.set('authorization', `Bearer ${token}`);
  const client = createClient(UsageService, createConnectTransport({ baseUrl: v.server, httpVersion: '1.1' }));
  try {
    const res = await client.getUsage(
      {
        backend: v.backend ?? '',
        bucket: v.bucket ?? '',
        fromMonth: v.month ?? v.from ?? '',
        toMonth: v.month ?? v.to ?? '',
      },
      { headers, timeoutMs: CALL_TIMEOUT_MS },
    );
    out.write(v.json ? JSON.stringify(toJson(GetUsageResponseSchema, res, { alwaysEmitImplicit: true }), null, 2) + '\n' : formatUsage(res));
    return 0;
  } catch (e) {
    const ce = ConnectError.from(e);
    const hint = ce.code === Code.Unauthenticated ? ' (set --token or S3O_ADMIN_TOKEN)' : '';
    err.write(`admin usage: ${Code[ce.code] ?? ce.code}: ${ce.rawMessage}${hint}\n`);
    return 1;
  }
}
