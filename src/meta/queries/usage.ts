import type { Sql } from '../db.js';

/** Whose usage a row counts. */
export type UsageScope = 'backend' | 'bucket';

/** One counter delta (or total) of one scope, name and month. */
export interface UsageDelta {
  scope: UsageScope;
  name: string;
  /** The month's first day, `YYYY-MM-01` (UTC). */
  month: string;
  requestsA: number;
  requestsB: number;
  bytesIn: number;
  bytesOut: number;
}

/** A usage_monthly row as selected (month as `YYYY-MM`). */
export interface UsageRow {
  scope: UsageScope;
  name: string;
  month: string;
  requests_a: number;
  requests_b: number;
  bytes_in: number;
  bytes_out: number;
}

/**
 * Adds one instance's batch of deltas in ONE statement, at most once: the batch carries the instance id and
 * a sequence number that grows with every batch; the mark in usage_flushes only moves forward, and the
 * counters change only when it moved. A batch retried after a lost reply (same `seq`) therefore changes
 * nothing the second time. `deltas` must hold each (scope, name, month) once; they are applied in key order
 * so concurrent flushes of several instances lock rows in the same order (no deadlock).
 */
export function flushUsage(instance: string, seq: number, deltas: readonly UsageDelta[]): Sql {
  const sorted = [...deltas].sort((a, b) => cmp(a.scope, b.scope) || cmp(a.name, b.name) || cmp(a.month, b.month));
  return {
    text: `WITH mark AS (
             INSERT INTO usage_flushes AS f (instance, seq) VALUES ($1, $2)
             ON CONFLICT (instance) DO UPDATE SET seq = EXCLUDED.seq, flushed_at = now() WHERE f.seq < EXCLUDED.seq
             RETURNING 1
           )
           INSERT INTO usage_monthly AS u (scope, name, month, requests_a, requests_b, bytes_in, bytes_out)
           SELECT d.scope, d.name, d.month, d.a, d.b, d.i, d.o
             FROM unnest($3::text[], $4::text[], $5::date[], $6::int8[], $7::int8[], $8::int8[], $9::int8[])
                  WITH ORDINALITY AS d(scope, name, month, a, b, i, o, n)
            WHERE EXISTS (SELECT 1 FROM mark)
            ORDER BY d.n
           ON CONFLICT (scope, name, month) DO UPDATE SET
             requests_a = u.requests_a + EXCLUDED.requests_a,
             requests_b = u.requests_b + EXCLUDED.requests_b,
             bytes_in   = u.bytes_in + EXCLUDED.bytes_in,
             bytes_out  = u.bytes_out + EXCLUDED.bytes_out,
             updated_at = now()`,
    values: [
      instance,
      seq,
      sorted.map((d) => d.scope),
      sorted.map((d) => d.name),
      sorted.map((d) => d.month),
      sorted.map((d) => d.requestsA),
      sorted.map((d) => d.requestsB),
      sorted.map((d) => d.bytesIn),
      sorted.map((d) => d.bytesOut),
    ],
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Forgets the flush marks of instances that have not flushed for `days` days (processes long gone). */
export function pruneFlushMarks(days: number): Sql {
  return { text: `DELETE FROM usage_flushes WHERE flushed_at < now() - make_interval(days => $1)`, values: [days] };
}

/**
 * Usage rows of months `from`..`to` (first days, inclusive), of one scope and optionally one name, ordered
 * by name and month.
 */
export function selectUsage(scope: UsageScope, from: string, to: string, name?: string): Sql {
  return {
    text: `SELECT scope, name, to_char(month, 'YYYY-MM') AS month, requests_a, requests_b, bytes_in, bytes_out
             FROM usage_monthly
            WHERE scope = $1 AND month BETWEEN $2::date AND $3::date ${name === undefined ? '' : 'AND name = $4'}
            ORDER BY name, month`,
    values: name === undefined ? [scope, from, to] : [scope, from, to, name],
  };
}

/** Whether any usage row of that scope and name exists (a removed backend or deleted bucket keeps its history). */
export function usageExists(scope: UsageScope, name: string): Sql {
  return { text: `SELECT EXISTS (SELECT 1 FROM usage_monthly WHERE scope = $1 AND name = $2) AS found`, values: [scope, name] };
}
