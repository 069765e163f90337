/**
 * Loads the YAML configuration file into the frozen, fully resolved `Config` (config/types.ts).
 *
 * Every key is checked once, here: types, ranges, names, uniqueness and cross-references. All problems
 * are collected before failing, so one run of `config validate` shows everything to fix. Unknown keys
 * are errors, so a typo never silently falls back to a default.
 */
import { readCors } from './cors.js';
import { BACKEND_BREAKER_KEYS, readBreaker, readReadPriority, readS3Timeouts, S3_TIMEOUT_KEYS } from './breaker.js';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { Checker, describe, keyPath, type ConfigProblem, type Env } from './check.js';
import { DEFAULTS, deepFreeze } from './defaults.js';
import type { BackendConfig, BucketConfig, Config, ServerMode } from './types.js';

export type { ConfigProblem } from './check.js';

/** A configuration that cannot be used; `problems` lists everything wrong, in file order. */
export class ConfigError extends Error {
  /** The file (as given), or undefined for configuration that did not come from a file. */
  readonly source: string | undefined;
  readonly problems: readonly ConfigProblem[];

  constructor(source: string | undefined, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => formatProblem(source, p));
    super(lines.length === 1 ? lines[0] : `${lines.length} configuration problems:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.source = source;
    this.problems = problems;
  }
}

/** `file: key.path: message`, the form every configuration error takes. */
export function formatProblem(source: string | undefined, p: ConfigProblem): string {
  return [source ?? 'configuration', p.path, p.message].filter(Boolean).join(': ');
}

const TOP_KEYS = ['server', 'database', 'placement', 'backends', 'buckets', 'workers', 'breaker'] as const;
const COMMON_BACKEND_KEYS = ['name', 'type', 'quota_bytes', 'zone', 'weight', ...BACKEND_BREAKER_KEYS];
const S3_BACKEND_KEYS = [
  ...COMMON_BACKEND_KEYS,
  ...S3_TIMEOUT_KEYS,
  'endpoint',
  'region',
  'bucket',
  'prefix',
  'access_key_id',
  'secret_access_key',
  'force_path_style',
];
const FS_BACKEND_KEYS = [...COMMON_BACKEND_KEYS, 'path'];
const BACKEND_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ACCESS_KEY_ID = /^[A-Za-z0-9]{16,128}$/;
const MIN_SECRET_LENGTH = 16;

/**
 * Reads, expands and validates a YAML configuration file.
 * @param file path as the user gave it; error messages start with it.
 * @param env environment for `${VAR}` / `${VAR:-default}` expansion in string values.
 * @throws ConfigError naming the file, key path and problem for everything wrong (or the YAML
 *   syntax error's line and column, or why the file could not be read).
 */
export async function loadConfigFile(file: string, env: Env = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ConfigError(file, [{ path: '', message: `cannot read the configuration file: ${why}` }]);
  }
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          path: pos ? `line ${pos.line}, column ${pos.col}` : '',
          message: `invalid YAML: ${e.message.split(/ at line \d+, column \d+/)[0]}`,
        };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (e) {
    throw new ConfigError(file, [{ path: '', message: `invalid YAML: ${(e as Error).message}` }]);
  }
  return resolveConfig(raw, file, env);
}

/**
 * Validates a parsed configuration tree (YAML snake_case keys) and returns the frozen Config with
 * defaults applied. Pure apart from resolving relative paths against `cwd`.
 * @param source the file name used in error messages and stored in `Config.source`.
 * @throws ConfigError listing every problem found.
 */
export function resolveConfig(raw: unknown, source: string | undefined, env: Env = process.env, cwd = process.cwd()): Config {
  const c = new Checker(env);
  const top = raw === null || raw === undefined ? {} : c.mapping(raw, '', TOP_KEYS) ?? {};
  const server = c.mapping(top.server, 'server', ['s3', 'admin', 'shutdown_timeout', 'master_key_file', 'mode']) ?? {};
  const s3 = c.mapping(server.s3, 'server.s3', ['listen', 'region', 'virtual_host_domains', 'idle_timeout']) ?? {};
  const admin = c.mapping(server.admin, 'server.admin', ['listen', 'token']) ?? {};

  const s3Listen = readListen(c, s3.listen, 'server.s3.listen', DEFAULTS.s3Host, DEFAULTS.s3Port);
  const adminListen = readListen(c, admin.listen, 'server.admin.listen', DEFAULTS.adminHost, DEFAULTS.adminPort);
  const token = c.string(admin.token, 'server.admin.token', { nonEmpty: true });
  if (token === undefined && admin.token === undefined && !isLoopback(adminListen.host)) {
    c.problem('server.admin.token', `is required when server.admin.listen is not a loopback address (${adminListen.host})`);
  }
  if (s3Listen.port !== 0 && s3Listen.port === adminListen.port && hostsOverlap(s3Listen.host, adminListen.host)) {
    c.problem('server.admin.listen', `port ${adminListen.port} is already used by server.s3.listen`);
  }
  const idle = c.duration(s3.idle_timeout, 'server.s3.idle_timeout');
  if (idle === 0) c.problem('server.s3.idle_timeout', 'must be greater than 0');
  const shutdownTimeoutMs = c.duration(server.shutdown_timeout, 'server.shutdown_timeout') ?? DEFAULTS.shutdownTimeoutMs;
  const masterKeyFile = c.string(server.master_key_file, 'server.master_key_file', { nonEmpty: true });

  const config: Config = {
    ...(source !== undefined ? { source } : {}),
    server: {
      s3: {
        ...s3Listen,
        region: readRegion(c, s3.region, 'server.s3.region'),
        virtualHostDomains: readDomains(c, s3.virtual_host_domains, 'server.s3.virtual_host_domains'),
        idleTimeoutMs: idle || DEFAULTS.idleTimeoutMs,
      },
      admin: { ...adminListen, ...(token !== undefined ? { token } : {}) },
      shutdownTimeoutMs,
      ...(masterKeyFile !== undefined ? { masterKeyFile: path.resolve(cwd, masterKeyFile) } : {}),
      ...readMode(c, server.mode),
    },
    database: readDatabase(c, top.database, cwd),
    placement: readPlacement(c, top.placement),
    backends: readBackends(c, top.backends, cwd),
    buckets: readBuckets(c, top.buckets),
    workers: readWorkers(c, top.workers),
    breaker: readBreaker(c, top.breaker),
    demo: false,
  };
  if (c.problems.length > 0) throw new ConfigError(source, c.problems);
  return deepFreeze(config);
}

/** Parses a `host:port` given outside a file (a command-line flag); throws ConfigError naming `what`. */
export function parseListen(value: string, what: string, env: Env = process.env): { host: string; port: number } {
  const c = new Checker(env);
  const out = readListen(c, value, what, '', 0);
  if (c.problems.length) throw new ConfigError(undefined, c.problems);
  return out;
}

/** `host:port`, `:port` (all interfaces) or `[ipv6]:port`. */
function readListen(c: Checker, v: unknown, at: string, host: string, port: number): { host: string; port: number } {
  const s = c.string(v, at, { nonEmpty: true });
  if (s === undefined) return { host, port };
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (!m) {
    const hint = (s.match(/:/g) ?? []).length > 1 ? ' (put IPv6 addresses in brackets: "[::1]:9000")' : '';
    c.problem(at, `must be "host:port", ":port" or "[ipv6]:port", got ${JSON.stringify(s)}${hint}`);
    return { host, port };
  }
  const [, v6, name, portText] = m as unknown as [string, string | undefined, string | undefined, string];
  const p = Number(portText);
  if (p > 65535) c.problem(at, `port must be 0-65535, got ${p}`);
  if (v6 !== undefined) {
    if (!net.isIPv6(v6)) c.problem(at, `"${v6}" is not an IPv6 address`);
    return { host: v6, port: p };
  }
  if (name === '' || name === undefined) return { host: '0.0.0.0', port: p };
  if (!net.isIPv4(name) && !HOSTNAME.test(name)) c.problem(at, `"${name}" is not a valid host name or IPv4 address`);
  return { host: name, port: p };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

function hostsOverlap(a: string, b: string): boolean {
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  return a === b || any(a) || any(b);
}

function readRegion(c: Checker, v: unknown, at: string): string {
  const s = c.string(v, at, { nonEmpty: true });
  if (s !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(s)) c.problem(at, `is not a valid region name: ${JSON.stringify(s)}`);
  return s ?? DEFAULTS.region;
}

function readDomains(c: Checker, v: unknown, at: string): string[] {
  const out: string[] = [];
  (c.list(v, at) ?? []).forEach((item, i) => {
    const s = c.string(item, `${at}[${i}]`, { required: true });
    if (s === undefined) return;
    const d = s.toLowerCase().replace(/\.$/, '');
    if (!HOSTNAME.test(d) || net.isIP(d)) c.problem(`${at}[${i}]`, `must be a domain name such as "s3.example.com", got ${JSON.stringify(s)}`);
    else if (out.includes(d)) c.problem(`${at}[${i}]`, `"${d}" is listed twice`);
    else out.push(d);
  });
  return out;
}

const DATABASE_KEYS = ['url', 'path', 'schema', 'pool_size', 'statement_timeout', 'lock_timeout', 'connect_timeout'];
/** PostgreSQL takes timeouts in ms as a 32-bit int. */
const MAX_PG_TIMEOUT_MS = 2_147_483_647;

function readDatabase(c: Checker, v: unknown, cwd: string): Config['database'] {
  const db = c.mapping(v, 'database', DATABASE_KEYS) ?? {};
  // An empty url means "not set", so `url: ${DATABASE_URL:-}` makes PostgreSQL optional.
  const url = c.string(db.url, 'database.url') || undefined;
  if (url !== undefined) {
    let scheme: string | undefined;
    try {
      scheme = new URL(url).protocol;
    } catch {
      c.problem('database.url', 'is not a valid URL (expected postgres://user:password@host:5432/database)');
    }
    // The URL is never echoed: it usually carries a password.
    if (scheme !== undefined && scheme !== 'postgres:' && scheme !== 'postgresql:') {
      c.problem('database.url', `must be a postgres:// or postgresql:// URL, got scheme "${scheme.replace(/:$/, '')}"`);
    }
  }
  const dbPath = c.string(db.path, 'database.path', { nonEmpty: true }) ?? DEFAULTS.databasePath;
  const schema = c.string(db.schema, 'database.schema', { nonEmpty: true }) ?? DEFAULTS.databaseSchema;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    c.problem('database.schema', `must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63), got ${JSON.stringify(schema)}`);
  }
  const timeout = (key: string, fallback: number, zeroAllowed: boolean): number => {
    const at = keyPath('database', key);
    const ms = c.duration(db[key], at);
    if (ms === undefined) return fallback;
    if (ms === 0 && !zeroAllowed) c.problem(at, 'must be greater than 0');
    else if (ms > MAX_PG_TIMEOUT_MS) c.problem(at, `must be at most 24d (PostgreSQL's limit), got ${JSON.stringify(db[key])}`);
    return ms;
  };
  return {
    ...(url !== undefined ? { url } : {}),
    path: path.resolve(cwd, dbPath),
    schema,
    poolSize: readPoolSize(c, db.pool_size),
    // 0 = no timeout, as in PostgreSQL.
    statementTimeoutMs: timeout('statement_timeout', DEFAULTS.statementTimeoutMs, true),
    lockTimeoutMs: timeout('lock_timeout', DEFAULTS.lockTimeoutMs, true),
    connectTimeoutMs: timeout('connect_timeout', DEFAULTS.connectTimeoutMs, false),
  };
}

/** `database.pool_size`: a whole number 1..1000 (a string from the environment is accepted). */
function readPoolSize(c: Checker, v: unknown): number {
  const at = 'database.pool_size';
  if (v === undefined) return DEFAULTS.databasePoolSize;
  const value = typeof v === 'string' ? c.expand(v, at) : v;
  if (value === undefined) return DEFAULTS.databasePoolSize;
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) {
    c.problem(at, `must be a whole number from 1 to 1000, got ${describe(v)}`);
    return DEFAULTS.databasePoolSize;
  }
  return n;
}

function readPlacement(c: Checker, v: unknown): Config['placement'] {
  const p = c.mapping(v, 'placement', ['strategy', 'replicas', 'write_quorum', 'rebalance_on_add']) ?? {};
  const replicas = readCount(c, p.replicas, 'placement.replicas', 1, MAX_REPLICAS) ?? 1;
  const writeQuorum = readCount(c, p.write_quorum, 'placement.write_quorum', 1, MAX_REPLICAS);
  if (writeQuorum !== undefined && writeQuorum > replicas) {
    c.problem('placement.write_quorum', `must not exceed placement.replicas (${replicas}), got ${writeQuorum}`);
  }
  const quorum = {
    ...(writeQuorum !== undefined ? { writeQuorum } : {}),
    ...(c.bool(p.rebalance_on_add, 'placement.rebalance_on_add') ? { rebalanceOnAdd: true } : {}),
  };
  const s = c.string(p.strategy, 'placement.strategy');
  if (s === undefined) return { strategy: DEFAULTS.placement, replicas, ...quorum };
  if (s !== 'pack' && s !== 'spread') {
    c.problem('placement.strategy', `must be "pack" or "spread", got ${JSON.stringify(s)}`);
    return { strategy: DEFAULTS.placement, replicas, ...quorum };
  }
  return { strategy: s, replicas, ...quorum };
}

/** The most copies one version may have (the database's CHECK on buckets.replicas agrees). */
const MAX_REPLICAS = 16;

/** A rate per second: a number greater than 0 and at most 100000, or undefined when absent. */
function readRate(c: Checker, v: unknown, at: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 100_000) {
    c.problem(at, `must be a number of items per second greater than 0 and at most 100000, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A whole number in [min, max], or undefined when absent. */
function readCount(c: Checker, v: unknown, at: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    c.problem(at, `must be a whole number from ${min} to ${max}, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** `server.mode`: what this instance runs (absent: `all`, applied by the orchestrator). */
function readMode(c: Checker, v: unknown): { mode?: ServerMode } {
  const s = c.string(v, 'server.mode');
  if (s === undefined) return {};
  if (s !== 'all' && s !== 'api' && s !== 'worker') {
    c.problem('server.mode', `must be "all", "api" or "worker", got ${JSON.stringify(s)}`);
    return {};
  }
  return { mode: s };
}

/** `backends[].zone`: a short label. */
function readZone(c: Checker, v: unknown, at: string): { zone?: string } {
  const z = c.string(v, at);
  if (z === undefined) return {};
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/.test(z)) {
    c.problem(at, `must be 1-63 characters of letters, digits, ".", "_", ":" and "-", got ${JSON.stringify(z)}`);
    return {};
  }
  return { zone: z };
}

function readBackends(c: Checker, v: unknown, cwd: string): BackendConfig[] {
  const list = c.list(v, 'backends');
  if (v === undefined || (list !== undefined && list.length === 0)) {
    c.problem('backends', 'at least one backend is required');
  }
  const out: BackendConfig[] = [];
  const indexes: number[] = [];
  const names = new Map<string, string>();
  (list ?? []).forEach((item, i) => {
    const at = `backends[${i}]`;
    const type = item !== null && typeof item === 'object' ? (item as Record<string, unknown>).type : undefined;
    const typeStr = typeof type === 'string' ? c.expand(type, `${at}.type`) : undefined;
    const known = typeStr === 's3' ? S3_BACKEND_KEYS : typeStr === 'fs' ? FS_BACKEND_KEYS : [...new Set([...S3_BACKEND_KEYS, ...FS_BACKEND_KEYS])];
    const b = c.mapping(item, at, known, typeStr === 's3' || typeStr === 'fs' ? `key for an ${typeStr} backend` : 'key');
    if (b === undefined) return;
    if (type === undefined) c.problem(`${at}.type`, 'is required ("s3" or "fs")');
    else if (typeof type !== 'string') c.problem(`${at}.type`, `must be "s3" or "fs", got ${typeof type}`);
    else if (typeStr !== undefined && typeStr !== 's3' && typeStr !== 'fs') {
      c.problem(`${at}.type`, `must be "s3" or "fs", got ${JSON.stringify(typeStr)}`);
    }
    const name = c.string(b.name, `${at}.name`, { required: true }) ?? '';
    if (name && !BACKEND_NAME.test(name)) {
      c.problem(`${at}.name`, `must be 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit, got ${JSON.stringify(name)}`);
    } else if (name && names.has(name)) {
      c.problem(`${at}.name`, `"${name}" is already the name of ${names.get(name)}`);
    } else if (name) names.set(name, at);
    const quotaBytes = c.size(b.quota_bytes, `${at}.quota_bytes`) ?? 0;
    const weight = readCount(c, b.weight, `${at}.weight`, 0, 1000);
    const common = { ...readZone(c, b.zone, `${at}.zone`), ...readReadPriority(c, b, at), ...(weight !== undefined ? { weight } : {}) };
    if (typeStr === 's3') out.push({ ...readS3Backend(c, b, at, name, quotaBytes), ...common });
    if (typeStr === 'fs') {
      const p = c.string(b.path, `${at}.path`, { required: true });
      out.push({ name, type: 'fs', quotaBytes, path: p === undefined ? '' : path.resolve(cwd, p), ...common });
    }
    if (typeStr === 's3' || typeStr === 'fs') indexes.push(i);
  });
  checkOverlaps(c, out, indexes);
  return out;
}

function readS3Backend(c: Checker, b: Record<string, unknown>, at: string, name: string, quotaBytes: number): BackendConfig {
  const endpoint = c.string(b.endpoint, `${at}.endpoint`, { nonEmpty: true });
  let normalised: string | undefined;
  if (endpoint !== undefined) {
    try {
      const u = new URL(endpoint);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') c.problem(`${at}.endpoint`, `must be an http:// or https:// URL, got ${JSON.stringify(endpoint)}`);
      else if (u.username || u.password) c.problem(`${at}.endpoint`, 'must not contain credentials; use access_key_id and secret_access_key');
      else if (u.search || u.hash) c.problem(`${at}.endpoint`, `must not have a query or fragment, got ${JSON.stringify(endpoint)}`);
      normalised = endpoint.replace(/\/+$/, '');
    } catch {
      c.problem(`${at}.endpoint`, `is not a valid URL: ${JSON.stringify(endpoint)}`);
    }
  }
  const bucket = c.string(b.bucket, `${at}.bucket`, { required: true }) ?? '';
  if (bucket && !/^[A-Za-z0-9._-]{1,255}$/.test(bucket)) c.problem(`${at}.bucket`, `is not a valid bucket name: ${JSON.stringify(bucket)}`);
  let prefix = c.string(b.prefix, `${at}.prefix`) ?? '';
  if (prefix.startsWith('/')) c.problem(`${at}.prefix`, `must not start with "/", got ${JSON.stringify(prefix)}`);
  if (prefix && !prefix.endsWith('/')) prefix += '/';
  return {
    name,
    type: 's3',
    quotaBytes,
    ...(normalised !== undefined ? { endpoint: normalised } : {}),
    region: readRegion(c, b.region, `${at}.region`),
    bucket,
    prefix,
    accessKeyId: c.string(b.access_key_id, `${at}.access_key_id`, { required: true }) ?? '',
    secretAccessKey: readSecret(c, b.secret_access_key, `${at}.secret_access_key`, 1),
    forcePathStyle: c.bool(b.force_path_style, `${at}.force_path_style`) ?? false,
    ...readS3Timeouts(c, b, at),
  };
}

/** A secret: like Checker.string, but never quotes the value in a message. */
function readSecret(c: Checker, v: unknown, at: string, minLength: number): string {
  if (v !== undefined && typeof v !== 'string') {
    c.problem(at, `must be a string, got ${v === null ? 'an empty value' : typeof v} (quote it)`);
    return '';
  }
  const s = c.string(v, at, { required: true });
  if (s !== undefined && s.length < minLength) c.problem(at, `must be at least ${minLength} characters, got ${s.length}`);
  return s ?? '';
}

/** Two backends writing to the same place would delete each other's objects. */
function checkOverlaps(c: Checker, backends: readonly BackendConfig[], indexes: readonly number[]): void {
  for (let i = 0; i < backends.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = backends[j]!;
      const b = backends[i]!;
      let clash = false;
      if (a.type === 'fs' && b.type === 'fs' && a.path && b.path) {
        clash = isWithin(a.path, b.path) || isWithin(b.path, a.path);
      } else if (a.type === 's3' && b.type === 's3' && a.bucket && a.bucket === b.bucket && (a.endpoint ?? '') === (b.endpoint ?? '')) {
        clash = a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
      }
      if (clash) {
        const what = b.type === 'fs' ? 'path' : 'bucket';
        c.problem(`backends[${indexes[i]}].${what}`, `overlaps backends[${indexes[j]}] ("${a.name}"); backends must not share storage`);
      }
    }
  }
}

/** True when `inner` is `outer` or a directory below it. */
function isWithin(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** S3's bucket naming rules (general purpose buckets). */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3-63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return 'must use only lower-case letters, digits, "." and "-", and start and end with a letter or digit';
  }
  if (name.includes('..')) return 'must not contain two adjacent periods';
  if (net.isIPv4(name)) return 'must not look like an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'must not start with "xn--", "sthree-" or "amzn-s3-demo-"';
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return 'must not end with a suffix reserved by S3';
  return undefined;
}

function readBuckets(c: Checker, v: unknown): BucketConfig[] {
  const out: BucketConfig[] = [];
  const names = new Map<string, string>();
  const keys = new Map<string, { secret: string; at: string }>();
  (c.list(v, 'buckets') ?? []).forEach((item, i) => {
    const at = `buckets[${i}]`;
    const b = c.mapping(item, at, ['name', 'credentials', 'cors', 'replicas']);
    if (b === undefined) return;
    const name = c.string(b.name, `${at}.name`, { required: true }) ?? '';
    const bad = name ? bucketNameProblem(name) : undefined;
    if (bad) c.problem(`${at}.name`, `${bad}, got ${JSON.stringify(name)}`);
    else if (name && names.has(name)) c.problem(`${at}.name`, `"${name}" is already the name of ${names.get(name)}`);
    else if (name) names.set(name, at);
    const credentials: { accessKeyId: string; secretAccessKey: string }[] = [];
    const inBucket = new Set<string>();
    (c.list(b.credentials, `${at}.credentials`) ?? []).forEach((cred, j) => {
      const cat = `${at}.credentials[${j}]`;
      const m = c.mapping(cred, cat, ['access_key_id', 'secret_access_key']);
      if (m === undefined) return;
      const id = c.string(m.access_key_id, `${cat}.access_key_id`, { required: true });
      if (id !== undefined && !ACCESS_KEY_ID.test(id)) {
        const why = /[^A-Za-z0-9]/.test(id) ? 'contains other characters' : `has ${id.length}`;
        c.problem(`${cat}.access_key_id`, `must be 16-128 characters of A-Z, a-z and 0-9, but ${why}`);
      }
      const secret = readSecret(c, m.secret_access_key, `${cat}.secret_access_key`, MIN_SECRET_LENGTH);
      if (id === undefined || !secret) return;
      if (inBucket.has(id)) {
        c.problem(`${cat}.access_key_id`, 'is listed twice in this bucket');
        return;
      }
      inBucket.add(id);
      const seen = keys.get(id);
      if (seen && seen.secret !== secret) {
        c.problem(`${cat}.secret_access_key`, `differs from the secret given for the same access key at ${seen.at}; an access key has exactly one secret`);
      } else if (!seen) keys.set(id, { secret, at: cat });
      credentials.push({ accessKeyId: id, secretAccessKey: secret });
    });
    const cors = readCors(c, b.cors, `${at}.cors`);
    const replicas = readCount(c, b.replicas, `${at}.replicas`, 1, MAX_REPLICAS);
    out.push({ name, credentials, ...(cors ? { cors } : {}), ...(replicas !== undefined ? { replicas } : {}) });
  });
  return out;
}

function readWorkers(c: Checker, v: unknown): Config['workers'] {
  const w =
    c.mapping(v, 'workers', [
      'cleanup_interval',
      'cleanup_delay',
      'stale_write_timeout',
      'abandoned_upload_timeout',
      'repair_bandwidth',
      'scrub_interval',
      'scrub_rate',
      'scrub_deep_interval',
      'scrub_bandwidth',
    ]) ?? {};
  const positive = (value: unknown, key: string, fallback: number): number => {
    const ms = c.duration(value, keyPath('workers', key));
    if (ms === 0) c.problem(keyPath('workers', key), 'must be greater than 0');
    return ms || fallback;
  };
  return {
    cleanupIntervalMs: positive(w.cleanup_interval, 'cleanup_interval', DEFAULTS.cleanupIntervalMs),
    // 0 is allowed here: delete replaced bytes at once, for deployments without long-running reads.
    cleanupDelayMs: c.duration(w.cleanup_delay, 'workers.cleanup_delay') ?? DEFAULTS.cleanupDelayMs,
    staleWriteMs: positive(w.stale_write_timeout, 'stale_write_timeout', DEFAULTS.staleWriteMs),
    abandonedUploadMs: positive(w.abandoned_upload_timeout, 'abandoned_upload_timeout', DEFAULTS.abandonedUploadMs),
    // Bandwidths are bytes per second (`50MiB` reads as 50 MiB/s); 0 means unlimited. Durations of 0 turn a scrub pass off.
    repairBandwidth: c.size(w.repair_bandwidth, 'workers.repair_bandwidth') ?? DEFAULTS.repairBandwidth,
    scrubIntervalMs: c.duration(w.scrub_interval, 'workers.scrub_interval') ?? DEFAULTS.scrubIntervalMs,
    scrubRate: readRate(c, w.scrub_rate, 'workers.scrub_rate') ?? DEFAULTS.scrubRate,
    scrubDeepIntervalMs: c.duration(w.scrub_deep_interval, 'workers.scrub_deep_interval') ?? DEFAULTS.scrubDeepIntervalMs,
    scrubBandwidth: c.size(w.scrub_bandwidth, 'workers.scrub_bandwidth') ?? DEFAULTS.scrubBandwidth,
  };
}
