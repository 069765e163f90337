import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startOrchestrator, type Orchestrator } from '../app.js';
import { zeroConfig } from '../config/defaults.js';
import { ConfigError, loadConfigFile, parseListen } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';
import { runAdmin } from './admin-cmd.js';
import { runConfigValidate } from './config-cmd.js';
import { reloadOnSighup } from './reload.js';

/** package.json's version (read once; `--version` on every command prints it). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `usage: s3-orchestrator <command> [--help] [--version]

  serve [--config FILE] [--data DIR] [--s3-listen HOST:PORT] [--admin-listen HOST:PORT] [--mode M]
                                       run the S3 and admin servers (no --config: zero-config mode,
                                       embedded metadata and two local backends under DIR, default ./data,
                                       S3 on 127.0.0.1:9000 only); the listen flags override the
                                       configuration (port 0 = any free port)
  config validate FILE                 check a configuration file and summarise it
  admin status|backends|buckets|locate BUCKET KEY [--server URL] [--token T] [--json]
                                       query a running orchestrator's admin API
                                       (also: admin usage [--backend X] [--bucket Y] [--month YYYY-MM])
  check --endpoint URL --bucket B [--access-key K --secret-key S] [--time 60s] [--clients 16]
                                       consistency check of a deployment (or any S3 endpoint) under load
  fsck --config FILE|--data DIR [--repair] [--json] [--grace 10m]
                                       compare the metadata database with every backend; --repair
                                       queues the fixes (exit 0 clean, 1 findings, 2 error)
  rebuild --from-backends --config FILE|--data DIR [--json]
                                       reconstruct an empty metadata database from the backends
  rotate-master-key (--config FILE | --data DIR) [--new-key-file FILE]
                                       re-seal every stored secret under a new master key

Every command accepts --help and --version.
`;

const SERVE_USAGE = `usage: s3-orchestrator serve [--config FILE] [--data DIR] [--s3-listen HOST:PORT] [--admin-listen HOST:PORT] [--mode M]

  --config FILE            the configuration file (docs/configuration.md); without it: zero-config mode
  --data DIR               zero-config data directory (default ./data): embedded database in DIR/meta,
                           backends local1 and local2 in DIR/backends
  --s3-listen HOST:PORT    S3 listener (zero-config default 127.0.0.1:9000, this machine only;
                           --s3-listen 0.0.0.0:9000 exposes it on every interface)
  --admin-listen HOST:PORT admin listener (default 127.0.0.1:9001)
  --mode all|api|worker    what this instance runs (overrides server.mode; default all): api serves S3 and
                           the admin API, worker runs the background workers only, all does both

SIGTERM or SIGINT stops gracefully: requests in flight may finish for server.shutdown_timeout (30s),
the rest are aborted; a second signal aborts them at once. SIGHUP re-reads the --config file and applies
its backends, buckets and credentials without a restart (an invalid file is logged and ignored).
`;

const CONFIG_USAGE = `usage: s3-orchestrator config validate FILE

  check a configuration file, print a summary (exit 0) or every problem (exit 1)
`;

/** The command-line entry point; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // --version anywhere before a `--` (every command accepts it).
  const flags = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  if (flags.includes('--version') || cmd === '-V' || cmd === 'version') {
    process.stdout.write(`s3-orchestrator ${VERSION}\n`);
    return 0;
  }
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (cmd) {
    case 'serve':
      if (wantsHelp) return help(SERVE_USAGE);
      return serve(rest);
    case 'config':
      if (wantsHelp) return help(CONFIG_USAGE);
      if (rest[0] === 'validate' && rest[1] && rest.length === 2) return runConfigValidate(rest[1]);
      process.stderr.write(CONFIG_USAGE);
      return 2;
    case 'admin':
      return runAdmin(rest);
    case 'fsck': {
      const { FSCK_USAGE, runFsckCommand } = await import('./offline-cmd.js');
      return wantsHelp ? help(FSCK_USAGE) : runFsckCommand(rest);
    }
    case 'rebuild': {
      const { REBUILD_USAGE, runRebuildCommand } = await import('./offline-cmd.js');
      return wantsHelp ? help(REBUILD_USAGE) : runRebuildCommand(rest);
    }
    case 'rotate-master-key': {
      const { ROTATE_USAGE, runRotateMasterKey } = await import('./rotate-cmd.js');
      return wantsHelp ? help(ROTATE_USAGE) : runRotateMasterKey(rest);
    }
    case 'check': {
      const { CHECK_USAGE, runCheckCommand } = await import('../check/cli.js');
      return wantsHelp ? help(CHECK_USAGE) : runCheckCommand(rest);
    }
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

function help(text: string): number {
  process.stdout.write(text);
  return 0;
}

async function serve(args: string[]): Promise<number> {
  let values: {
    config?: string | undefined;
    data?: string | undefined;
    's3-listen'?: string | undefined;
    'admin-listen'?: string | undefined;
    mode?: string | undefined;
  };
  try {
    ({ values } = parseArgs({
      args,
      options: { config: { type: 'string' }, data: { type: 'string' }, 's3-listen': { type: 'string' }, 'admin-listen': { type: 'string' }, mode: { type: 'string' } },
    }));
  } catch (err) {
    process.stderr.write(`serve: ${err instanceof Error ? err.message : String(err)}\n\n${SERVE_USAGE}`);
    return 2;
  }
  const mode = values.mode;
  if (mode !== undefined && mode !== 'all' && mode !== 'api' && mode !== 'worker') {
    process.stderr.write(`serve: --mode must be all, api or worker, got ${JSON.stringify(mode)}\n`);
    return 2;
  }
  if (values.config && values.data) {
    process.stderr.write(`serve: --data is for zero-config mode; with --config, set database.path and backends[].path in the file\n`);
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
  // The AWS SDK warns at every start that its releases after early 2027 need Node 22. The @aws-sdk/*
  // versions are pinned in package.json (3.1175.0 works on Node 20 and stays so); the warning is about
  // upgrades we only make deliberately, so an operator can do nothing about it: silence it on purpose
  // (unless the environment already says otherwise).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = createLogger();
  const started = Date.now();
  let orch: Orchestrator;
  try {
    // Progress goes to stderr (stdout carries only the banner): a first start may take seconds.
    orch = await startOrchestrator(config, {
      log,
      progress: (step) => process.stderr.write(`starting: ${step}...\n`),
      ...(mode !== undefined ? { mode } : {}),
    });
  } catch (err) {
    process.stderr.write(`s3-orchestrator: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(banner(config, orch, Date.now() - started));
  const stopReloading = reloadOnSighup(orch, values.config, log, (c) => withListenFlags(c, values['s3-listen'], values['admin-listen']));
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log.info('shutting down', { signal: sig, deadlineMs: config.server.shutdownTimeoutMs });
      process.stderr.write(`s3-orchestrator: ${sig}: stopping (requests in flight may finish; send it again to abort them now)\n`);
      // A second signal cuts the drain short.
      const again = (s: string) => {
        log.warn('second signal: aborting requests in flight now', { signal: s });
        void orch.stop({ deadlineMs: 0 });
      };
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  stopReloading();
  await orch.stop();
  process.stderr.write('s3-orchestrator: stopped\n');
  return 0;
}

/** The start-up banner: the addresses actually bound, never a guess. */
function banner(config: Config, orch: Orchestrator, ms: number): string {
  const { s3, admin } = config.server;
  const lines = [
    `s3-orchestrator ${VERSION} is running (started in ${(ms / 1000).toFixed(1)} s)`,
    orch.mode === 'worker'
      ? `  S3 endpoint   not served (mode worker: background workers only)`
      : `  S3 endpoint   http://${orch.s3Address}  (region ${s3.region})${exposure(s3.host, orch.s3Port, config.source === undefined)}`,
    `  admin API     http://${orch.adminAddress}  (/healthz /readyz /metrics)${exposure(admin.host, orch.adminPort, false)}`,
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
      `       aws --endpoint-url ${clientUrl(s3.host, orch.s3Port)} s3 ls s3://${orch.demo.bucket}`,
    );
  }
  return lines.join('\n') + '\n';
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** What the bound address means for who can reach it; in zero-config mode, how to expose it. */
function exposure(host: string, port: number, zeroConfigMode: boolean): string {
  if (isWildcard(host)) return `\n                every interface of this machine (from here: ${clientUrl(host, port)})`;
  if (isLoopback(host)) return zeroConfigMode ? `\n                this machine only; to expose it: serve --s3-listen 0.0.0.0:${port}` : '';
  return '';
}

/** A URL a client on this machine can use for the listener. */
function clientUrl(host: string, port: number): string {
  if (isWildcard(host)) return `http://${host === '::' ? '[::1]' : '127.0.0.1'}:${port}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Applies --s3-listen / --admin-listen over the configuration's listeners. */
function withListenFlags(config: Config, s3?: string, admin?: string): Config {
  if (!s3 && !admin) return config;
  return {
    ...config,
    server: {
      ...config.server,
      s3: s3 ? { ...config.server.s3, ...parseListen(s3, '--s3-listen') } : config.server.s3,
      admin: admin ? { ...config.server.admin, ...parseListen(admin, '--admin-listen') } : config.server.admin,
    },
  };
}
