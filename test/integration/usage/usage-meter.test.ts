/**
 * Usage counters on a real PostgreSQL (core/usage.ts, core/usage-report.ts): one upsert per flush, two
 * instances adding up, months cut at the UTC boundary, a flush whose reply was lost counted once, a
 * failed flush kept and retried, the report's validation, and byte counting through `read()` whatever
 * the consumer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { ControlError } from '../../../src/core/control-errors.js';
import { UsageReports } from '../../../src/core/usage-report.js';
import { countReads, monthStart, UsageMeter } from '../../../src/core/usage.js';
import { DbUnavailableError, type Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { faultyDb } from '../../harness/faults-db.js';

/** A Db whose next `times` flush statements are executed by the server, then reported as a lost reply. */
function losingReplies(inner: Db): Db & { lose(times: number): void } {
  let left = 0;
  return {
    engine: inner.engine,
    tx: (fn) => inner.tx(fn),
    exec: (t) => inner.exec(t),
    close: () => inner.close(),
    lose: (n) => {
      left = n;
    },
    async query(text, values) {
      const r = await inner.query(text, values);
      if (left > 0 && /INSERT INTO usage_monthly/.test(text)) {
        left--;
        throw new DbUnavailableError('connection terminated while the reply was on its way');
      }
      return r as never;
    },
  };
}

async function rows(db: Db) {
  const { rows } = await db.query<{ scope: string; name: string; month: string; requests_a: number; requests_b: number; bytes_in: number; bytes_out: number }>(
    `SELECT scope, name, to_char(month, 'YYYY-MM') AS month, requests_a, requests_b, bytes_in, bytes_out FROM usage_monthly ORDER BY scope, name, month`,
  );
  return rows.map((r) => ({ ...r }));
}

describe('usage counters', () => {
  let tdb: TestDatabase;
  let db: Db;
  before(async () => {
    tdb = await freshDatabase('postgres');
    db = (await openDatabase(tdb.config)).db;
  });
  after(async () => {
    await db.close();
    await tdb.drop();
  });

  test('two instances flushing concurrently add up, one statement per flush, months cut at UTC', async () => {
    await db.query('TRUNCATE usage_monthly, usage_flushes');
    let now = Date.parse('2026-11-30T23:59:59.000Z');
    const f = faultyDb(db);
    const a = new UsageMeter(f, { instance: 'a', now: () => now });
    const b = new UsageMeter(db, { instance: 'b', now: () => now });
    for (let i = 0; i < 1000; i++) {
      a.bucketRequest('data', i % 4 === 0 ? 'A' : 'B', 10, 100);
      b.bucketRequest('data', 'A', 1, 2);
      a.backendCall('s3-1', 'A');
      a.backendBytes('s3-1', 'in', 7);
    }
    b.backendBytes('s3-1', 'out', 5);
    const before = f.statements.length;
    await Promise.all([a.flush(), b.flush()]);
    assert.equal(f.statements.length - before, 1, 'one statement for the whole batch of a');
    now = Date.parse('2026-12-01T00:00:00.000Z');
    a.bucketRequest('data', 'B', 0, 3);
    b.backendCall('s3-1', 'B');
    await Promise.all([a.flush(), b.flush(), a.flush()]);
    assert.deepEqual(await rows(db), [
      { scope: 'backend', name: 's3-1', month: '2026-11', requests_a: 1000, requests_b: 0, bytes_in: 7000, bytes_out: 5 },
      { scope: 'backend', name: 's3-1', month: '2026-12', requests_a: 0, requests_b: 1, bytes_in: 0, bytes_out: 0 },
      { scope: 'bucket', name: 'data', month: '2026-11', requests_a: 1250, requests_b: 750, bytes_in: 11_000, bytes_out: 102_000 },
      { scope: 'bucket', name: 'data', month: '2026-12', requests_a: 0, requests_b: 1, bytes_in: 0, bytes_out: 3 },
    ]);
    // Nothing counted: no statement at all.
    const n = f.statements.length;
    await a.flush();
    assert.equal(f.statements.length, n);
  });

  test('a flush whose reply was lost is retried and counted once; counts made meanwhile are kept', async () => {
    await db.query('TRUNCATE usage_monthly, usage_flushes');
    const lossy = losingReplies(db);
    const m = new UsageMeter(lossy, { instance: 'lossy' });
    m.bucketRequest('data', 'A', 100, 0);
    lossy.lose(1);
    await assert.rejects(m.flush(), DbUnavailableError);
    m.bucketRequest('data', 'B', 0, 50);
    await m.flush();
    await m.flush();
    const [r] = await rows(db);
    assert.deepEqual(
      { a: r!.requests_a, b: r!.requests_b, in: r!.bytes_in, out: r!.bytes_out },
      { a: 1, b: 1, in: 100, out: 50 },
    );
  });

  test('a flush that never reached the server is retried, and stop() flushes what is left', async () => {
    await db.query('TRUNCATE usage_monthly, usage_flushes');
    const f = faultyDb(db);
    const m = new UsageMeter(f, { instance: 'faulty' });
    m.backendCall('fs-1', 'B');
    f.failNext({ match: /usage_monthly/ });
    await assert.rejects(m.flush());
    m.backendCall('fs-1', 'A');
    await m.stop();
    const [r] = await rows(db);
    assert.equal(r!.requests_a, 1);
    assert.equal(r!.requests_b, 1);
  });

  test('the report: every month of the range, stored figures, bad months and unknown names', async () => {
    await db.query('TRUNCATE usage_monthly, usage_flushes');
    const now = () => Date.parse('2026-11-15T12:00:00Z');
    const m = new UsageMeter(db, { instance: 'r', now });
    m.bucketRequest('history-only', 'A', 5, 6);
    const reports = new UsageReports(db, m, now);
    // The report flushes the meter it was given: no wait for the timer.
    const r = await reports.get({ bucket: 'history-only', fromMonth: '2026-09' });
    assert.equal(r.fromMonth, '2026-09');
    assert.equal(r.toMonth, '2026-11');
    assert.deepEqual(r.backends, []);
    assert.deepEqual(r.buckets, [
      {
        name: 'history-only',
        storedBytes: 0,
        storedObjects: 0,
        months: [
          { month: '2026-09', requestsA: 0, requestsB: 0, bytesIn: 0, bytesOut: 0 },
          { month: '2026-10', requestsA: 0, requestsB: 0, bytesIn: 0, bytesOut: 0 },
          { month: '2026-11', requestsA: 1, requestsB: 0, bytesIn: 5, bytesOut: 6 },
        ],
      },
    ]);
    const bad = async (q: Parameters<UsageReports['get']>[0], code: string, field?: string) => {
      await assert.rejects(reports.get(q), (err: unknown) => {
        assert.ok(err instanceof ControlError, String(err));
        assert.equal(err.code, code);
        if (field) assert.equal(err.field, field);
        return true;
      });
    };
    await bad({ fromMonth: '2026-13' }, 'InvalidArgument', 'from_month');
    await bad({ toMonth: 'November' }, 'InvalidArgument', 'to_month');
    await bad({ fromMonth: '2026-11', toMonth: '2026-10' }, 'InvalidArgument', 'from_month');
    await bad({ fromMonth: '2000-01', toMonth: '2026-10' }, 'InvalidArgument', 'from_month');
    await bad({ backend: 'nope' }, 'NotFound');
    await bad({ bucket: 'nope' }, 'NotFound');
  });

  test('monthStart is the UTC month', () => {
    assert.equal(monthStart(Date.parse('2026-12-31T23:59:59.999Z')), '2026-12-01');
    assert.equal(monthStart(Date.parse('2027-01-01T00:00:00.000Z')), '2027-01-01');
  });

  test('countReads counts what pipe, data listeners and async iteration consume, and stops on demand', async () => {
    const chunks = () => Readable.from([Buffer.alloc(1000), Buffer.alloc(24), Buffer.alloc(3000)], { objectMode: false });
    let n = 0;
    await pipeline(
      (() => {
        const s = chunks();
        countReads(s, (k) => (n += k));
        return s;
      })(),
      new Writable({ write: (_c, _e, cb) => cb() }),
    );
    assert.equal(n, 4024);
    n = 0;
    const s2 = chunks();
    countReads(s2, (k) => (n += k));
    for await (const _ of s2) void _;
    assert.equal(n, 4024);
    n = 0;
    const s3 = new PassThrough();
    const stop = countReads(s3, (k) => (n += k));
    s3.on('data', () => {});
    s3.write(Buffer.alloc(10));
    await new Promise((r) => setImmediate(r));
    stop();
    s3.end(Buffer.alloc(5));
    await once(s3, 'end');
    assert.equal(n, 10);
    assert.equal(Object.prototype.hasOwnProperty.call(s3, 'emit'), false, 'emit restored');
  });
});
