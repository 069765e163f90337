/**
 * `s3-orchestrator config validate FILE`: loads a configuration the way `serve` does and prints either
 * a short summary or every problem. It never prints secrets: credentials are counted, not shown, and
 * the database URL is reduced to host, port and database name.
 */
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { BackendConfig, Config } from '../config/types.js';
import { formatDuration, formatSize } from '../config/units.js';

/** Where the command writes text (process.stdout / process.stderr, or a collector in tests). */
export interface TextSink {
  write(chunk: string): unknown;
}

/**
 * Validates `file`. On success writes a summary to `out` and returns 0; otherwise writes every
 * problem (each naming the file and key path) to `err` and returns 1.
 */
export async function runConfigValidate(
  file: string,
  out: TextSink = process.stdout,
  err: TextSink = process.stderr,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let config: Config;
  try {
    config = await loadConfigFile(file, env);
  } catch (e) {
    if (e instanceof ConfigError) err.write(`${e.message}\n`);
    else err.write(`${file}: cannot validate: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  out.write(summarise(file, config));
  return 0;
}

/** The human summary `config validate` prints for a valid configuration. */
export function summarise(file: string, config: Config): string {
  const { s3, admin } = config.server;
  const lines = [
    `${file}: OK`,
    `  S3 API      ${hostPort(s3.host, s3.port)}, region ${s3.region}, idle timeout ${formatDuration(s3.idleTimeoutMs)}` +
      (s3.virtualHostDomains.length ? `, virtual hosts ${s3.virtualHostDomains.join(', ')}` : ''),
    `  admin API   ${hostPort(admin.host, admin.port)}, ${admin.token ? 'bearer token required' : 'no token'}`,
    `  metadata    ${describeDatabase(config.database)}`,
    `  placement   ${config.placement.strategy}`,
    `  workers     cleanup every ${formatDuration(config.workers.cleanupIntervalMs)}, ` +
      `replaced bytes removed after ${formatDuration(config.workers.cleanupDelayMs)}, ` +
      `stale writes aborted after ${formatDuration(config.workers.staleWriteMs)}`,
    `  backends (${config.backends.length}):`,
  ];
  const width = Math.max(...config.backends.map((b) => b.name.length));
  for (const b of config.backends) {
    const quota = b.quotaBytes ? `quota ${formatSize(b.quotaBytes)}` : 'no quota';
    lines.push(`    ${b.name.padEnd(width)}  ${b.type}  ${describeBackend(b)}  ${quota}`);
  }
  const limited = config.backends.filter((b) => b.quotaBytes > 0);
  const total = limited.reduce((sum, b) => sum + b.quotaBytes, 0);
  if (limited.length === config.backends.length) lines.push(`  total quota ${formatSize(total)}`);
  else if (limited.length > 0) lines.push(`  total quota ${formatSize(total)} plus ${config.backends.length - limited.length} unlimited`);
  if (config.buckets.length === 0) {
    lines.push('  buckets: none in the file');
  } else {
    lines.push(`  buckets (${config.buckets.length}):`);
    const nameWidth = Math.max(...config.buckets.map((b) => b.name.length));
    for (const b of config.buckets) {
      const n = b.credentials.length;
      lines.push(`    ${b.name.padEnd(nameWidth)}  ${n} credential${n === 1 ? '' : 's'}`);
    }
  }
  return lines.join('\n') + '\n';
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function describeDatabase(db: Config['database']): string {
  if (!db.url) return `embedded PostgreSQL in ${db.path}`;
  const u = new URL(db.url);
  const name = u.pathname.replace(/^\//, '') || '(default database)';
  return `PostgreSQL ${u.host || '(default host)'}/${name}, schema ${db.schema}`;
}

function describeBackend(b: BackendConfig): string {
  if (b.type === 'fs') return b.path;
  const where = b.endpoint ? new URL(b.endpoint).host : `AWS ${b.region}`;
  return `${where} bucket ${b.bucket}${b.prefix ? ` prefix ${b.prefix}` : ''}`;
}
