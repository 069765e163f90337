import { parseArgs } from 'node:util';
import { startOrchestrator } from '../app.js';
import { zeroConfig } from '../config/defaults.js';
import { ConfigError, loadConfigFile, parseListen } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';
import { runAdmin } from './admin-cmd.js';
import { runConfigValidate } from './config-cmd.js';

const USAGE = `usage: s3-orchestrator <command>

  serve [--config FILE] [--data DIR] [--s3-listen HOST:PORT] [--admin-listen HOST:PORT]
                                       run the S3 and admin servers (no --config: zero-config mode,
                                       embedded metadata and two local backends under DIR, default ./data);
                                       the listen flags override the configuration (port 0 = any free port)
  config validate FILE                 check a configuration file and summarise it
  admin status|backends|buckets|locate BUCKET KEY [--server URL] [--token T] [--json]
                                       query a running orchestrator's admin API
`;

/** The command-line entry point; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serve(rest);
    case 'config':
      if (rest[0] === 'validate' && rest[1] && rest.length === 2) return runConfigValidate(rest[1]);
      process.stderr.write(`usage: s3-orchestrator config validate FILE\n`);
      return 2;
    case 'admin':
      return runAdmin(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`s3-orchestrator: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  let values: { config?: string | undefined; data?: string | undefined; 's3-listen'?: string | undefined; 'admin-listen'?: string | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string' }, data: { type: 'string' }, 's3-listen': { type: 'string' }, 'admin-listen': { type: 'string' } },
    }));
  } catch (err) {
    process.stderr.write(`serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  let config: Config;
  try {
    config = values.config ? await loadConfigFile(values.config) : zeroConfig(values.data);
    config = withListenFlags(config, values['s3-listen'], values['admin-listen']);
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `serve: ${String(err)}\n`);
    return 1;
  }
  const log = createLogger();
  let orch;
  try {
    orch = await startOrchestrator(config, { log });
  } catch (err) {
    process.stderr.write(`s3-orchestrator: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const { s3, admin } = config.server;
  const lines = [
    `s3-orchestrator is running`,
    `  S3 endpoint   http://${displayHost(s3.host)}:${orch.s3Port}  (region ${s3.region})`,
    `  admin API     http://${displayHost(admin.host)}:${orch.adminPort}  (/healthz /readyz /metrics)`,
    `  metadata      ${config.database.url ? 'PostgreSQL' : `embedded PostgreSQL in ${config.database.path}`}`,
    `  backends      ${config.backends.map((b) => `${b.name} (${b.type})`).join(', ')}`,
  ];
  if (orch.demo) {
    lines.push(
      `  bucket        ${orch.demo.bucket}${orch.demo.created ? ' (created now)' : ''}`,
      `  access key    ${orch.demo.accessKeyId}`,
      `  secret key    ${orch.demo.secretAccessKey}`,
      ``,
      `  try: AWS_ACCESS_KEY_ID=${orch.demo.accessKeyId} AWS_SECRET_ACCESS_KEY=${orch.demo.secretAccessKey} \\`,
      `       aws --endpoint-url http://127.0.0.1:${orch.s3Port} s3 ls s3://${orch.demo.bucket}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log.info('shutting down', { signal: sig });
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await orch.stop();
  return 0;
}

/** Applies --s3-listen / --admin-listen over the configuration's listeners. */
function withListenFlags(config: Config, s3?: string, admin?: string): Config {
  if (!s3 && !admin) return config;
  return {
    ...config,
    server: {
      s3: s3 ? { ...config.server.s3, ...parseListen(s3, '--s3-listen') } : config.server.s3,
      admin: admin ? { ...config.server.admin, ...parseListen(admin, '--admin-listen') } : config.server.admin,
    },
  };
}

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
