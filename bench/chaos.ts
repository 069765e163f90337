/**
 * `npm run chaos -- --nemesis kill,backend,blackhole,db --time 120s [--db external|embedded] [--clients 16]
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
import { formatChaos, runChaos } from './chaos-run.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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
        faults: { type: 'string' },
        keys: { type: 'string' },
        seed: { type: 'string' },
        'no-multipart': { type: 'boolean' },
        keep: { type: 'boolean' },
        'wait-leases': { type: 'boolean' },
        overlap: { type: 'boolean' },
        json: { type: 'string' },
      },
    }));
  } catch (err) {
    process.stderr.write(`chaos: ${String(err)}\n`);
    return 2;
  }
  const nemeses = ((v['nemesis'] as string | undefined) ?? 'kill,backend,blackhole,db')
    .split(',')
    .filter(Boolean) as NemesisName[];
  const bad = nemeses.filter((n) => !NEMESIS_NAMES.includes(n));
  if (bad.length) {
    process.stderr.write(`chaos: unknown nemesis ${bad.join(', ')} (known: ${NEMESIS_NAMES.join(', ')}; drain, replication and clock skew come with those features)\n`);
    return 2;
  }
  const db = (v['db'] as string | undefined) ?? 'external';
  if (db !== 'external' && db !== 'embedded') {
    process.stderr.write('chaos: --db is external or embedded\n');
    return 2;
  }
  const int = (k: string, d: number) => (v[k] === undefined ? d : Number(v[k]));
  const command = `npm run chaos -- ${argv.join(' ')}`;
  const r = await runChaos({
    nemeses,
    timeMs: parseDurationMs((v['time'] as string | undefined) ?? '120s', '--time'),
    clients: int('clients', 16),
    keys: int('keys', 8),
    db,
    instances: int('instances', 1),
    ...(v['faults'] !== undefined ? { maxFaults: Number(v['faults']) } : {}),
    ...(v['seed'] !== undefined ? { seed: Number(v['seed']) } : {}),
    multipart: !v['no-multipart'],
    large: true,
    keep: !!v['keep'],
    waitLeases: !!v['wait-leases'],
    overlap: !!v['overlap'],
    log: (line) => process.stderr.write(`chaos: ${line}\n`),
  });
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
