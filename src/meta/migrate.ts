import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.js';

const DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** One numbered migration file `NNN_name.sql`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations shipped with this build, in order. Numbers must be 1..N without gaps. */
export function loadMigrations(dir = DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const out = files.map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql: readFileSync(dir + f, 'utf8') }));
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.version}_${m.name}: expected number ${i + 1} (no gaps allowed)`);
  });
  return out;
}

/** The newest schema version this build knows. */
export const LATEST_SCHEMA_VERSION = loadMigrations().length;

/**
 * Applies pending migrations in ONE transaction under an advisory lock, so concurrent instances
 * starting together migrate once and the others wait, then see the result. Refuses to run against a
 * database whose schema is newer than this build. Returns the schema version now in place.
 */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number> {
  const latest = migrations.length;
  return db.tx(async (q) => {
    await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('s3o:migrate:' || current_schema(), 0))`);
    await q.exec(`CREATE TABLE IF NOT EXISTS schema_version (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await q.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
    const current = rows[0]?.v ?? 0;
    if (current > latest) {
      throw new Error(
        `the metadata database has schema version ${current}, newer than this s3-orchestrator understands (${latest}); ` +
          `run a newer release against it`,
      );
    }
    for (const m of migrations.slice(current)) {
      await q.exec(m.sql);
      await q.query('INSERT INTO schema_version (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    return latest;
  });
}

/**
 * The schema version a database has (0 when it was never migrated), without changing anything: for tools
 * that must not migrate a database other processes serve from (fsck).
 */
export async function schemaVersion(db: Db): Promise<number> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('schema_version')::text AS t`);
  if (!exists.rows[0]?.t) return 0;
  const { rows } = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
  return rows[0]?.v ?? 0;
}
