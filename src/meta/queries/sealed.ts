import type { Sql } from '../db.js';

/**
 * Every column that holds a secret sealed under the master key (core/secrets.ts). `rotate-master-key`
 * re-seals all of them in one transaction, and the start-up seals any plain value left by an older
 * version. A new table with a secret adds its column here (the key column identifies the row).
 */
export const SEALED_COLUMNS: readonly { table: string; key: string; column: string }[] = [
  { table: 'credentials', key: 'access_key_id', column: 'secret_access_key' },
  { table: 'backends', key: 'name', column: 'secret' },
];

type Column = (typeof SEALED_COLUMNS)[number];

/** Whether the column exists (a migration that adds it may not have run on a database being inspected). */
export function columnExists(c: Column): Sql {
  return {
    text: `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`,
    values: [c.table, c.column],
  };
}

/** Non-empty values of a sealed column, locked for the caller's transaction. */
export function selectSealed(c: Column): Sql {
  return {
    text: `SELECT ${c.key}::text AS id, ${c.column} AS value FROM ${c.table}
           WHERE ${c.column} IS NOT NULL AND ${c.column} <> '' ORDER BY ${c.key} FOR UPDATE`,
    values: [],
  };
}

/** Replaces one row's sealed value, only if it still holds `previous`. */
export function updateSealed(c: Column, id: string, previous: string, next: string): Sql {
  return {
    text: `UPDATE ${c.table} SET ${c.column} = $3 WHERE ${c.key}::text = $1 AND ${c.column} = $2`,
    values: [id, previous, next],
  };
}
