/**
 * The fault-injection Db wrapper (test/harness/faults-db.ts) against a real PostgreSQL schema: failing
 * the nth (matching) statement, rolling back the transaction it was in, and losing a COMMIT reply after
 * the server really committed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DbUnavailableError, type Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { faultyDb, type FaultyDb } from '../../harness/faults-db.js';

let tdb: TestDatabase;
let db: Db;
let f: FaultyDb;

before(async () => {
  tdb = await freshDatabase();
  ({ db } = await openDatabase(tdb.config));
  await db.exec(`CREATE TABLE t (v text PRIMARY KEY)`);
  f = faultyDb(db);
});
after(async () => {
  await db?.close();
  await tdb?.drop();
});

const values = async () => (await db.query<{ v: string }>(`SELECT v FROM t ORDER BY v`)).rows.map((r) => r.v);
const clear = () => db.query(`DELETE FROM t`);

describe('faultyDb.failNext', () => {
  test('the next statement fails with a connection error and is not run; the one after works', async () => {
    await clear();
    f.failNext();
    await assert.rejects(f.query(`INSERT INTO t VALUES ('a')`), (err: unknown) => err instanceof DbUnavailableError && !err.commitOutcomeUnknown);
    await f.query(`INSERT INTO t VALUES ('b')`);
    assert.deepEqual(await values(), ['b']);
  });

  test('the nth matching statement fails, others pass; inside a transaction it rolls the transaction back', async () => {
    await clear();
    f.failNext({ match: /INSERT/, nth: 2 });
    await f.query(`SELECT 1`);
    await f.query(`INSERT INTO t VALUES ('first')`);
    await assert.rejects(
      f.tx(async (q) => {
        await q.query(`SELECT 2`);
        await q.query(`UPDATE t SET v = 'changed' WHERE v = 'first'`);
        await q.query(`INSERT INTO t VALUES ('second')`);
      }),
      DbUnavailableError,
    );
    await f.query(`INSERT INTO t VALUES ('third')`);
    assert.deepEqual(await values(), ['first', 'third'], 'the UPDATE of the failed transaction was rolled back');
    assert.ok(f.statements.includes(`INSERT INTO t VALUES ('second')`));
  });

  test('times and a custom error; reset disarms', async () => {
    await clear();
    f.failNext({ match: /INSERT/, times: 2, error: () => new Error('boom') });
    await assert.rejects(f.query(`INSERT INTO t VALUES ('x1')`), /boom/);
    await assert.rejects(f.exec(`INSERT INTO t VALUES ('x2')`), /boom/);
    await f.query(`INSERT INTO t VALUES ('x3')`);
    f.failNext();
    f.reset();
    await f.query(`INSERT INTO t VALUES ('x4')`);
    assert.deepEqual(await values(), ['x3', 'x4']);
  });
});

describe('faultyDb.loseCommitReply', () => {
  test('the matching transaction commits on the server while the caller gets a commit-outcome-unknown error', async () => {
    await clear();
    const before = f.injected.commits;
    f.loseCommitReply({ match: /INSERT INTO t/ });
    // A transaction that does not match is untouched while the fault is armed.
    assert.equal(await f.tx(async (q) => (await q.query(`SELECT 1 AS one`)).rows.length), 1);
    await assert.rejects(
      f.tx(async (q) => {
        await q.query(`INSERT INTO t VALUES ('committed')`);
      }),
      (err: unknown) => err instanceof DbUnavailableError && err.commitOutcomeUnknown,
    );
    assert.deepEqual(await values(), ['committed'], 'the server did commit');
    assert.equal(f.injected.commits, before + 1);
    await f.tx(async (q) => {
      await q.query(`INSERT INTO t VALUES ('next')`);
    });
    assert.deepEqual(await values(), ['committed', 'next'], 'only one reply lost');
  });
});
