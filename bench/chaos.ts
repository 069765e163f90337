/**
 * `npm run chaos -- --nemesis kill,backend,blackhole,db,drain --time 120s [--db external|embedded] [--replicas N] [--clients 16]
 *   [--instances N] [--faults N] [--keys 8] [--seed N] [--no-multipart] [--overlap] [--wait-leases] [--keep] [--json FILE]`
 *
 * Starts its own local deployment (orchestrator processes, s3rver backends, PostgreSQL), runs the
 * consistency checker's load while the nemeses inject faults, undoes them, waits for the deployment to
 * settle and reports: operations, faults, anomalies (with their sub-histories), convergence. Exit status
 * 0 when there is no anomaly and everything converged, 1 otherwise, 2 on bad arguments.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../src/check/cli.js';
import { NEMESIS_NAMES, type NemesisName } from './chaos-nemesis.js';
import { formatChaos, runChaos, type ChaosOptions } from './chaos-run.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `usage: npm run chaos -- [--nemesis kill,backend,blackhole,db,drain,clock] [--time 120s] [--db external|embedded]
         [--instances N] [--replicas 1|2|3] [--clients 16] [--keys 8] [--faults N] [--seed N] [--no-multipart] [--overlap]
         [--wait-leases] [--keep] [--json FILE]

Starts a local deployment (orchestrator processes, two s3rvers, an fs backend, PostgreSQL), runs the
consistency checker's load while the nemeses inject faults, then checks the history and convergence.
See docs/reliability.md.
`;

async function main(argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        nemesis: { type: 'string' },
        time: { type: 'string' },
        db: { type: 'string' },
        clients: { type: 'string' },
        instances: { type: 'string' },
        replicas: { type: 'string' },
        faults: { type: 'string' },
        keys: { type: 'string' },
        seed: { type: 'string' },
        'no-multipart': { type: 'boolean' },
        keep: { type: 'boolean' },
        'wait-leases': { type: 'boolean' },
        overlap: { type: 'boolean' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (v['help']) {
    process.stdout.write(USAGE);
    return 0;
  }
  const nemeses = ((v['nemesis'] as string | undefined) ?? 'kill,backend,blackhole,db')
    .split(',')
    .filter(Boolean) as NemesisName[];
  const bad = nemeses.filter((n) => !NEMESIS_NAMES.includes(n));
  if (bad.length) {
    process.stderr.write(`chaos: unknown nemesis ${bad.join(', ')} (known: ${NEMESIS_NAMES.join(', ')})\n`);
    return 2;
  }
  const db = (v['db'] as string | undefined) ?? 'external';
  if (db !== 'external' && db !== 'embedded') {
    process.stderr.write('chaos: --db is external or embedded\n');
    return 2;
  }
  const int = (k: string, d: number) => {
    const n = v[k] === undefined ? d : Number(v[k]);
    if (!Number.isInteger(n) || n < (k === 'seed' || k === 'faults' ? 0 : 1)) throw new Error(`--${k}: "${String(v[k])}" is not a positive integer`);
    return n;
  };
  const command = `npm run chaos -- ${argv.join(' ')}`;
  let opts: ChaosOptions;
  try {
    opts = {
      nemeses,
      timeMs: parseDurationMs((v['time'] as string | undefined) ?? '120s', '--time'),
      clients: int('clients', 16),
      keys: int('keys', 8),
      db,
      instances: int('instances', 1),
      replicas: int('replicas', 1),
      ...(v['faults'] !== undefined ? { maxFaults: int('faults', 0) } : {}),
      ...(v['seed'] !== undefined ? { seed: int('seed', 0) } : {}),
      multipart: !v['no-multipart'],
      large: true,
      keep: !!v['keep'],
      waitLeases: !!v['wait-leases'],
      overlap: !!v['overlap'],
      log: (line) => process.stderr.write(`chaos: ${line}\n`),
    };
  } catch (err) {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (opts.nemeses.includes('clock') && opts.instances < 2) {
    process.stderr.write('chaos: the clock nemesis skews one instance against others: use --instances 2 or more\n');
    return 2;
  }
  if ((opts.replicas ?? 1) > 3) {
    process.stderr.write('chaos: --replicas is at most 3 (the deployment has three backends)\n');
    return 2;
  }
  const r = await runChaos(opts);
  process.stdout.write(formatChaos(r, command));
  if (typeof v['json'] === 'string') {
    const { history: _h, ...rest } = r;
    writeFileSync(v['json'], JSON.stringify({ command, ...rest }, null, 1));
  }
  return r.check.anomalies.length === 0 && r.convergence.ok && r.finalReadsAnswered ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
