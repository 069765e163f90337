import pg from 'pg';
import type { Db, Queryable, QueryResult } from './db.js';

const INT8 = 20;

function parserFor(oid: number, format?: string): (v: string) => unknown {
  if (oid === INT8) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format as 'text');
}

/**
 * A PostgreSQL pool. `schema` becomes the search_path of every connection so one database can hold
 * several independent orchestrator schemas (tests use one each).
 */
export async function openPostgres(url: string, schema = 'public', max = 20): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    options: `-c search_path=${schema}`,
    types: { getTypeParser: parserFor as typeof pg.types.getTypeParser },
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it would kill the process.
  pool.on('error', () => {});
  const client = await pool.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`).catch((err: { code?: string }) => {
      // IF NOT EXISTS is not atomic: two instances starting together can both try; the loser sees 23505.
      if (err.code !== '23505' && err.code !== '42P06') throw err;
    });
  } finally {
    client.release();
  }
  const run = async <R>(c: pg.Pool | pg.PoolClient, text: string, values?: readonly unknown[]): Promise<QueryResult<R>> => {
    const res = await c.query(text, values as unknown[] | undefined);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  };
  let closed = false;
  return {
    engine: 'postgres',
    query: (text, values) => run(pool, text, values),
    exec: async (text) => {
      await pool.query(text);
    },
    async tx(fn) {
      const c = await pool.connect();
      const q: Queryable = {
        query: (text, values) => run(c, text, values),
        exec: async (text) => {
          await c.query(text);
        },
      };
      try {
        await c.query('BEGIN');
        const out = await fn(q);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        c.release();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** Quotes an SQL identifier (schema names come from config, validated there too). */
export function quoteIdent(id: string): string {
  return '"' + id.replace(/"/g, '""') + '"';
}
