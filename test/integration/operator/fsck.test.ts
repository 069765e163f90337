/**
 * `fsck` against a live orchestrator's database and backends (s3rver + fs): clean after a workload; each
 * finding class planted by hand is found with its example; --repair queues and corrects, and a second
 * pass is clean with the quota ledger exact.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { FsBackend } from '../../../src/backends/fs.js';
import { newVersionId, physicalKey } from '../../../src/backends/layout.js';
import { deleteCopyHandler } from '../../../src/core/copies.js';
import { hasFindings, runFsck, type FsckReport } from '../../../src/core/fsck.js';
import { runTaskBatch } from '../../../src/core/tasks.js';
import { createLogger } from '../../../src/log.js';
import { runFsckCommand } from '../../../src/cli/offline-cmd.js';
import { freshDatabase } from '../../harness/db.js';
import { drainCleanup, startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';

const log = createLogger({ test: true }, 'error');

/** Runs delete-copy tasks (the only kind these tests let run) until none is due. */
async function runDeletes(t: TestOrchestrator): Promise<void> {
  const deps = { db: t.orch.db, log, owner: 'fsck-test' };
  while ((await runTaskBatch(deps, [deleteCopyHandler(t.orch.db, t.orch.backends, log)], 64)) > 0) {
    /* until the queue is drained */
  }
}

async function put(t: TestOrchestrator, key: string, body: string | Buffer): Promise<void> {
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
}

function summary(r: FsckReport) {
  return {
    orphans: r.orphans.count,
    missing: r.missing.count,
    wrongSize: r.wrongSize.count,
    underReplicated: r.underReplicated.count,
    backendCounters: r.backendCounters.count,
    bucketCounters: r.bucketCounters.count,
  };
}

const CLEAN = { orphans: 0, missing: 0, wrongSize: 0, underReplicated: 0, backendCounters: 0, bucketCounters: 0 };

describe('fsck', () => {
  let t: TestOrchestrator;
  let fs1: FsBackend;
  const fsck = (opts: { repair?: boolean; graceMs?: number; replicas?: number } = {}) =>
    runFsck(t.orch.db, t.orch.backends.all(), { defaultReplicas: opts.replicas ?? 1, graceMs: opts.graceMs ?? 0, ...(opts.repair ? { repair: true } : {}) });

  /** The fs backend's copy of a key (the tests plant their damage on it). */
  async function fsCopy(key: string): Promise<{ versionId: string; physicalKey: string; file: string }> {
    const { rows } = await t.orch.db.query<{ version_id: string; physical_key: string }>(
      `SELECT c.version_id, c.physical_key FROM object_copies c JOIN object_versions v USING (version_id)
       WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live' AND c.backend = 'fs-1'`,
      [key],
    );
    assert.ok(rows[0], `${key} has a copy on fs-1`);
    return { versionId: rows[0].version_id, physicalKey: rows[0].physical_key, file: path.join(fs1.root, ...rows[0].physical_key.split('/')) };
  }

  before(async () => {
    // spread: copies land on both backends; workers off: the test runs the task queue itself.
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, strategy: 'spread', workers: false });
    fs1 = new FsBackend(t.config.backends.find((b) => b.name === 'fs-1') as never);
    for (let i = 0; i < 12; i++) await put(t, `obj/${i}`, `body ${i} `.repeat(i + 1));
    for (let i = 0; i < 4; i++) await put(t, `obj/${i}`, `overwritten ${i}`);
    for (const k of ['obj/10', 'obj/11']) await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: k }));
    await new Upload({
      client: t.client,
      params: { Bucket: 'data', Key: 'big/multi', Body: Readable.from([Buffer.alloc(6 * 1024 * 1024, 7)]) },
      partSize: 5 * 1024 * 1024,
    }).done();
    await runDeletes(t);
  });
  after(() => t?.stop());

  it('fsck_is_clean_after_a_workload', async () => {
    const r = await fsck();
    assert.deepEqual(summary(r), CLEAN, JSON.stringify(r, null, 1));
    assert.equal(hasFindings(r), false);
    assert.equal(r.backends.length, 2);
    const listed = r.backends.reduce((n, b) => n + b.objects, 0);
    assert.equal(listed, 11, 'ten single objects and one multipart object, nothing else');
    assert.ok(r.backends.every((b) => b.error === undefined && b.objects > 0), 'spread placed copies on both backends');
    assert.equal(r.dismissed, 0, 'the merge of listings and rows flags nothing on a quiet deployment (fs and s3rver list in byte order)');
  });

  it('fsck_finds_versions_below_their_replica_count', async () => {
    // The same deployment judged against placement.replicas = 2: every version has one copy.
    const r = await fsck({ replicas: 2 });
    const live = await t.orch.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_versions WHERE state = 'live'`);
    assert.equal(r.underReplicated.count, live.rows[0]!.n);
    assert.equal(r.repairing, 0);
    assert.equal(r.underReplicated.examples.length, 10);
    assert.deepEqual(Object.keys(r.underReplicated.examples[0]!).sort(), ['bucket', 'key', 'liveCopies', 'replicas', 'versionId']);
    assert.ok(r.underReplicated.examples.every((e) => e.liveCopies === 1 && e.replicas === 2));
    // A bucket's own count wins over the default.
    await t.orch.db.query(`UPDATE buckets SET replicas = 1 WHERE name = 'data'`);
    try {
      assert.equal((await fsck({ replicas: 2 })).underReplicated.count, 0);
    } finally {
      await t.orch.db.query(`UPDATE buckets SET replicas = NULL WHERE name = 'data'`);
    }
  });

  it('fsck_finds_each_class_and_repair_fixes_them', async () => {
    // An orphan: bytes under a layout key that no row names (a writer that died between put and stage).
    const orphanKey = physicalKey('data', 'never-committed', newVersionId(Date.now() - 3_600_000));
    await fs1.put(orphanKey, Readable.from([Buffer.from('orphan bytes')]), 12, { bucket: 'data', key: 'never-committed', versionId: orphanKey.split('/').at(-1)! });
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(path.join(fs1.root, ...orphanKey.split('/')), hourAgo, hourAgo);
    // The same, just written: younger than the grace period, so not (yet) an orphan.
    const youngKey = physicalKey('data', 'just-written', newVersionId());
    await fs1.put(youngKey, Readable.from([Buffer.from('young')]), 5, { bucket: 'data', key: 'just-written', versionId: youngKey.split('/').at(-1)! });
    // A copy whose object is gone, and one cut short.
    const copies = [];
    for (let i = 0; i < 12 && copies.length < 2; i++) {
      const { rows } = await t.orch.db.query(`SELECT 1 FROM object_copies c JOIN object_versions v USING (version_id) WHERE v.key = $1 AND c.backend = 'fs-1'`, [`obj/${i}`]);
      if (rows.length > 0) copies.push(await fsCopy(`obj/${i}`));
    }
    assert.equal(copies.length, 2, 'two objects on fs-1');
    const [gone, cut] = copies as [Awaited<ReturnType<typeof fsCopy>>, Awaited<ReturnType<typeof fsCopy>>];
    await unlink(gone.file);
    await truncate(cut.file, 3);
    // Counters that drifted.
    await t.orch.db.query(`UPDATE backends SET used_bytes = used_bytes + 7, object_count = object_count + 1 WHERE name = 's3-1'`);
    await t.orch.db.query(`INSERT INTO bucket_stat_deltas (bucket, objects, bytes) VALUES ('data', -1, -100)`);

    const withGrace = await fsck({ graceMs: 10 * 60_000 });
    assert.deepEqual(summary(withGrace), { ...CLEAN, orphans: 1, missing: 1, wrongSize: 1, backendCounters: 2, bucketCounters: 2 });
    assert.equal(withGrace.youngUnreferenced, 1, 'the object written a moment ago is left alone');
    assert.deepEqual(withGrace.orphans.examples, [{ backend: 'fs-1', physicalKey: orphanKey, size: 12 }]);
    assert.equal(withGrace.missing.examples[0]?.physicalKey, gone.physicalKey);
    assert.equal(withGrace.missing.examples[0]?.actualSize, null);
    assert.equal(withGrace.wrongSize.examples[0]?.physicalKey, cut.physicalKey);
    assert.equal(withGrace.wrongSize.examples[0]?.actualSize, 3);
    assert.deepEqual(
      withGrace.backendCounters.examples.map((e) => [e.name, e.field, e.actual - e.expected]),
      [['s3-1', 'used_bytes', 7], ['s3-1', 'object_count', 1]],
    );
    assert.deepEqual(withGrace.bucketCounters.examples.map((e) => [e.name, e.field, e.actual - e.expected]), [['data', 'objects', -1], ['data', 'bytes', -100]]);
    assert.equal(hasFindings(withGrace), true);

    // Grace 0: the young object counts too. Then repair everything.
    const repaired = await fsck({ repair: true });
    assert.equal(repaired.orphans.count, 2);
    assert.deepEqual(repaired.repaired, { orphansQueued: 2, copiesMarkedBad: 2, repairsQueued: 0, backendsCorrected: 1, bucketsCorrected: 1 });
    const states = await t.orch.db.query<{ state: string; bad_reason: string }>(
      `SELECT state, bad_reason FROM object_copies WHERE backend = 'fs-1' AND version_id = ANY($1) ORDER BY bad_reason`,
      [[gone.versionId, cut.versionId]],
    );
    assert.deepEqual(states.rows.map((r) => r.state), ['bad', 'bad']);
    const repairs = await t.orch.db.query<{ v: string }>(`SELECT payload->>'versionId' AS v FROM tasks WHERE kind = 'repair-version' ORDER BY 1`);
    assert.deepEqual(repairs.rows.map((r) => r.v), [gone.versionId, cut.versionId].sort(), 'marking a copy bad queues its repair');
    await runDeletes(t);
    assert.equal(await fs1.head(orphanKey), null, 'the orphan was deleted by its task');
    assert.equal(await fs1.head(youngKey), null);

    const second = await fsck();
    assert.deepEqual(summary(second), CLEAN, JSON.stringify(second, null, 1));
    assert.equal(second.knownBad, 2, 'the bad copies are known, awaiting repair');
    assert.equal(second.repairing, 2, 'their versions are below their replica count with a repair queued');
    assert.equal(hasFindings(second), false);
  });

  it('cli_exit_codes_json_repair_and_a_backend_that_cannot_be_listed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-fsck-'));
    try {
      const config = (fsPath: string) => {
        const s3 = t.servers[0]!;
        return JSON.stringify({
          server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: 'admin-test-token' } },
          database: { url: t.db.config.url, schema: t.db.config.schema },
          backends: [
            { name: 's3-1', type: 's3', endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', access_key_id: 'S3RVER', secret_access_key: 'S3RVER', force_path_style: true },
            { name: 'fs-1', type: 'fs', path: fsPath },
          ],
          buckets: [{ name: 'data', credentials: [{ access_key_id: TEST_CREDS.accessKeyId, secret_access_key: TEST_CREDS.secretAccessKey }] }],
        });
      };
      const file = path.join(dir, 'orchestrator.yaml');
      await writeFile(file, config(fs1.root));
      const cli = async (...args: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runFsckCommand(args, { write: (x: string) => out.push(x) }, { write: (x: string) => err.push(x) });
        return { code, out: out.join(''), err: err.join('') };
      };
      let r = await cli('--config', file, '--grace', '0');
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^backend s3-1: \d+ objects/m);
      assert.match(r.out, /\nclean\n$/);
      await t.orch.db.query(`UPDATE backends SET reserved_bytes = reserved_bytes + 5 WHERE name = 'fs-1'`);
      r = await cli('--config', file, '--json', '--examples', '3');
      assert.equal(r.code, 1, r.err);
      const report = JSON.parse(r.out) as FsckReport;
      assert.deepEqual(report.backendCounters.examples.map((e) => [e.name, e.field, e.actual - e.expected]), [['fs-1', 'reserved_bytes', 5]]);
      assert.equal(r.err, '', '--json prints no progress');
      r = await cli('--config', file, '--repair');
      assert.equal(r.code, 1);
      assert.match(r.out, /backend counters drifted +1\n +e\.g\. fs-1\.reserved_bytes = \d+, rows say \d+/);
      assert.match(r.out, /counters corrected on 1 backends and 0 buckets/);
      assert.equal((await cli('--config', file)).code, 0);
      // The right name on the wrong directory (another disk mounted): not listed, nothing called missing.
      const elsewhere = path.join(dir, 'elsewhere');
      await mkdir(elsewhere);
      await writeFile(file, config(elsewhere));
      r = await cli('--config', file);
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.out, /^backend fs-1: 0 objects, 0 B — NOT CHECKED: listing failed: .*identity/m);
      assert.match(r.out, /missing copies +0\n/);
      r = await cli('--config', file, '--grace', '5');
      assert.equal(r.code, 2);
      assert.match(r.err, /--grace needs a unit/);
      assert.equal((await cli('--repair')).code, 2);
      // A database this release did not migrate (here: never migrated) is refused, never migrated by fsck.
      const empty = await freshDatabase();
      try {
        await writeFile(file, config(fs1.root).replace(JSON.stringify(t.db.config.schema), JSON.stringify(empty.config.schema)));
        r = await cli('--config', file);
        assert.equal(r.code, 2);
        assert.match(r.err, /schema version 0, this s3-orchestrator expects \d+: run the release that serves this database/);
        const tables = await t.orch.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM pg_tables WHERE schemaname = $1`, [empty.config.schema]);
        assert.equal(tables.rows[0]!.n, 0, 'fsck created nothing');
      } finally {
        await empty.drop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fsck_under_concurrent_writes_reports_nothing_false', async () => {
    // The live case: writes, overwrites, deletes and their deletions run while fsck lists (grace 0, so
    // only the re-checks stand between a write in flight and a false orphan or missing copy).
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const k = `live/${i % 15}`;
        if (i % 5 === 4) await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: k }));
        else await put(t, k, `generation ${i} `.repeat(1 + (i % 7)));
        if (i % 3 === 0) await runDeletes(t);
      }
    })();
    try {
      for (let round = 0; round < 4; round++) {
        const r = await fsck();
        assert.deepEqual(summary(r), CLEAN, `round ${round}: ${JSON.stringify(r, null, 1)}`);
      }
    } finally {
      stop = true;
      await load;
    }
    await runDeletes(t);
    assert.deepEqual(summary(await fsck()), CLEAN);
  });
});

/** Waits until every live version has `n` live copies, no copy is bad and no deletion is left. */
async function converged(t: TestOrchestrator, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await t.orch.db.query<{ short: number; bad: number }>(
      `SELECT (SELECT count(*) FROM object_versions v WHERE v.state = 'live'
                AND (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'live') <> $1)::int8 AS short,
              (SELECT count(*) FROM object_copies WHERE state <> 'live')::int8 AS bad`,
      [n],
    );
    if (rows[0]!.short === 0 && rows[0]!.bad === 0 && (await drainCleanup(t, 0)) === 0) return;
    assert.ok(Date.now() < deadline, `not converged: ${JSON.stringify(rows[0])}`);
    t.orch.wakeWorkers();
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('fsck with replicas=2 and the repair worker', () => {
  let t: TestOrchestrator;
  before(async () => {
    t = await startTestOrchestrator({ s3rvers: 2, fsBackends: 1, strategy: 'spread', placement: { replicas: 2 } });
    for (let i = 0; i < 9; i++) await put(t, `r/${i}`, `replicated ${i} `.repeat(10 + i));
    await converged(t, 2);
  });
  after(() => t?.stop());

  it('missing_and_truncated_copies_are_found_marked_bad_and_repaired_from_a_good_copy', async () => {
    const { rows } = await t.orch.db.query<{ key: string; physical_key: string; version_id: string }>(
      `SELECT v.key, c.physical_key, c.version_id FROM object_copies c JOIN object_versions v USING (version_id)
       WHERE c.backend = 'fs-1' ORDER BY v.key LIMIT 2`,
    );
    assert.equal(rows.length, 2, 'spread put two versions on fs-1');
    const root = (t.config.backends.find((b) => b.name === 'fs-1') as { path: string }).path;
    await unlink(path.join(root, ...rows[0]!.physical_key.split('/')));
    await truncate(path.join(root, ...rows[1]!.physical_key.split('/')), 1);
    const fsck = (repair = false) => runFsck(t.orch.db, t.orch.backends.all(), { defaultReplicas: 2, graceMs: 0, ...(repair ? { repair } : {}) });
    const found = await fsck();
    assert.deepEqual([found.missing.count, found.wrongSize.count], [1, 1]);
    assert.deepEqual([found.missing.examples[0]!.key, found.wrongSize.examples[0]!.key], [rows[0]!.key, rows[1]!.key]);
    const repaired = await fsck(true);
    assert.equal(repaired.repaired?.copiesMarkedBad, 2);
    await converged(t, 2);
    const again = await fsck();
    assert.deepEqual(summary(again), CLEAN, JSON.stringify(again, null, 1));
    assert.deepEqual([again.knownBad, again.repairing], [0, 0], 'the bad copies were replaced and retired');
    for (const r of rows) {
      const i = Number(r.key.split('/')[1]);
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: r.key }));
      assert.equal(await got.Body!.transformToString(), `replicated ${i} `.repeat(10 + i));
    }
  });
});
