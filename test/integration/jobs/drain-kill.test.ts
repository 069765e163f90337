/**
 * A drain survives its orchestrator being killed: `s3-orchestrator serve` (a real process) drains a
 * backend, is killed with SIGKILL in the middle and started again; the drain resumes where it stopped
 * and completes, every object reads back intact, the drained backend ends empty and the ledger is exact.
 *
 * The killed process's task leases would run out by themselves after LEASE_MS (60 s); the test expires
 * them in the database instead of waiting, as ManualClock does for in-process tests.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { freePort, OrchestratorProcess } from '../../../bench/chaos-env.js';
import { JobService, JobState } from '../../../gen/s3o/admin/v1/jobs_pb.js';
import { createBackend } from '../../../src/backends/index.js';
import type { Backend } from '../../../src/backends/backend.js';
import type { Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { engines, freshDatabase, type TestDatabase } from '../../harness/db.js';
import { assertLedger, assertNoStrayBytes } from '../../harness/ledger.js';
import { clientFor, TEST_CREDS } from '../../harness/orchestrator.js';
import { s3BackendConfig, S3RVER_CREDENTIALS, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';
import { ADMIN_TOKEN, body, getObject, putObject, waitJob } from './fixture.js';
import { sizeOf } from './load.js';

const hasPostgres = (await engines()).includes('postgres');
const MIB = 1024 * 1024;

describe('drain across a SIGKILL', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let dir: string;
  let db: TestDatabase;
  let servers: S3rverInstance[];
  let proc: OrchestratorProcess;
  let sql: Db;
  let backends: Backend[];
  const keys = [...Array.from({ length: 80 }, (_, i) => `k/${String(i).padStart(3, '0')}`), 'k/ünï code+?#', 'mp/big'];
  const size = (k: string) => (k === 'mp/big' ? 5 * MIB + 77 : sizeOf(k, 1));

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-drain-kill-'));
    db = await freshDatabase('postgres');
    servers = await Promise.all([startS3rver(), startS3rver()]);
    const s3 = (name: string, s: S3rverInstance) => ({
      name,
      type: 's3',
      endpoint: s.endpoint,
      region: 'us-east-1',
      bucket: s.bucket,
      access_key_id: S3RVER_CREDENTIALS.accessKeyId,
      secret_access_key: S3RVER_CREDENTIALS.secretAccessKey,
      force_path_style: true,
    });
    const [s3Port, adminPort] = [await freePort(), await freePort()];
    const config = {
      server: { s3: { listen: `127.0.0.1:${s3Port}` }, admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN }, shutdown_timeout: '2s' },
      database: { url: db.config.url, schema: db.config.schema },
      placement: { strategy: 'pack' },
      backends: [s3('s3-1', servers[0]!), s3('s3-2', servers[1]!), { name: 'fs-1', type: 'fs', path: path.join(dir, 'fs-1') }],
      buckets: [{ name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }] }],
      // Moves are throttled so that the kill lands in the middle of the drain.
      workers: { cleanup_delay: '1s', cleanup_interval: '100ms', repair_bandwidth: '2MiB' },
    };
    const file = path.join(dir, 'config.yaml');
    await writeFile(file, JSON.stringify(config, null, 2));
    proc = new OrchestratorProcess('orchestrator', file, s3Port, adminPort, path.join(dir, 'orchestrator.log'));
    await proc.start();
    sql = (await openDatabase(db.config)).db;
    backends = [
      ...servers.map((s, i) => createBackend(s3BackendConfig(s, `s3-${i + 1}`))),
      createBackend({ type: 'fs', name: 'fs-1', path: path.join(dir, 'fs-1'), quotaBytes: 0 }),
    ];
  });
  after(async () => {
    try {
      if (sql) {
        await assertLedger(sql, 'drain-kill ledger');
        await assertNoStrayBytes(sql, backends, 'drain-kill');
      }
    } finally {
      await proc?.stop();
      await sql?.close();
      await Promise.all(backends?.map((b) => b.close()) ?? []);
      await Promise.all(servers?.map((s) => s.stop()) ?? []);
      await db?.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the drain resumes after the restart and completes; nothing is lost', async (t) => {
    const t0 = Date.now();
    const s3 = clientFor(proc.endpoint);
    const queue = [...keys];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let k = queue.shift(); k !== undefined; k = queue.shift()) await putObject(s3, k, body(k, 1, size(k)), 5 * MIB);
      }),
    );
    t.diagnostic(`objects written in ${Date.now() - t0} ms`);
    const jobs = createClient(JobService, createConnectTransport({ baseUrl: `http://127.0.0.1:${proc.adminPort}`, httpVersion: '1.1' }));
    const auth = { headers: new Headers({ authorization: `Bearer ${ADMIN_TOKEN}` }) };
    // Under load a write may have failed over to the next backend: the drain moves what s3-1 holds.
    const { rows: held } = await sql.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    const { job } = await jobs.drainBackend({ backend: 's3-1' }, auth);

    // Kill once some copies have moved and most have not.
    const deadline = Date.now() + 30_000;
    let seen = 0n;
    for (;;) {
      const j = (await jobs.getJob({ id: job!.id }, auth)).job!;
      seen = j.progress!.itemsDone;
      if (seen >= 5n || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await proc.kill();
    t.diagnostic(`killed at ${Date.now() - t0} ms after ${seen} moves`);
    const { rows: mid } = await sql.query<{ n: number }>(`SELECT count(*) AS n FROM object_copies WHERE backend = 's3-1'`);
    assert.ok(Number(mid[0]!.n) > 0, `the kill came before the end (${seen} moved)`);
    const { rows: state } = await sql.query<{ state: string }>(`SELECT state FROM jobs WHERE id = $1`, [Number(job!.id)]);
    assert.equal(state[0]!.state, 'running');
    // The dead instance's claims: expire them now rather than after LEASE_MS.
    await sql.query(`UPDATE tasks SET lease_until = now() - interval '1 second' WHERE state = 'active'`);

    await proc.start();
    t.diagnostic(`restarted at ${Date.now() - t0} ms`);
    const jobs2 = createClient(JobService, createConnectTransport({ baseUrl: `http://127.0.0.1:${proc.adminPort}`, httpVersion: '1.1' }));
    const done = await waitJob(jobs2, job!.id, auth, 90_000);
    t.diagnostic(`drain done at ${Date.now() - t0} ms`);
    assert.equal(done.state, JobState.DONE, done.message);
    assert.ok(Number(held[0]!.n) > keys.length / 2, `${held[0]!.n} copies on s3-1`);
    assert.ok(done.progress!.itemsDone >= BigInt(held[0]!.n), `${done.progress!.itemsDone} moved of ${held[0]!.n}`);
    const { rows: left } = await sql.query<{ n: number }>(`SELECT count(*) AS n FROM object_copies WHERE backend = 's3-1'`);
    assert.equal(Number(left[0]!.n), 0);

    const s3b = clientFor(proc.endpoint);
    for (const k of keys) assert.equal((await getObject(s3b, k)).compare(body(k, 1, size(k))), 0, k);
    // The deletions of the old copies run; then s3-1 holds nothing.
    const until = Date.now() + 30_000;
    for (;;) {
      const { rows } = await sql.query<{ n: number }>(`SELECT count(*) AS n FROM tasks WHERE state <> 'dead' AND kind IN ('delete-copy', 'copy-version')`);
      if (Number(rows[0]!.n) === 0 || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual((await backends[0]!.list('', { limit: 1000 })).entries, []);
    s3.destroy();
    s3b.destroy();
  });
});
