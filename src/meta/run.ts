import type { Queryable, QueryResult, Sql } from './db.js';

/** Runs one parameterised statement built by a function of meta/queries. */
export function run<R = Record<string, unknown>>(q: Queryable, sql: Sql): Promise<QueryResult<R>> {
  return q.query<R>(sql.text, sql.values);
}
