/**
 * `s3-orchestrator admin credentials create|list|get|update|revoke` (CredentialService) and
 * `admin buckets create|list|get|update|delete` (BucketService): Connect clients over HTTP/1.1. Tables by
 * default, the proto3 JSON of the response with `--json`. (`admin buckets` alone is AdminService's usage
 * summary, admin-cmd.ts.)
 *
 * Exit codes: 0 done; 1 the call failed (server unreachable, token refused, internal error); 2 usage or a
 * field the server refused (INVALID_ARGUMENT); 3 not found; 4 the name is taken (ALREADY_EXISTS); 5 refused
 * in the current state (FAILED_PRECONDITION: config-owned, revoked, bucket not empty).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fromJson, toJson, type JsonValue, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ConfigOwnedSchema, FieldViolationSchema } from '../../gen/s3o/admin/v1/backends_pb.js';
import {
  BucketService,
  BucketServiceListBucketsResponseSchema,
  CorsRuleSchema,
  CreateBucketResponseSchema,
  DeleteBucketResponseSchema,
  GetBucketResponseSchema,
  UpdateBucketResponseSchema,
  type CorsRule,
  type ManagedBucket,
} from '../../gen/s3o/admin/v1/buckets_pb.js';
import {
  CreateCredentialResponseSchema,
  CredentialService,
  GetCredentialResponseSchema,
  ListCredentialsResponseSchema,
  Permission,
  RevokeCredentialResponseSchema,
  UpdateCredentialResponseSchema,
  type Credential,
  type GrantSchema,
} from '../../gen/s3o/admin/v1/credentials_pb.js';
import { humanBytes, type AdminTextSink } from './admin-cmd.js';

const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9001';

export const CREDENTIALS_USAGE = `usage: s3-orchestrator admin credentials <command> [flags]

commands:
  create [--description D] [--grant G]... [--can-create-buckets]
                            a new access key and secret (the secret is shown once)
  list [--bucket B] [--all] credentials (--bucket: granted on B; --all: revoked ones too)
  get KEY                   one credential (never its secret)
  update KEY [--description D] [--can-create-buckets true|false] [--grant G]... [--no-grants]
                            change it; --grant replaces all grants, --no-grants removes them
  revoke KEY                stop the key on every instance within a second

grants (--grant, repeatable): BUCKET[:read|rw[:PREFIX]]   (default rw; PREFIX confines the keys)
  e.g. --grant photos:read  --grant logs:rw:team-a/

flags: --server URL (default ${DEFAULT_ADMIN_URL}), --token T (default env S3O_ADMIN_TOKEN), --json

exit codes: 0 done, 1 call failed, 2 usage or invalid field, 3 not found, 5 refused (config-owned, revoked)
`;

export const BUCKETS_USAGE = `usage: s3-orchestrator admin buckets <command> [flags]

commands:
  list                      every bucket with source, replicas, usage and grants
  get NAME                  one bucket in detail
  create NAME [--replicas N] [--cors-file FILE]
  update NAME [--replicas N|default] [--cors-file FILE | --no-cors]
                            change replicas or CORS (config-owned buckets: edit the file, SIGHUP)
  delete NAME [--force]     delete an empty bucket; --force empties it first with a purge job

--cors-file: a JSON array of rules, e.g.
  [{"allowedOrigins":["https://app.example"],"allowedMethods":["GET","PUT"],"maxAgeSeconds":600}]

flags: --server URL (default ${DEFAULT_ADMIN_URL}), --token T (default env S3O_ADMIN_TOKEN), --json

exit codes: 0 done, 1 call failed, 2 usage or invalid field, 3 not found, 4 name taken,
            5 refused (config-owned, not empty)
`;

const CREDENTIAL_SUBS = new Set(['create', 'list', 'get', 'update', 'revoke']);
const BUCKET_SUBS = new Set(['create', 'list', 'get', 'update', 'delete']);

/** Whether `args` (after "admin") is a CredentialService or BucketService command. */
export function isTenantsCommand(args: readonly string[]): boolean {
  const pos = args.filter((a) => !a.startsWith('-'));
  if (pos[0] === 'credentials') return true;
  return pos[0] === 'buckets' && pos[1] !== undefined && BUCKET_SUBS.has(pos[1]);
}

const EXIT_FOR: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 2,
  [Code.NotFound]: 3,
  [Code.AlreadyExists]: 4,
  [Code.FailedPrecondition]: 5,
};

function iso(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : '-';
}

function table(header: string[], rows: string[][], numeric: number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}

function fields(pairs: [string, string][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}\n`).join('');
}

const PERM_NAME: Record<number, string> = { [Permission.READ]: 'read', [Permission.READ_WRITE]: 'rw' };

function grantText(g: { bucket: string; permission: Permission; prefix: string }): string {
  return `${g.bucket}:${PERM_NAME[g.permission] ?? '?'}${g.prefix ? `:${g.prefix}` : ''}`;
}

function credentialState(c: Credential): string {
  return c.revokedAt ? 'revoked' : 'active';
}

function formatCredentials(list: Credential[]): string {
  if (list.length === 0) return 'no credentials\n';
  const rows = list.map((c) => [
    c.accessKeyId,
    credentialState(c),
    c.source,
    c.canCreateBuckets ? 'yes' : 'no',
    c.grants.length > 0 ? c.grants.map(grantText).join(' ') : '-',
    c.description || '-',
  ]);
  return table(['ACCESS KEY', 'STATE', 'SOURCE', 'CREATE BUCKETS', 'GRANTS', 'DESCRIPTION'], rows);
}

function formatCredential(c: Credential): string {
  return fields([
    ['access key id', c.accessKeyId],
    ['state', c.revokedAt ? `revoked at ${iso(c.revokedAt)}` : 'active'],
    ['source', c.configRef ? `${c.source} (${c.configRef})` : c.source],
    ['description', c.description || '-'],
    ['create buckets', c.canCreateBuckets ? 'yes' : 'no'],
    ['grants', c.grants.length > 0 ? c.grants.map(grantText).join(' ') : '-'],
    ['created', iso(c.createdAt)],
    ['updated', iso(c.updatedAt)],
  ]);
}

function formatBuckets(list: ManagedBucket[]): string {
  if (list.length === 0) return 'no buckets\n';
  const rows = list.map((b) => [
    b.name,
    b.source,
    b.replicas === 0 ? 'default' : String(b.replicas),
    String(b.objectCount),
    humanBytes(b.totalBytes),
    b.grants.length > 0 ? b.grants.map((g) => `${g.accessKeyId}:${PERM_NAME[g.permission] ?? '?'}${g.prefix ? `:${g.prefix}` : ''}`).join(' ') : '-',
  ]);
  return table(['NAME', 'SOURCE', 'REPLICAS', 'OBJECTS', 'SIZE', 'GRANTS'], rows, [3, 4]);
}

function formatBucket(b: ManagedBucket): string {
  return fields([
    ['name', b.name],
    ['source', b.configRef ? `${b.source} (${b.configRef})` : b.source],
    ...(b.owner ? ([['owner', b.owner]] as [string, string][]) : []),
    ['created', iso(b.createdAt)],
    ['replicas', b.replicas === 0 ? 'default (placement.replicas)' : String(b.replicas)],
    ['objects', String(b.objectCount)],
    ['size', `${humanBytes(b.totalBytes)} (${b.totalBytes} bytes)`],
    ['uploads in progress', b.hasUploads ? 'yes' : 'no'],
    ['cors rules', String(b.corsRules.length)],
    ['grants', b.grants.length > 0 ? b.grants.map((g) => `${g.accessKeyId}:${PERM_NAME[g.permission] ?? '?'}${g.prefix ? `:${g.prefix}` : ''}`).join(' ') : '-'],
  ]);
}

/** `BUCKET[:read|rw[:PREFIX]]` as a Grant. */
export function parseGrant(text: string): MessageInitShape<typeof GrantSchema> {
  const first = text.indexOf(':');
  const bucket = first < 0 ? text : text.slice(0, first);
  const rest = first < 0 ? '' : text.slice(first + 1);
  const second = rest.indexOf(':');
  const perm = second < 0 ? rest : rest.slice(0, second);
  const prefix = second < 0 ? '' : rest.slice(second + 1);
  if (bucket === '') throw new Error(`--grant ${JSON.stringify(text)}: the bucket is missing (BUCKET[:read|rw[:PREFIX]])`);
  const permission = perm === '' || perm === 'rw' || perm === 'read-write' ? Permission.READ_WRITE : perm === 'read' || perm === 'ro' ? Permission.READ : undefined;
  if (permission === undefined) throw new Error(`--grant ${JSON.stringify(text)}: the permission must be read or rw, got ${JSON.stringify(perm)}`);
  return { bucket, permission, prefix };
}

function readCors(file: string): MessageInitShape<typeof CorsRuleSchema>[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`--cors-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { rules?: unknown })?.rules;
  if (!Array.isArray(list)) throw new Error(`--cors-file ${file}: expected a JSON array of CORS rules`);
  return list.map((r, i) => {
    try {
      return fromJson(CorsRuleSchema, r as JsonValue) as CorsRule;
    } catch (e) {
      throw new Error(`--cors-file ${file}: rule ${i}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
}

function detailLines(e: ConnectError): string[] {
  const lines: string[] = [];
  for (const d of e.findDetails(ConfigOwnedSchema)) lines.push(`  config-owned: edit ${d.file}: ${d.keyPath} and reload (SIGHUP)`);
  for (const d of e.findDetails(FieldViolationSchema)) lines.push(`  field ${d.field}: ${d.description}`);
  return lines;
}

type Flags = Record<string, string | boolean | string[] | undefined>;
type Env = Readonly<Record<string, string | undefined>>;

function str(f: Flags, name: string): string | undefined {
  const v = f[name];
  return typeof v === 'string' ? v : undefined;
}

function replicasFlag(f: Flags, allowDefault: boolean): number | undefined {
  const v = str(f, 'replicas');
  if (v === undefined) return undefined;
  if (allowDefault && v === 'default') return 0;
  if (!/^\d+$/.test(v)) throw new Error(`--replicas must be a whole number${allowDefault ? ' or "default"' : ''}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function boolFlag(f: Flags, name: string): boolean | undefined {
  const v = str(f, name);
  if (v === undefined) return undefined;
  if (v === 'true' || v === 'yes') return true;
  if (v === 'false' || v === 'no') return false;
  throw new Error(`--${name} must be true or false, got ${JSON.stringify(v)}`);
}

/** Runs `admin credentials|buckets <sub> ...` (everything after "admin"); returns the exit code. */
export async function runTenantsAdmin(args: string[], out: AdminTextSink = process.stdout, err: AdminTextSink = process.stderr, env: Env = process.env): Promise<number> {
  const group = args.find((a) => !a.startsWith('-')) === 'credentials' ? 'credentials' : 'buckets';
  const usage = group === 'credentials' ? CREDENTIALS_USAGE : BUCKETS_USAGE;
  let values: Flags;
  let positionals: string[];
  // `--can-create-buckets` alone (no true/false after it) means true.
  const i = args.indexOf('--can-create-buckets');
  if (i >= 0 && !/^(true|false|yes|no)$/.test(args[i + 1] ?? '')) args = [...args.slice(0, i + 1), 'true', ...args.slice(i + 1)];
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
        bucket: { type: 'string' },
        description: { type: 'string' },
        grant: { type: 'string', multiple: true },
        'no-grants': { type: 'boolean', default: false },
        'can-create-buckets': { type: 'string' },
        replicas: { type: 'string' },
        'cors-file': { type: 'string' },
        'no-cors': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    err.write(`admin ${group}: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    out.write(usage);
    return 0;
  }
  const [, sub = '', ...rest] = positionals;
  const subs = group === 'credentials' ? CREDENTIAL_SUBS : BUCKET_SUBS;
  if (!subs.has(sub)) {
    err.write(`admin ${group}: ${sub === '' ? 'a command is required' : `unknown command "${sub}"`}\n\n${usage}`);
    return 2;
  }
  const wantArg = !(sub === 'list' || (group === 'credentials' && sub === 'create'));
  if (rest.length !== (wantArg ? 1 : 0)) {
    err.write(`admin ${group} ${sub}: expected ${wantArg ? 'one argument' : 'no argument'}, got ${rest.length}\n\n${usage}`);
    return 2;
  }
  const arg = rest[0] ?? '';
  const server = str(values, 'server')!;
  if (!/^https?:\/\//.test(server)) {
    err.write(`admin: --server must be an http:// or https:// URL, got "${server}"\n`);
    return 2;
  }
  const token = str(values, 'token') ?? env.S3O_ADMIN_TOKEN;
  const headers = new Headers();
  if (token) headers.set('authorization', `Bearer ${token}`);
  const opts = { headers, timeoutMs: 15_000 };
  const transport = createConnectTransport({ baseUrl: server, httpVersion: '1.1' });
  const json = values.json === true;
  const emit = (text: string, body: unknown) => out.write(json ? JSON.stringify(body, null, 2) + '\n' : text);
  const j = { alwaysEmitImplicit: true } as const;

  let call: () => Promise<void>;
  try {
    if (group === 'credentials') {
      const c = createClient(CredentialService, transport);
      const grants = (values.grant as string[] | undefined)?.map(parseGrant);
      switch (sub) {
        case 'create': {
          const req = { description: str(values, 'description') ?? '', grants: grants ?? [], canCreateBuckets: boolFlag(values, 'can-create-buckets') ?? false };
          call = async () => {
            const r = await c.createCredential(req, opts);
            emit(
              `created credential ${r.credential!.accessKeyId}\n\n${formatCredential(r.credential!)}\nsecret access key  ${r.secretAccessKey}\n` +
                '(shown once: store it now, it cannot be read back)\n',
              toJson(CreateCredentialResponseSchema, r, j),
            );
          };
          break;
        }
        case 'list':
          call = async () => {
            const r = await c.listCredentials({ bucket: str(values, 'bucket') ?? '', includeRevoked: values.all === true }, opts);
            emit(formatCredentials(r.credentials), toJson(ListCredentialsResponseSchema, r, j));
          };
          break;
        case 'get':
          call = async () => {
            const r = await c.getCredential({ accessKeyId: arg }, opts);
            emit(formatCredential(r.credential!), toJson(GetCredentialResponseSchema, r, j));
          };
          break;
        case 'update': {
          if (grants && values['no-grants'] === true) throw new Error('--grant and --no-grants exclude each other');
          const description = str(values, 'description');
          const canCreateBuckets = boolFlag(values, 'can-create-buckets');
          const req = {
            accessKeyId: arg,
            ...(description !== undefined ? { description } : {}),
            ...(canCreateBuckets !== undefined ? { canCreateBuckets } : {}),
            ...(grants || values['no-grants'] === true ? { grants: { grants: grants ?? [] } } : {}),
          };
          call = async () => {
            const r = await c.updateCredential(req, opts);
            emit(`updated credential ${arg}\n\n${formatCredential(r.credential!)}`, toJson(UpdateCredentialResponseSchema, r, j));
          };
          break;
        }
        default:
          call = async () => {
            const r = await c.revokeCredential({ accessKeyId: arg }, opts);
            emit(`revoked credential ${arg}\n`, toJson(RevokeCredentialResponseSchema, r, j));
          };
      }
    } else {
      const b = createClient(BucketService, transport);
      const corsFile = str(values, 'cors-file');
      if (corsFile !== undefined && values['no-cors'] === true) throw new Error('--cors-file and --no-cors exclude each other');
      const cors = corsFile !== undefined ? readCors(corsFile) : undefined;
      switch (sub) {
        case 'list':
          call = async () => {
            const r = await b.listBuckets({}, opts);
            emit(formatBuckets(r.buckets), toJson(BucketServiceListBucketsResponseSchema, r, j));
          };
          break;
        case 'get':
          call = async () => {
            const r = await b.getBucket({ name: arg }, opts);
            emit(formatBucket(r.bucket!), toJson(GetBucketResponseSchema, r, j));
          };
          break;
        case 'create': {
          const req = { name: arg, replicas: replicasFlag(values, false) ?? 0, corsRules: cors ?? [] };
          call = async () => {
            const r = await b.createBucket(req, opts);
            emit(`created bucket ${arg}\n\n${formatBucket(r.bucket!)}`, toJson(CreateBucketResponseSchema, r, j));
          };
          break;
        }
        case 'update': {
          const replicas = replicasFlag(values, true);
          const req = {
            name: arg,
            ...(replicas !== undefined ? { replicas } : {}),
            ...(cors !== undefined || values['no-cors'] === true ? { cors: { rules: cors ?? [] } } : {}),
          };
          call = async () => {
            const r = await b.updateBucket(req, opts);
            emit(`updated bucket ${arg}\n\n${formatBucket(r.bucket!)}`, toJson(UpdateBucketResponseSchema, r, j));
          };
          break;
        }
        default:
          call = async () => {
            const r = await b.deleteBucket({ name: arg, force: values.force === true }, opts);
            emit(
              r.deleted ? `deleted bucket ${arg}\n` : `purging bucket ${arg}: job ${r.jobId} (admin jobs watch ${r.jobId})\n`,
              toJson(DeleteBucketResponseSchema, r, j),
            );
          };
      }
    }
  } catch (e) {
    err.write(`admin ${group} ${sub}: ${e instanceof Error ? e.message : String(e)}\n`);
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
    err.write([`admin ${group} ${sub}: ${codeName}: ${ce.rawMessage}${hint}`, ...detailLines(ce)].join('\n') + '\n');
    return EXIT_FOR[ce.code] ?? 1;
  }
}
