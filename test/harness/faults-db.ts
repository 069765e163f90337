/**
 * A fault-injection seam over a real Db, for tests only:
 *
 *   const f = faultyDb(db);
 *   f.failNext({ match: /UPDATE object_versions/, nth: 2 });   // the 2nd matching statement from now fails
 *   f.loseCommitReply({ match: /publish/ });                     // next such transaction commits, caller sees an error
 *   f.reset();
 *
 * A failed statement is never sent to the server; inside a transaction the error propagates like a real
 * one, so the transaction rolls back. A lost COMMIT reply is the nastiest outcome of a connection drop:
 * the server has committed, the caller gets a connection error (DbUnavailableError with
 * commitOutcomeUnknown), exactly what the real engine throws when the connection dies during COMMIT.
 * Counting starts when a fault is armed; `statements` records every statement seen (up to 10,000).
 */
import { DbUnavailableError, type Db, type Queryable } from '../../src/meta/db.js';

export interface FailNextOptions {
  /** Only statements whose SQL matches count (default: every statement). */
  match?: RegExp;
  /** Fail the nth matching statement from now (default 1: the next one). */
  nth?: number;
  /** How many matching statements fail from the nth on (default 1). */
  times?: number;
  /** The error thrown (default a DbUnavailableError, as for a dropped connection). */
  error?: () => Error;
}

export interface LoseCommitOptions {
  /** Only transactions that ran a statement matching this (default: every transaction). */
  match?: RegExp;
  /** How many transactions lose their COMMIT reply (default 1). */
  times?: number;
}

export interface FaultyDb extends Db {
  failNext(opts?: FailNextOptions): void;
  loseCommitReply(opts?: LoseCommitOptions): void;
  /** Disarms every fault (counts and the statement log stay). */
  reset(): void;
  /** Every statement seen, in order (trimmed SQL text). */
  readonly statements: readonly string[];
  /** Statements failed and COMMIT replies lost so far. */
  readonly injected: { statements: number; commits: number };
}

interface StatementFault {
  match?: RegExp;
  skip: number;
  left: number;
  error: () => Error;
}

export function faultyDb(inner: Db): FaultyDb {
  let stmt: StatementFault | undefined;
  let commit: { match?: RegExp; left: number } | undefined;
  const statements: string[] = [];
  const injected = { statements: 0, commits: 0 };

  /** Records the statement; throws if a fault is due. Returns whether it matched the commit fault's pattern. */
  const check = (text: string): boolean => {
    const sql = text.trim();
    if (statements.length < 10_000) statements.push(sql);
    const f = stmt;
    if (f && (!f.match || f.match.test(sql))) {
      if (f.skip > 0) f.skip--;
      else {
        if (--f.left <= 0) stmt = undefined;
        injected.statements++;
        throw f.error();
      }
    }
    return commit !== undefined && (!commit.match || commit.match.test(sql));
  };
  const wrap = (q: Queryable, seen?: { match: boolean }): Queryable => ({
    query: (text, values) => {
      try {
        if (check(text) && seen) seen.match = true;
      } catch (err) {
        return Promise.reject(err);
      }
      return q.query(text, values);
    },
    exec: (text) => {
      try {
        if (check(text) && seen) seen.match = true;
      } catch (err) {
        return Promise.reject(err);
      }
      return q.exec(text);
    },
  });
  const top = wrap(inner);

  return {
    engine: inner.engine,
    query: top.query,
    exec: top.exec,
    close: () => inner.close(),
    async tx(fn) {
      const seen = { match: false };
      const out = await inner.tx((q) => fn(wrap(q, seen)));
      const c = commit;
      if (c && seen.match) {
        if (--c.left <= 0) commit = undefined;
        injected.commits++;
        throw new DbUnavailableError('the metadata database is unavailable: Connection terminated unexpectedly (fault injected after COMMIT)', {
          commitOutcomeUnknown: true,
        });
      }
      return out;
    },
    failNext(opts = {}) {
      stmt = {
        ...(opts.match ? { match: opts.match } : {}),
        skip: Math.max(0, (opts.nth ?? 1) - 1),
        left: opts.times ?? 1,
        error: opts.error ?? (() => new DbUnavailableError('the metadata database is unavailable: Connection terminated unexpectedly (fault injected)')),
      };
    },
    loseCommitReply(opts = {}) {
      commit = { ...(opts.match ? { match: opts.match } : {}), left: opts.times ?? 1 };
    },
    reset() {
      stmt = undefined;
      commit = undefined;
    },
    get statements() {
      return statements;
    },
    get injected() {
      return injected;
    },
  };
}
