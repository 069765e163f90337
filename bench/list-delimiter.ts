/**
 * Listing benchmark: ListObjects pages through the core list function (`src/core/list.ts`) against a real
 * PostgreSQL, over buckets of 10k, 100k and 1M live keys shaped as 1,000 common prefixes
 * (`dir-0000/` … `dir-0999/`, each holding size/1000 keys `obj-NNNNNNN`). Rows are generated in SQL with
 * generate_series into a schema of their own (no PUTs): the listing only reads object_versions, so the
 * rows carry what a real PUT leaves there (ETag, checksum, content type, ~100 bytes of user metadata).
 *
 *   node --import tsx bench/list-delimiter.ts [--sizes 10k,100k,1M] [--iterations 30] [--seconds 20]
 *        [--url postgres://postgres@127.0.0.1:5432/postgres] [--keep] [--only delimiter,paged,inside,flat]
 *
 * Cases, each timed page by page (wall time of one listObjects call, SQL included):
 *   delimiter  prefix '', delimiter '/', max-keys 1000: one page holding all 1,000 common prefixes
 *   paged      the same listing 100 entries per page, continuing from each page's last entry (10 pages)
 *   inside     prefix 'dir-0500/', delimiter '/', max-keys 1000: the keys of one prefix
 *   flat       no delimiter, max-keys 1000: the first 1,000 keys
 * For each: pages timed, p50/p99/max ms, SQL statements and rows fetched per page (counted by a wrapper
 * around the database handle), and CPU ms per page of this process plus its PostgreSQL backend (from
 * process.cpuUsage and /proc/<backend pid>/stat): on a loaded machine wall time stretches, CPU time much less. A case stops after --iterations pages or --seconds, whichever comes first
 * (at least 3 pages). Schemas are named `bench_list_<size>` and reused when already populated with the
 * same shape; --keep leaves them for another run (e.g. before/after a change), otherwise they are dropped.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { listObjects } from '../src/core/list.js';
import type { ListInput } from '../src/core/types.js';
import pg from 'pg';
import type { Queryable } from '../src/meta/db.js';
import { loadMigrations } from '../src/meta/migrate.js';

const PREFIXES = 1000;
const BUCKET = 'bench';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10k,100k,1M' },
    iterations: { type: 'string', default: '30' },
    seconds: { type: 'string', default: '20' },
    url: { type: 'string', default: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    keep: { type: 'boolean', default: false },
    only: { type: 'string', default: 'delimiter,paged,inside,flat' },
  },
});

function parseCount(s: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad size ${JSON.stringify(s)} (e.g. 10k, 1M)`);
  const n = Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6);
  if (n % PREFIXES !== 0) throw new Error(`size ${s} must be a multiple of ${PREFIXES}`);
  return n;
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

/**
 * A plain pg connection with the schema as search_path and int8 as numbers (what the engines do), kept
 * independent of the engine module so the bench measures only the listing code.
 */
async function connect(schema: string): Promise<Queryable & { close(): Promise<void>; backendPid: number }> {
  const c = new pg.Client({
    connectionString: args.url,
    options: `-c search_path=${schema}`,
    types: { getTypeParser: ((oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as never },
  });
  await c.connect();
  const backendPid = Number((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  return {
    backendPid,
    async query(text, values) {
      const r = await c.query(text, values as unknown[] | undefined);
      return { rows: r.rows, rowCount: r.rowCount ?? 0 };
    },
    async exec(text) {
      await c.query(text);
    },
    close: () => c.end(),
  };
}

/** Creates the schema and applies the migrations when it is new. */
async function prepareSchema(db: Queryable, schema: string): Promise<void> {
  await db.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const { rows } = await db.query<{ t: string | null }>(`SELECT to_regclass('object_versions')::text AS t`);
  if (rows[0]!.t !== null) return;
  await db.exec('BEGIN');
  await db.exec(`CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  for (const m of loadMigrations()) {
    await db.exec(m.sql);
    await db.query('INSERT INTO schema_version (version, name) VALUES ($1, $2)', [m.version, m.name]);
  }
  await db.exec('COMMIT');
}

/** Counts statements and rows going through a database handle. */
function counting(db: Queryable): { q: Queryable; stats: { statements: number; rows: number } } {
  const stats = { statements: 0, rows: 0 };
  return {
    stats,
    q: {
      async query(text, values) {
        const r = await db.query(text, values);
        stats.statements++;
        stats.rows += r.rows.length;
        return r as never;
      },
      exec: (text) => db.exec(text),
    },
  };
}

async function populate(db: Queryable, n: number): Promise<void> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_versions WHERE bucket = $1`, [BUCKET]).catch(() => ({
    rows: [{ n: -1 }],
  }));
  if (rows[0]!.n === n) {
    console.log(`  reusing ${n} rows already in the schema`);
    return;
  }
  const t0 = performance.now();
  await db.query(`DELETE FROM object_versions WHERE bucket = $1`, [BUCKET]);
  await db.query(`INSERT INTO buckets (name, source) VALUES ($1, 'config') ON CONFLICT DO NOTHING`, [BUCKET]);
  await db.query(
    `INSERT INTO object_versions (version_id, bucket, key, state, size, etag, content_type, user_meta,
                                  checksum_algorithm, checksum_value, checksum_type, created_at, heartbeat_at)
     SELECT lpad(to_hex(g), 12, '0') || md5(g::text)::varchar(20), $1,
            'dir-' || lpad((g % ${PREFIXES})::text, 4, '0') || '/obj-' || lpad((g / ${PREFIXES})::text, 7, '0'),
            'live', 1024 + g % 4096, md5(g::text), 'application/octet-stream',
            jsonb_build_object('owner', 'bench', 'source-host', 'host-' || (g % 97), 'note', repeat('x', 64)),
            'CRC32', 'AAAAAA==', 'FULL_OBJECT', now() - (g || ' seconds')::interval, now()
     FROM generate_series(0, $2::int8 - 1) g`,
    [BUCKET, n],
  );
  await db.exec(`VACUUM ANALYZE object_versions`);
  console.log(`  populated ${n} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** CPU seconds so far of this process plus the PostgreSQL backend serving it (utime + stime, 100 Hz ticks). */
function cpuSeconds(backendPid: number): number {
  const u = process.cpuUsage();
  let backend = 0;
  try {
    const fields = readFileSync(`/proc/${backendPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    backend = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    backend = Number.NaN; // a remote server
  }
  return (u.user + u.system) / 1e6 + backend;
}

interface CaseResult {
  name: string;
  cpuMs: number;
  pages: number[];
  statements: number;
  rows: number;
  entries: number;
}

/** Times listings built by `next` until the iteration or time budget is spent. */
async function timeCase(
  name: string,
  db: Queryable & { backendPid: number },
  pagesOf: () => ListInput[] | 'walk',
  walkInput: ListInput | undefined,
  check: (entries: string[]) => void,
): Promise<CaseResult> {
  const iterations = Number(args.iterations);
  const budgetMs = Number(args.seconds) * 1000;
  const { q, stats } = counting(db);
  const res: CaseResult = { name, cpuMs: 0, pages: [], statements: 0, rows: 0, entries: 0 };
  const start = performance.now();
  // One warm-up listing, not counted.
  const runOnce = async (record: boolean): Promise<void> => {
    const spec = pagesOf();
    const inputs: ListInput[] = spec === 'walk' ? [] : spec;
    const seen: string[] = [];
    let input: ListInput | undefined = spec === 'walk' ? { ...walkInput! } : inputs.shift();
    while (input) {
      const s0 = stats.statements;
      const r0 = stats.rows;
      const t0 = performance.now();
      const page = await listObjects(q, input);
      const ms = performance.now() - t0;
      seen.push(...page.objects.map((o) => o.key), ...page.commonPrefixes);
      if (record) {
        res.pages.push(ms);
        res.statements += stats.statements - s0;
        res.rows += stats.rows - r0;
        res.entries += page.objects.length + page.commonPrefixes.length;
      }
      if (spec === 'walk') input = page.isTruncated ? { ...walkInput!, after: page.nextAfter! } : undefined;
      else input = inputs.shift();
      if (record && (res.pages.length >= iterations || performance.now() - start > budgetMs) && res.pages.length >= 3) break;
    }
    if (spec === 'walk' && input === undefined) check(seen.sort());
    else if (spec !== 'walk') check(seen);
  };
  await runOnce(false);
  const cpu0 = cpuSeconds(db.backendPid);
  while (res.pages.length < iterations && (performance.now() - start <= budgetMs || res.pages.length < 3)) await runOnce(true);
  res.cpuMs = ((cpuSeconds(db.backendPid) - cpu0) * 1000) / res.pages.length;
  return res;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function expectEqual(what: string, got: string[], want: string[]): void {
  if (got.length !== want.length || got.some((g, i) => g !== want[i])) {
    throw new Error(`${what}: wrong listing (${got.length} entries, first ${got.slice(0, 3).join(', ')}; want ${want.length})`);
  }
}

async function main(): Promise<void> {
  const sizes = args.sizes.split(',').map(parseCount);
  const only = new Set(args.only.split(','));
  const allPrefixes = Array.from({ length: PREFIXES }, (_, i) => `dir-${String(i).padStart(4, '0')}/`);
  console.log(`# list-delimiter bench, ${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} cpus`);
  console.log(`# loadavg before: ${loadavg()}`);
  const table: string[] = [];
  for (const n of sizes) {
    const schema = `bench_list_${n}`;
    console.log(`\n## ${n} keys (schema ${schema})`);
    const db = await connect(schema);
    try {
      await prepareSchema(db, schema);
      await populate(db, n);
      const perPrefix = n / PREFIXES;
      const base: ListInput = { bucket: BUCKET, prefix: '', delimiter: '/', maxKeys: 1000 };
      const cases: CaseResult[] = [];
      if (only.has('delimiter')) {
        cases.push(await timeCase('delimiter, 1000/page', db, () => [{ ...base }], undefined, (e) => expectEqual('delimiter', e, allPrefixes)));
      }
      if (only.has('paged')) {
        cases.push(
          await timeCase('delimiter, 100/page', db, () => 'walk', { ...base, maxKeys: 100 }, (e) => expectEqual('paged', e, allPrefixes)),
        );
      }
      if (only.has('inside')) {
        const want = Array.from({ length: Math.min(1000, perPrefix) }, (_, i) => `dir-0500/obj-${String(i).padStart(7, '0')}`);
        cases.push(await timeCase('inside one prefix', db, () => [{ ...base, prefix: 'dir-0500/' }], undefined, (e) => expectEqual('inside', e, want)));
      }
      if (only.has('flat')) {
        const want = Array.from({ length: 1000 }, (_, i) => `dir-0000/obj-${String(i).padStart(7, '0')}`).slice(0, Math.min(1000, perPrefix));
        const wantAll = perPrefix >= 1000 ? want : undefined;
        cases.push(
          await timeCase('no delimiter, 1000/page', db, () => [{ bucket: BUCKET, prefix: '', maxKeys: 1000 }], undefined, (e) => {
            if (wantAll) expectEqual('flat', e, wantAll);
            else if (e.length !== 1000) throw new Error(`flat: ${e.length} entries`);
          }),
        );
      }
      for (const c of cases) {
        const s = [...c.pages].sort((a, b) => a - b);
        const line =
          `| ${n.toLocaleString('en-US')} | ${c.name} | ${s.length} | ${pct(s, 50).toFixed(1)} | ${pct(s, 99).toFixed(1)} | ${s[s.length - 1]!.toFixed(1)} | ` +
          `${(c.statements / s.length).toFixed(1)} | ${Math.round(c.rows / s.length)} | ${Math.round(c.entries / s.length)} | ${c.cpuMs.toFixed(1)} |`;
        console.log(line);
        table.push(line);
      }
    } finally {
      if (!args.keep) await db.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      await db.close();
    }
  }
  console.log(`\n# loadavg after: ${loadavg()}`);
  console.log('\n| keys | case | pages | p50 ms | p99 ms | max ms | statements/page | rows fetched/page | entries/page | CPU ms/page |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const l of table) console.log(l);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
