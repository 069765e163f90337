/**
 * A drain under load: a backend holding a few hundred objects (single-part, multipart, empty, odd keys)
 * is drained while clients read every object and overwrite some continuously. No read fails, every byte
 * read is the object's content at some moment of the read, the drained backend ends empty (rows and
 * bytes), and the ledger is exact (checked when the fixture stops).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobState } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { engines } from '../../harness/db.js';
import { body, generationOf, getObject, putObject, settleCleanup, startJobsFixture, waitJob, type JobsFixture } from './fixture.js';
import { Load, ODD_KEYS, sizeOf } from './load.js';

const hasPostgres = (await engines()).includes('postgres');
const MIB = 1024 * 1024;

describe('drain under load', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let f: JobsFixture;
  const single = Array.from({ length: 200 }, (_, i) => `plain/${String(i).padStart(4, '0')}`);
  const multipart = ['mp/one', 'mp/two'];
  const keys = [...single, ...ODD_KEYS, ...multipart];

  before(async () => {
    // pack: everything lands on s3-1 (first in order) until it is drained.
    f = await startJobsFixture({ strategy: 'pack', cleanupDelayMs: 2_000 });
    const queue = [...keys];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
          const size = multipart.includes(k) ? 5 * MIB + 1234 : sizeOf(k, 1);
          await putObject(f.s3(), k, body(k, 1, size), 5 * MIB);
        }
      }),
    );
  });
  after(async () => f?.stop());

  test('every copy leaves s3-1 while clients read and overwrite; nothing read is wrong', async () => {
    const db = f.orchs[0]!.db;
    const { rows: start } = await db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    // pack puts every object on s3-1, unless a write failed over to the next backend under load.
    assert.ok(Number(start[0]!.n) > keys.length * 0.9, `${start[0]!.n} of ${keys.length} objects on s3-1`);

    const load = new Load(f.s3(), keys, { overwritable: single.slice(0, 100), multipart, readers: 3, writers: 2 });
    load.start();
    await new Promise((r) => setTimeout(r, 300));
    const { job } = await f.jobs().drainBackend({ backend: 's3-1' }, f.auth);
    const done = await waitJob(f.jobs(), job!.id, f.auth, 90_000);
    // Keep reading a little after the drain: old copies are deleted after the cleanup delay.
    await new Promise((r) => setTimeout(r, 2_500));
    const stats = await load.stop();

    assert.equal(done.state, JobState.DONE, done.message);
    assert.deepEqual(stats.failures, [], 'no read or write failed');
    // The load ran through the drain (how much depends on the machine, not on the orchestrator).
    assert.ok(stats.reads >= 30, `${stats.reads} reads`);
    assert.ok(stats.writes >= 5, `${stats.writes} overwrites`);
    assert.ok(done.progress!.itemsDone >= BigInt(Number(start[0]!.n) - stats.writes), `${done.progress!.itemsDone} moved`);

    // The drained backend holds no copy and, once the queue has run, no byte.
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    assert.equal(Number(rows[0]!.n), 0);
    assert.equal(await settleCleanup(f.orchs), 0);
    const listing = await f.orchs[0]!.backends.get('s3-1')!.list('', { limit: 1000 });
    assert.deepEqual(listing.entries, [], 'no bytes left on s3-1');
    const { rows: usage } = await db.query<{ used_bytes: number; object_count: number; reserved_bytes: number }>(
      `SELECT used_bytes, object_count, reserved_bytes FROM backends WHERE name = 's3-1'`,
    );
    assert.deepEqual(usage[0], { used_bytes: 0, object_count: 0, reserved_bytes: 0 });

    // Every object reads back as its last acknowledged generation.
    for (const k of keys) {
      const data = await getObject(f.s3(), k);
      const gen = stats.acked.get(k)!;
      assert.equal(generationOf(k, data), gen, k);
      assert.equal(data.compare(body(k, gen, multipart.includes(k) ? 5 * MIB + 1234 : sizeOf(k, gen))), 0, k);
    }
  });
});
