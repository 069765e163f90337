import type { DatabaseConfig } from '../config/types.js';
import type { Db } from './db.js';
import { openPglite } from './engine-pglite.js';
import { openPostgres } from './engine-pg.js';
import { migrate } from './migrate.js';

/** Opens the configured database and brings its schema up to date. */
export async function openDatabase(cfg: Pick<DatabaseConfig, 'url' | 'path' | 'schema'>): Promise<{ db: Db; schemaVersion: number }> {
  const db = cfg.url ? await openPostgres(cfg.url, cfg.schema) : await openPglite(cfg.path);
  try {
    const schemaVersion = await migrate(db);
    return { db, schemaVersion };
  } catch (err) {
    await db.close();
    throw err;
  }
}
