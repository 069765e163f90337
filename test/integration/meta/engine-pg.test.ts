/**
 * The pool engine's hardening on real servers: statement and lock timeouts (defaults and configured),
 * the pool size, a connection lost inside a transaction (no crash, not reused), idle-connection errors
 * logged, and connection-level failures surfacing as DbUnavailableError while a server the test owns is
 * stopped, with automatic recovery when it is back. The machine's PostgreSQL is never stopped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { DbUnavailableError, type Db } from '../../../src/meta/db.js';
import { isConnectionError } from '../../../src/meta/engine-pg.js';
import { openDatabase, type OpenConfig } from '../../../src/meta/open.js';
import { freshDatabase, startTestEmbedded, type TestDatabase, type TestEmbedded } from '../../harness/db.js';
import { recordingLogger } from '../../harness/logger.js';

const show = async (db: Db, name: string) => (await db.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name];

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

describe('isConnectionError', () => {
  test('connection-level failures are, statement errors are not', () => {
    const yes = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), {}),
    ];
    const no = [
      Object.assign(new Error('duplicate key'), { code: '23505' }),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
      Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' }),
      new Error('syntax error'),
      undefined,
    ];
    for (const e of yes) assert.equal(isConnectionError(e), true, String(e));
    for (const e of no) assert.equal(isConnectionError(e), false, String(e));
  });
});

describe('statement and lock timeouts', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await freshDatabase();
  });
  after(() => tdb?.drop());

  test('defaults are 30 s and 10 s', async () => {
    const { db } = await openDatabase(tdb.config);
    try {
      assert.equal(await show(db, 'statement_timeout'), '30s');
      assert.equal(await show(db, 'lock_timeout'), '10s');
    } finally {
      await db.close();
    }
  });

  test('a configured statement_timeout cancels a slow statement (an error of the statement, not an outage)', async () => {
    const { db } = await openDatabase({ ...tdb.config, statementTimeoutMs: 100 });
    try {
      await assert.rejects(db.query('SELECT pg_sleep(5)'), (err: { code?: string }) => err.code === '57014' && !(err instanceof DbUnavailableError));
      assert.equal((await db.query('SELECT 1 AS one')).rows.length, 1);
    } finally {
      await db.close();
    }
  });

  test('a configured lock_timeout ends a wait for a row lock', async () => {
    const { db } = await openDatabase({ ...tdb.config, lockTimeoutMs: 100 });
    try {
      await db.exec(`CREATE TABLE locked (id int PRIMARY KEY); INSERT INTO locked VALUES (1)`);
      await assert.rejects(
        db.tx(async (q) => {
          await q.query(`SELECT id FROM locked WHERE id = 1 FOR UPDATE`);
          await db.query(`UPDATE locked SET id = 1 WHERE id = 1`); // another connection waits for our lock
        }),
        (err: { code?: string }) => err.code === '55P03',
      );
    } finally {
      await db.close();
    }
  });
});

describe('pool', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await freshDatabase();
  });
  after(() => tdb?.drop());

  const backendsServing = async (cfg: OpenConfig, n: number): Promise<number> => {
    const { db } = await openDatabase(cfg);
    try {
      const pids = await Promise.all(Array.from({ length: n }, () => db.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid, pg_sleep(0.1)`)));
      return new Set(pids.map((r) => r.rows[0]!.pid)).size;
    } finally {
      await db.close();
    }
  };

  test('database.pool_size bounds the connections in use', async () => {
    assert.ok((await backendsServing({ ...tdb.config, poolSize: 2 }, 6)) <= 2);
    assert.ok((await backendsServing({ ...tdb.config, poolSize: 20 }, 6)) > 2, 'a bigger pool does open more');
  });

  test('a connection lost inside a transaction fails that transaction, does not crash, and is not reused', async () => {
    const { db } = await openDatabase({ ...tdb.config, poolSize: 1 });
    const killer = new pg.Client({ connectionString: tdb.config.url });
    await killer.connect();
    try {
      let killed = 0;
      await assert.rejects(
        db.tx(async (q) => {
          killed = (await q.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid;
          await killer.query(`SELECT pg_terminate_backend($1)`, [killed]);
          // The connection is now dead between two statements (its 'error' event must not crash us).
          await new Promise((r) => setTimeout(r, 100));
          await q.query(`SELECT 1`);
        }),
        DbUnavailableError,
      );
      const { rows } = await db.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
      assert.notEqual(rows[0]!.pid, killed, 'a new connection');
    } finally {
      await killer.end();
      await db.close();
    }
  });

  test('an idle connection that fails is logged, and the next statement reconnects', async () => {
    const lines: string[] = [];
    const { db } = await openDatabase(tdb.config, { log: recordingLogger(lines) });
    const killer = new pg.Client({ connectionString: tdb.config.url });
    await killer.connect();
    try {
      const { rows } = await db.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
      await killer.query(`SELECT pg_terminate_backend($1)`, [rows[0]!.pid]);
      await until(() => lines.includes('idle database connection failed'), 'the pool error is logged');
      assert.equal((await db.query('SELECT 1 AS one')).rows.length, 1);
    } finally {
      await killer.end();
      await db.close();
    }
  });
});

describe('a stopped server', () => {
  let server: TestEmbedded;
  before(async () => {
    server = await startTestEmbedded();
  });
  after(() => server?.destroy());

  test('queries and transactions fail with DbUnavailableError while it is down, and work again when it is back', async () => {
    const lines: string[] = [];
    const { db } = await openDatabase({ url: server.url, path: '', schema: 'outage', connectTimeoutMs: 2_000 }, { log: recordingLogger(lines) });
    try {
      await db.exec(`CREATE TABLE IF NOT EXISTS t (v int)`);
      await server.stop();
      await assert.rejects(db.query(`SELECT 1`), (err: unknown) => err instanceof DbUnavailableError && !err.commitOutcomeUnknown);
      await assert.rejects(db.tx((q) => q.query(`INSERT INTO t VALUES (1)`)), DbUnavailableError);
      assert.equal(lines.filter((l) => l === 'metadata database unavailable').length, 1, 'logged once per outage');
      await server.restart();
      await db.tx((q) => q.query(`INSERT INTO t VALUES (2)`));
      assert.deepEqual((await db.query<{ v: number }>(`SELECT v FROM t`)).rows, [{ v: 2 }]);
      assert.ok(lines.includes('metadata database reachable again'));
    } finally {
      await db.close();
    }
  });
});
