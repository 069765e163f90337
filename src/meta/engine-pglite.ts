import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './db.js';

const INT8 = 20;

/** Data directories this process has open: a second open in the same process is refused too. */
const OPEN_HERE = new Set<string>();

/**
 * Takes an exclusive lock on the embedded data directory: PGlite lets two processes open one directory
 * and corrupt it, so the orchestrator refuses to. A lock left by a dead process is taken over.
 */
function lockDataDir(path: string): () => void {
  if (OPEN_HERE.has(path)) throw new Error(`the embedded database ${path} is already open in this process`);
  const release = lockFile(path);
  OPEN_HERE.add(path);
  return () => {
    OPEN_HERE.delete(path);
    release();
  };
}

function lockFile(path: string): () => void {
  const lockPath = resolve(dirname(path), `.${path.split('/').pop() ?? 'meta'}.lock`);
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockPath, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `the embedded database ${path} is in use by another s3-orchestrator process (pid ${pid}); ` +
            `stop it, or give this instance its own database.path, or use database.url for several instances`,
        );
      }
      unlinkSync(lockPath);
    }
  }
  throw new Error(`could not lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function wrap(q: { query: PGlite['query']; exec: PGlite['exec'] }): Queryable {
  return {
    async exec(text: string) {
      await q.exec(text);
    },
    async query<R>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> {
      const res = await q.query<R>(text, values as unknown[] | undefined);
      // Like pg's rowCount: rows returned (SELECT, or DML with RETURNING), else rows affected. PGlite reports
      // affectedRows 0 for a SELECT whose CTEs modify rows, so returned rows take precedence.
      return { rows: res.rows, rowCount: res.rows.length > 0 ? res.rows.length : (res.affectedRows ?? 0) };
    },
  };
}

/** Opens (creating if needed) an embedded PGlite database in `path`; `path` undefined = in memory. */
export async function openPglite(path: string | undefined): Promise<Db> {
  const unlock = path ? lockDataDir(resolve(path)) : () => {};
  let pg: PGlite;
  try {
    if (path) mkdirSync(resolve(path), { recursive: true });
    pg = await PGlite.create(path ? resolve(path) : undefined, { parsers: { [INT8]: (v: string) => Number(v) } });
  } catch (err) {
    unlock();
    throw err;
  }
  const base = wrap(pg);
  let closed = false;
  return {
    engine: 'pglite',
    query: base.query,
    exec: base.exec,
    tx: (fn) => pg.transaction((tx) => fn(wrap(tx as unknown as { query: PGlite['query']; exec: PGlite['exec'] }))),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pg.close();
      } finally {
        unlock();
      }
    },
  };
}
