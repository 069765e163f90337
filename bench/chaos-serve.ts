/**
 * An orchestrator instance for the chaos harness's `clock` nemesis: what `s3-orchestrator serve --config
 * FILE` does (same config loader, same startOrchestrator, SIGTERM/SIGINT stop it), plus a clock skew
 * read from a file, so that the nemesis can skew one instance against the others while it runs. Test
 * only: the skew is the `Clock` seam of src/core/tasks.ts (leases, heartbeats, janitors and the queue's
 * due times are judged by the database's clock plus the skew); production always runs with none.
 *
 *   node bench/chaos-serve.ts --config FILE --skew-file FILE   (started through tsx by chaos-env.ts)
 *
 * The skew file holds milliseconds (a signed integer); it is read at start and every 200 ms; a missing
 * or unreadable file is no skew.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startOrchestrator } from '../src/app.js';
import { loadConfigFile } from '../src/config/load.js';
import type { Clock } from '../src/core/tasks.js';
import { createLogger } from '../src/log.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({ options: { config: { type: 'string' }, 'skew-file': { type: 'string' } } });
if (!values.config || !values['skew-file']) {
  process.stderr.write('usage: chaos-serve.ts --config FILE --skew-file FILE\n');
  process.exit(2);
}
const skewFile = values['skew-file'];
const log = createLogger();
let skew = 0;
const readSkew = () => {
  let next = 0;
  try {
    next = Number(readFileSync(skewFile, 'utf8').trim()) || 0;
  } catch {
    next = 0;
  }
  if (next !== skew) log.warn('chaos: clock skew changed', { skewMs: next, was: skew });
  skew = next;
};
readSkew();
const clock: Clock = { skewMs: () => skew };
const timer = setInterval(readSkew, 200);
const config = await loadConfigFile(values.config);
const orch = await startOrchestrator(config, { log, clock, progress: (step) => process.stderr.write(`starting: ${step}...\n`) });
process.stderr.write(`chaos-serve: running (S3 ${orch.s3Port}, admin ${orch.adminPort}, skew ${skew} ms)\n`);
const stop = (sig: string) => {
  log.info('shutting down', { signal: sig });
  clearInterval(timer);
  orch.stop({ deadlineMs: config.server.shutdownTimeoutMs }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
