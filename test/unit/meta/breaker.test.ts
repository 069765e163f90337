/**
 * The database breaker (meta/breaker.ts) over a scripted Db: when it opens and closes, that it fails calls
 * at once while open, and how it cuts short calls in flight when it opens (a statement, a transaction
 * waiting for its connection, one running its callback, one committing). The real outages are in
 * test/integration/meta/degraded-reads.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { withBreaker, type BreakerDb } from '../../../src/meta/breaker.js';
import { DbUnavailableError, isDbUnavailable, type Db, type Queryable, type QueryResult } from '../../../src/meta/db.js';

type Mode = 'up' | 'down' | 'hang';

/** A Db whose answers the test scripts: up (answers), down (connection refused), hang (never answers). */
class ScriptedDb implements Db {
  readonly engine = 'postgres' as const;
  #mode: Mode = 'up';
  /** Statements of a frozen server answer once it thaws (mode back to `up`), like after SIGCONT. */
  #thaw: { promise: Promise<void>; resolve: () => void } | undefined;
  get mode(): Mode {
    return this.#mode;
  }
  set mode(m: Mode) {
    this.#mode = m;
    if (m === 'up' && this.#thaw) {
      this.#thaw.resolve();
      this.#thaw = undefined;
    }
  }
  /** Transactions wait here for their "connection" while set. */
  connectGate: Promise<void> | undefined;
  /** COMMIT waits here while set. */
  commitGate: Promise<void> | undefined;
  readonly sent: string[] = [];
  commits = 0;
  rollbacks = 0;

  async query<R>(text: string): Promise<QueryResult<R>> {
    this.sent.push(text);
    if (this.mode === 'down') throw new DbUnavailableError('connect ECONNREFUSED');
    if (this.mode === 'hang') {
      if (!this.#thaw) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        this.#thaw = { promise, resolve };
      }
      await this.#thaw.promise;
    }
    return { rows: [{ ok: 1 } as R], rowCount: 1 };
  }
  async exec(text: string): Promise<void> {
    await this.query(text);
  }
  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    if (this.connectGate) await this.connectGate;
    try {
      const out = await fn(this);
      if (this.commitGate) await this.commitGate;
      this.commits++;
      return out;
    } catch (err) {
      this.rollbacks++;
      throw err;
    }
  }
  async close(): Promise<void> {}
}

const fast = { suspectAfterMs: 100, probeTimeoutMs: 100, probeIntervalMs: 50 };
const unavailable = (err: unknown) => isDbUnavailable(err);

function open(opts = fast): { inner: ScriptedDb; b: BreakerDb } {
  const inner = new ScriptedDb();
  return { inner, b: withBreaker(inner, opts) };
}

describe('database breaker', () => {
  // The breaker's timers do not keep a process alive (a server has its listeners for that); this does here.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 1_000);
  });
  after(() => clearInterval(keepAlive));

  test('a connection failure opens it; while open calls fail at once; a successful probe closes it', async () => {
    const changes: string[] = [];
    const inner = new ScriptedDb();
    const b = withBreaker(inner, { ...fast, onChange: (s, prev) => changes.push(`${prev}->${s}`) });
    assert.equal((await b.db.query('SELECT 1')).rowCount, 1);
    inner.mode = 'down';
    await assert.rejects(b.db.query('SELECT 2'), unavailable);
    await b.until('open', 2_000);
    const sent = inner.sent.length;
    const started = Date.now();
    await assert.rejects(b.db.query('SELECT 3'), unavailable);
    await assert.rejects(b.db.tx(async (q) => q.query('SELECT 4')), unavailable);
    await assert.rejects(b.db.exec('SELECT 5'), unavailable);
    assert.ok(Date.now() - started < 50, 'refused without waiting');
    assert.ok(!inner.sent.slice(sent).some((s) => /SELECT [345]/.test(s)), 'refused calls never reach the database');
    assert.equal(b.status().rejected, 3);
    assert.match(b.status().lastError ?? '', /ECONNREFUSED/);
    inner.mode = 'up';
    await b.until('closed', 2_000);
    assert.equal((await b.db.query('SELECT 6')).rowCount, 1);
    assert.deepEqual(changes, ['closed->open', 'open->closed']);
    await b.db.close();
  });

  test('a failure the probe does not confirm (one dropped connection) leaves it closed', async () => {
    const inner = new ScriptedDb();
    const b = withBreaker(
      {
        engine: 'postgres',
        // Only the probe's statement gets through; the statement that failed lost its connection.
        query: async <R>(t: string) => (t === 'SELECT 1' ? inner.query<R>(t) : Promise.reject(new DbUnavailableError('Connection terminated unexpectedly'))),
        exec: async () => {},
        tx: (fn) => inner.tx(fn),
        close: async () => {},
      } as Db,
      fast,
    );
    await assert.rejects(b.db.query('SELECT broken'), unavailable);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.status().state, 'closed');
    assert.ok(inner.sent.includes('SELECT 1'), 'it probed');
    await b.db.close();
  });

  test('a frozen server: a statement outstanding too long makes it probe; the unanswered probe opens it and the statement fails', async () => {
    const { inner, b } = open();
    inner.mode = 'hang';
    const started = Date.now();
    await assert.rejects(b.db.query('SELECT slow'), unavailable);
    const took = Date.now() - started;
    assert.ok(took >= 150 && took < 1_000, `cut short after suspect + probe time (${took} ms)`);
    assert.equal(b.status().state, 'open');
    inner.mode = 'up';
    await b.until('closed', 2_000);
    await b.db.close();
  });

  test('a transaction still waiting for its connection is abandoned and never runs its callback', async () => {
    const { inner, b } = open();
    let release!: () => void;
    inner.connectGate = new Promise((r) => (release = r));
    inner.mode = 'hang';
    let ran = false;
    const tx = b.db.tx(async () => {
      ran = true;
    });
    await assert.rejects(tx, (err: unknown) => err instanceof DbUnavailableError && !err.commitOutcomeUnknown);
    inner.connectGate = undefined;
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(ran, false);
    assert.equal(inner.commits, 0);
    inner.mode = 'up';
    await b.until('closed', 2_000);
    await b.db.close();
  });

  test('a transaction running its callback is rolled back, even when the callback swallows the error', async () => {
    const { inner, b } = open();
    inner.mode = 'hang';
    const tx = b.db.tx(async (q) => {
      await q.query('UPDATE a').catch(() => undefined); // swallowed: must still not commit
      return 'done';
    });
    await assert.rejects(tx, (err: unknown) => err instanceof DbUnavailableError && !err.commitOutcomeUnknown);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(inner.commits, 0);
    assert.equal(inner.rollbacks, 1);
    inner.mode = 'up';
    await b.until('closed', 2_000);
    await b.db.close();
  });

  test('a transaction whose COMMIT is in flight when it opens fails with commitOutcomeUnknown', async () => {
    const { inner, b } = open();
    inner.commitGate = new Promise(() => {});
    const tx = b.db.tx(async (q) => {
      await q.query('UPDATE a');
      inner.mode = 'hang'; // the server freezes during COMMIT
    });
    await assert.rejects(tx, (err: unknown) => err instanceof DbUnavailableError && err.commitOutcomeUnknown);
    inner.mode = 'up';
    await b.until('closed', 2_000);
    await b.db.close();
  });

  for (const [code, what] of [['42501', 'permission denied'], ['53300', 'too many connections']]) {
    test(`a server that answers a probe with an error (${what}) is there: closed`, async () => {
      const inner = new ScriptedDb();
      const b = withBreaker(
        {
          engine: 'postgres',
          query: async (t: string) => {
            if (t === 'SELECT 1') throw Object.assign(new Error(what), { code });
            return inner.query(t);
          },
          exec: async () => {},
          tx: (fn) => inner.tx(fn),
          close: async () => {},
        } as Db,
        fast,
      );
      inner.mode = 'down';
      await assert.rejects(b.db.query('SELECT x'), unavailable);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(b.status().state, 'closed');
      await b.db.close();
    });
  }
});
