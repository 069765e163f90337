/**
 * The offline tools: `s3-orchestrator fsck [--repair]` and `s3-orchestrator rebuild --from-backends`. Both
 * load the configuration file `serve` uses, open its metadata database and its backends, and do their work
 * in core (core/fsck.ts, core/rebuild.ts). Exit codes: 0 clean / done, 1 findings (fsck) or refused
 * (rebuild on a non-empty database), 2 usage or operational error.
 */
import { parseArgs } from 'node:util';
import type { Backend } from '../backends/backend.js';
import { createBackend, FsBackend } from '../backends/index.js';
import { zeroConfig } from '../config/defaults.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { formatSize, parseDuration } from '../config/units.js';
import { syncConfigBackends } from '../core/fleet.js';
import { hasFindings, runFsck, type FsckReport } from '../core/fsck.js';
import { expectFsIdentities, recordFsIdentities } from '../core/fs-upkeep.js';
import { declareBuckets, rebuildFromBackends, RebuildRefused, type RebuildReport } from '../core/rebuild.js';
import { createLogger } from '../log.js';
import type { Db } from '../meta/db.js';
import { openDatabase } from '../meta/open.js';
import type { TextSink } from './config-cmd.js';

export const FSCK_USAGE = `usage: s3-orchestrator fsck (--config FILE | --data DIR) [--repair] [--json] [--grace DURATION] [--examples N]

  compares the metadata database with every configured backend (each listed in full) and reports:
  orphans (objects no row references), live copies whose object is missing or has the wrong size,
  versions below their replica count, and quota counters that differ from the rows.
  Safe while the orchestrator runs (use database.url; an embedded database is locked by its server).

  --config FILE     the configuration file serve uses
  --data DIR        a zero-config deployment's data directory instead (stop its orchestrator first)
  --repair          queue the deletion of orphans, mark missing/wrong-size copies bad (queues their
                    repair), queue the repair of versions below their replicas, correct the counters
  --json            print the report as JSON
  --grace DURATION  objects modified more recently are not orphans (default 10m; 0 = none)
  --examples N      examples per finding class (default 10)

exit code: 0 clean, 1 findings (also after --repair fixed them), 2 error (a backend could not be listed)
`;

export const REBUILD_USAGE = `usage: s3-orchestrator rebuild --from-backends (--config FILE | --data DIR) [--json] [--delete-delay DURATION]

  reconstructs an EMPTY metadata database (database.url / database.path of FILE) from the backends
  alone: buckets, keys, the newest generation of each key as live, sizes, ETags, content headers, user
  metadata, multipart part sizes, copies, quota counters. Stop every orchestrator first.
  What cannot be recovered: docs/operations.md. With --data DIR (zero-config), DIR/pg must be new
  (move the old one away); the next serve prints a new demo credential.

  --delete-delay DURATION  older generations and duplicate copies are queued for deletion to run after
                           this long (default 1h): stop the workers before it to keep them
  --json                   print the report as JSON

exit code: 0 rebuilt, 1 refused (the database is not empty), 2 error
`;

interface Opened {
  config: Config;
  db: Db;
  backends: Backend[];
  fs: FsBackend[];
  close(): Promise<void>;
}

/** The configuration: `--config FILE`, or zero-config's for `--data DIR`; exactly one of them. */
function source(values: { config?: string | undefined; data?: string | undefined }): { file?: string; data?: string } {
  if (values.config !== undefined && values.data !== undefined) throw new Error('give --config FILE or --data DIR, not both');
  if (values.config === undefined && values.data === undefined) throw new Error(`--config FILE (or --data DIR for a zero-config deployment) is required`);
  return values.config !== undefined ? { file: values.config } : { data: values.data! };
}

async function open(from: { file?: string; data?: string }, migrate: boolean): Promise<Opened> {
  const config = from.file !== undefined ? await loadConfigFile(from.file) : zeroConfig(from.data);
  // Silence the AWS SDK's Node-version notice, as `serve` does.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { db } = await openDatabase(config.database, {
    log: createLogger({}, 'warn'),
    ...(from.data !== undefined ? { zeroConfig: true } : {}),
    // fsck runs beside serving instances: it never migrates their database; rebuild fills a new one.
    ...(migrate ? {} : { requireCurrentSchema: true }),
  });
  const backends = config.backends.map((b) => createBackend(b));
  const fs = backends.filter((b): b is FsBackend => b instanceof FsBackend);
  return {
    config,
    db,
    backends,
    fs,
    close: async () => {
      await Promise.allSettled(backends.map((b) => b.close()));
      await db.close();
    },
  };
}

function fail(cmd: string, err: unknown, e: TextSink): number {
  e.write(err instanceof ConfigError ? `${err.message}\n` : `${cmd}: ${err instanceof Error ? err.message : String(err)}\n`);
  return 2;
}

/** `fsck`; returns the exit code. */
export async function runFsckCommand(args: string[], out: TextSink = process.stdout, e: TextSink = process.stderr): Promise<number> {
  let values: { config?: string; data?: string; repair?: boolean; json?: boolean; grace?: string; examples?: string };
  let from: { file?: string; data?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        data: { type: 'string' },
        repair: { type: 'boolean' },
        json: { type: 'boolean' },
        grace: { type: 'string' },
        examples: { type: 'string' },
      },
    }));
    from = source(values);
  } catch (err) {
    e.write(`fsck: ${err instanceof Error ? err.message : String(err)}\n\n${FSCK_USAGE}`);
    return 2;
  }
  let graceMs = 10 * 60_000;
  let examples = 10;
  try {
    if (values.grace !== undefined) graceMs = parseDuration(values.grace);
  } catch (err) {
    e.write(`fsck: --grace ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (values.examples !== undefined) {
    examples = Number(values.examples);
    if (!Number.isInteger(examples) || examples < 0) {
      e.write(`fsck: --examples must be a whole number, got ${JSON.stringify(values.examples)}\n`);
      return 2;
    }
  }
  let o: Opened;
  try {
    o = await open(from, false);
  } catch (err) {
    return fail('fsck', err, e);
  }
  try {
    await expectFsIdentities(o.db, o.fs);
    const report = await runFsck(o.db, o.backends, {
      defaultReplicas: o.config.placement.replicas ?? 1,
      graceMs,
      examples,
      ...(values.repair ? { repair: true } : {}),
      ...(values.json ? {} : { progress: (line: string) => void e.write(`fsck: ${line}\n`) }),
    });
    out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatFsck(report));
    if (report.backends.some((b) => b.error !== undefined)) return 2;
    return hasFindings(report) ? 1 : 0;
  } catch (err) {
    return fail('fsck', err, e);
  } finally {
    await o.close();
  }
}

/** The human report of fsck. */
export function formatFsck(r: FsckReport): string {
  const lines: string[] = [];
  for (const b of r.backends) {
    lines.push(`backend ${b.name}: ${b.objects} objects, ${formatSize(b.bytes)}${b.error ? ` — NOT CHECKED: ${b.error}` : ''}`);
  }
  for (const name of r.unconfigured) lines.push(`backend ${name}: in the database but not configured — its copies were not checked`);
  const cls = (label: string, count: number, extra: string, examples: string[]) => {
    lines.push(`${label.padEnd(28)} ${String(count).padStart(8)}${extra}`);
    for (const x of examples) lines.push(`    e.g. ${x}`);
  };
  cls('orphans', r.orphans.count, r.orphans.count ? `  (${formatSize(r.orphans.bytes)})` : '', r.orphans.examples.map((o) => `${o.backend}: ${o.physicalKey} (${o.size} bytes)`));
  cls('missing copies', r.missing.count, '', r.missing.examples.map((c) => `${c.backend}: ${c.physicalKey} of ${c.bucket}/${c.key} (version ${c.versionId})`));
  cls(
    'wrong-size copies',
    r.wrongSize.count,
    '',
    r.wrongSize.examples.map((c) => `${c.backend}: ${c.physicalKey} of ${c.bucket}/${c.key}: ${c.actualSize} bytes, expected ${c.expectedSize}`),
  );
  cls(
    'below replica count',
    r.underReplicated.count,
    r.repairing ? `  (and ${r.repairing} with a repair queued or running)` : '',
    r.underReplicated.examples.map((v) => `${v.bucket}/${v.key} (version ${v.versionId}): ${v.liveCopies} of ${v.replicas} copies`),
  );
  cls('backend counters drifted', r.backendCounters.count, '', r.backendCounters.examples.map((c) => `${c.name}.${c.field} = ${c.actual}, rows say ${c.expected}`));
  cls('bucket counters drifted', r.bucketCounters.count, '', r.bucketCounters.examples.map((c) => `${c.name}.${c.field} = ${c.actual}, rows say ${c.expected}`));
  lines.push(
    `not findings: ${r.knownBad} copies already marked bad, ${r.youngUnreferenced} unreferenced objects younger than the grace period, ` +
      `${r.dismissed} candidates dismissed on re-check (changed while listing)`,
  );
  if (r.foreign.count) {
    lines.push(`${r.foreign.count} objects outside the physical layout (left alone), e.g. ${r.foreign.examples.map((f) => `${f.backend}: ${f.physicalKey}`).join(', ')}`);
  }
  if (r.repaired) {
    const x = r.repaired;
    lines.push(
      `repair: ${x.orphansQueued} orphan deletions queued, ${x.copiesMarkedBad} copies marked bad (repair queued), ` +
        `${x.repairsQueued} repairs queued, counters corrected on ${x.backendsCorrected} backends and ${x.bucketsCorrected} buckets`,
    );
  }
  lines.push(hasFindings(r) ? (r.repaired ? 'findings repaired (the queued work runs in the orchestrator\'s workers)' : 'findings: run fsck --repair to fix them') : 'clean');
  return lines.join('\n') + '\n';
}

/** `rebuild --from-backends`; returns the exit code. */
export async function runRebuildCommand(args: string[], out: TextSink = process.stdout, e: TextSink = process.stderr): Promise<number> {
  let values: { config?: string; data?: string; 'from-backends'?: boolean; json?: boolean; 'delete-delay'?: string };
  let delayMs = 60 * 60_000;
  let from: { file?: string; data?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string' },
        data: { type: 'string' },
        'from-backends': { type: 'boolean' },
        json: { type: 'boolean' },
        'delete-delay': { type: 'string' },
      },
    }));
    if (!values['from-backends']) throw new Error('--from-backends is required (the only source a rebuild has today)');
    from = source(values);
    if (values['delete-delay'] !== undefined) {
      try {
        delayMs = parseDuration(values['delete-delay']);
      } catch (err) {
        throw new Error(`--delete-delay ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } catch (err) {
    e.write(`rebuild: ${err instanceof Error ? err.message : String(err)}\n\n${REBUILD_USAGE}`);
    return 2;
  }
  let o: Opened;
  try {
    o = await open(from, true);
  } catch (err) {
    return fail('rebuild', err, e);
  }
  try {
    await syncConfigBackends(o.db, o.config.backends);
    await declareBuckets(o.db, o.config.buckets.map((b) => b.name));
    const report = await rebuildFromBackends(o.db, o.backends, {
      deleteDelayMs: delayMs,
      ...(values.json ? {} : { progress: (line: string) => void e.write(`rebuild: ${line}\n`) }),
    });
    await recordFsIdentities(o.db, o.fs, createLogger({}, 'warn'));
    out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatRebuild(report));
    return 0;
  } catch (err) {
    if (err instanceof RebuildRefused) {
      e.write(`rebuild: refused: ${err.message}\n`);
      return 1;
    }
    fail('rebuild', err, e);
    e.write('rebuild: the database may hold part of the rebuild now: start again from a new, empty one\n');
    return 2;
  } finally {
    await o.close();
  }
}

/** The human report of a rebuild. */
export function formatRebuild(r: RebuildReport): string {
  const lines = [
    `listed: ${Object.entries(r.listed).map(([b, n]) => `${b} ${n}`).join(', ')}`,
    `buckets: ${r.buckets.found.join(', ') || 'none'}${r.buckets.created.length ? ` (created, no credentials: ${r.buckets.created.join(', ')})` : ''}`,
    `rebuilt: ${r.versions} objects (${formatSize(r.bytes)}), ${r.copies} copies, ${r.multipart} multipart, ${r.etagsComputed} ETags computed from the bytes`,
    `queued for deletion: ${r.queuedDeletions.count} objects (${formatSize(r.queuedDeletions.bytes)})`,
    ...r.queuedDeletions.examples.map((d) => `    e.g. ${d.backend}: ${d.physicalKey} (${d.reason})`),
    `skipped: ${r.skipped.count} keys`,
    ...r.skipped.examples.map((d) => `    e.g. ${d.backend}: ${d.physicalKey} (${d.reason})`),
  ];
  if (r.foreign) lines.push(`${r.foreign} objects outside the physical layout were left alone`);
  return lines.join('\n') + '\n';
}
