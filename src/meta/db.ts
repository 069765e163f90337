/** Result of one SQL statement. */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Anything that runs parameterised SQL: the database itself or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** A parameterised statement, as returned by the functions in meta/queries. */
export interface Sql {
  text: string;
  values: readonly unknown[];
}

/**
 * The metadata database: PGlite in-process, or a PostgreSQL pool. Same SQL on both.
 * int8 columns come back as JS numbers on both engines (sizes stay far below 2^53).
 */
export interface Db extends Queryable {
  readonly engine: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
