/**
 * The change bus (core/changes.ts over meta/notify.ts) on both engines: a notification sent in a
 * transaction reaches a subscriber on another Db of the same schema at commit and never on rollback; a
 * schema does not hear another schema's notifications; a LISTEN session killed by the server is replaced
 * and the subscribers are refreshed at once; without a session the periodic fallback still runs them.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ChangeBus } from '../../../src/core/changes.js';
import type { Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { engines, freshDatabase } from '../../harness/db.js';

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

for (const engine of await engines()) {
  describe(`change bus (${engine})`, () => {
    test('delivers at commit, not on rollback, to another Db of the same schema', async () => {
      const tdb = await freshDatabase(engine);
      const { db: a } = await openDatabase(tdb.config);
      const { db: b } = await openDatabase(tdb.config);
      const busA = new ChangeBus(a, { fallbackMs: 0 });
      const busB = new ChangeBus(b, { fallbackMs: 0 });
      try {
        const seen: (string | undefined)[] = [];
        const other: (string | undefined)[] = [];
        let listeningRuns = 0;
        busB.subscribe('backends', (d) => {
          if (d === undefined) listeningRuns++;
          else seen.push(d);
        });
        busB.subscribe('credentials', (d) => {
          if (d !== undefined) other.push(d);
        });
        busB.start();
        await waitFor(() => busB.listening && listeningRuns === 1);

        let sentAt = 0;
        await a.tx(async (q) => {
          await busA.notify(q, 'backends', 'b1');
          await sleep(150);
          assert.deepEqual(seen, [], 'not delivered before commit');
          sentAt = Date.now();
        });
        await waitFor(() => seen.length === 1);
        assert.ok(Date.now() - sentAt < 1000, 'delivered within a second');
        assert.deepEqual(seen, ['b1']);

        await assert.rejects(
          a.tx(async (q) => {
            await busA.notify(q, 'backends', 'rolled-back');
            throw new Error('abort');
          }),
          /abort/,
        );
        await busA.notify(a, 'backends', 'b2');
        await waitFor(() => seen.length === 2);
        assert.deepEqual(seen, ['b1', 'b2'], 'the rolled-back notification never arrives');
        assert.deepEqual(other, [], 'another topic is not run');

        // Another schema on the same server shares no channel.
        const tdb2 = await freshDatabase(engine);
        const { db: c } = await openDatabase(tdb2.config);
        try {
          await new ChangeBus(c).notify(c, 'backends', 'elsewhere');
          await sleep(300);
          assert.deepEqual(seen, ['b1', 'b2']);
        } finally {
          await c.close();
          await tdb2.drop();
        }
      } finally {
        await busA.stop();
        await busB.stop();
        await a.close();
        await b.close();
        await tdb.drop();
      }
    });

    test('a killed LISTEN session is replaced and subscribers refresh at once', async () => {
      const tdb = await freshDatabase(engine);
      const { db } = await openDatabase(tdb.config);
      const bus = new ChangeBus(db, { fallbackMs: 0 });
      try {
        let full = 0;
        const seen: string[] = [];
        bus.subscribe('buckets', (d) => {
          if (d === undefined) full++;
          else seen.push(d);
        });
        bus.start();
        await waitFor(() => bus.listening && full === 1);
        const killed = await db.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE query LIKE 'LISTEN "s3o_%' AND pid <> pg_backend_pid() AND query LIKE '%' || md5(current_schema()) || '%'`,
        );
        assert.equal(killed.rows[0]!.n, 1, 'the bus session was found and terminated');
        await waitFor(() => full === 2, 5000);
        assert.ok(bus.listening);
        await bus.notify(db, 'buckets', 'after-reconnect');
        await waitFor(() => seen.includes('after-reconnect'));
      } finally {
        await bus.stop();
        await db.close();
        await tdb.drop();
      }
    });

    test('without a session the fallback still refreshes; overlapping triggers coalesce', async () => {
      const tdb = await freshDatabase(engine);
      const { db: real } = await openDatabase(tdb.config);
      // A wrapper without sessionClient, as a fault-injecting Db is.
      const db: Db = { engine: real.engine, query: (t, v) => real.query(t, v), exec: (t) => real.exec(t), tx: (fn) => real.tx(fn), close: () => real.close() };
      const bus = new ChangeBus(db, { fallbackMs: 100 });
      try {
        let runs = 0;
        let concurrent = 0;
        let maxConcurrent = 0;
        bus.subscribe('x', async () => {
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          runs++;
          await sleep(30);
          concurrent--;
        });
        bus.start();
        assert.equal(bus.listening, false);
        await waitFor(() => runs >= 3, 2000);
        for (let i = 0; i < 10; i++) bus.refresh('x', String(i));
        await sleep(200);
        assert.equal(maxConcurrent, 1, 'runs of one subscriber never overlap');
      } finally {
        await bus.stop();
        await real.close();
        await tdb.drop();
      }
    });
  });
}
