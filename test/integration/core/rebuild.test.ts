/**
 * core/rebuild.ts on hand-made backend contents (three fs backends): what becomes the live version and
 * its copies when copies disagree in size or bytes, duplicates on one backend, objects without meta or
 * outside the layout, and the refusal of a database that is not empty.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { FsBackend } from '../../../src/backends/fs.js';
import { copyKey, newVersionId, physicalKey } from '../../../src/backends/layout.js';
import { syncConfigBackends } from '../../../src/core/fleet.js';
import { declareBuckets, rebuildFromBackends, RebuildRefused, type RebuildReport } from '../../../src/core/rebuild.js';
import type { Db } from '../../../src/meta/db.js';
import { openDatabase } from '../../../src/meta/open.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { assertLedger } from '../../harness/ledger.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe('rebuild from hand-made backend contents', () => {
  let dir: string;
  let tdb: TestDatabase;
  let db: Db;
  let fs: FsBackend[];
  let report: RebuildReport;
  const v = (key: string) => ({ key, id: newVersionId() });

  async function place(b: FsBackend, pkey: string, key: string, versionId: string, body: string): Promise<void> {
    await b.put(pkey, Readable.from([Buffer.from(body)]), Buffer.byteLength(body), { bucket: 'data', key, versionId, contentType: 'text/plain' });
  }

  const majority = v('majority');
  const tie = v('tie');
  const nometa = v('no-meta');
  const dup = v('duplicate');
  const sized = v('sizes');

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-rebuild-core-'));
    fs = ['fs-1', 'fs-2', 'fs-3'].map((name) => new FsBackend({ type: 'fs', name, path: path.join(dir, name), quotaBytes: 0 }));
    for (const b of fs) await b.check();
    // Two copies agree, the third has other bytes of the same size.
    await place(fs[0]!, physicalKey('data', majority.key, majority.id), majority.key, majority.id, 'good bytes');
    await place(fs[1]!, physicalKey('data', majority.key, majority.id), majority.key, majority.id, 'good bytes');
    await place(fs[2]!, physicalKey('data', majority.key, majority.id), majority.key, majority.id, 'evil bytes');
    // Two copies that disagree and nothing to break the tie.
    await place(fs[0]!, physicalKey('data', tie.key, tie.id), tie.key, tie.id, 'one');
    await place(fs[1]!, physicalKey('data', tie.key, tie.id), tie.key, tie.id, 'two');
    // Bytes whose meta is gone.
    await place(fs[0]!, physicalKey('data', nometa.key, nometa.id), nometa.key, nometa.id, 'anonymous');
    await unlink(path.join(fs[0]!.root, ...physicalKey('data', nometa.key, nometa.id).split('/')) + '.meta.json');
    // The version's key and a copy key of the same version on one backend.
    await place(fs[0]!, physicalKey('data', dup.key, dup.id), dup.key, dup.id, 'dup');
    await place(fs[0]!, copyKey('data', dup.key, dup.id), dup.key, dup.id, 'dup');
    // Sizes disagree: the size most copies have wins.
    await place(fs[0]!, physicalKey('data', sized.key, sized.id), sized.key, sized.id, 'whole');
    await place(fs[1]!, physicalKey('data', sized.key, sized.id), sized.key, sized.id, 'whole');
    await place(fs[2]!, physicalKey('data', sized.key, sized.id), sized.key, sized.id, 'who');
    // Not ours.
    await mkdir(path.join(fs[2]!.root, 'random'));
    await writeFile(path.join(fs[2]!.root, 'random', 'file.txt'), 'not ours');

    tdb = await freshDatabase();
    db = (await openDatabase(tdb.config)).db;
    await syncConfigBackends(db, fs.map((b) => ({ name: b.name, type: 'fs', quotaBytes: 0 })));
    await declareBuckets(db, ['data']);
    report = await rebuildFromBackends(db, fs, { deleteDelayMs: 3_600_000 });
  });

  after(async () => {
    try {
      await assertLedger(db, 'rebuilt');
    } finally {
      await db?.close();
      await tdb?.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function copiesOf(key: string): Promise<{ etag: string; size: number; backends: string[] } | undefined> {
    const { rows } = await db.query<{ etag: string; size: number; backends: string[] }>(
      `SELECT v.etag, v.size, array_agg(c.backend ORDER BY c.backend) AS backends FROM object_versions v
       JOIN object_copies c USING (version_id) WHERE v.key = $1 AND v.state = 'live' GROUP BY v.etag, v.size`,
      [key],
    );
    return rows[0];
  }

  it('the_bytes_most_copies_hold_win_and_the_other_copy_is_queued_for_deletion', async () => {
    assert.deepEqual(await copiesOf(majority.key), { etag: md5('good bytes'), size: 10, backends: ['fs-1', 'fs-2'] });
    assert.ok(report.queuedDeletions.examples.some((d) => d.backend === 'fs-3' && /bytes differ/.test(d.reason)));
  });

  it('copies_that_disagree_without_a_majority_publish_nothing_and_delete_nothing', async () => {
    assert.equal(await copiesOf(tie.key), undefined);
    assert.ok(report.skipped.examples.some((s) => /different bytes/.test(s.reason)));
    assert.notEqual(await fs[0]!.head(physicalKey('data', tie.key, tie.id)), null);
    assert.notEqual(await fs[1]!.head(physicalKey('data', tie.key, tie.id)), null);
  });

  it('bytes_without_meta_are_skipped', async () => {
    assert.equal(await copiesOf(nometa.key), undefined);
    assert.ok(report.skipped.examples.some((s) => s.reason === 'no readable meta'));
  });

  it('one_copy_per_backend_the_version_key_wins_over_a_copy_key', async () => {
    const { rows } = await db.query<{ physical_key: string }>(`SELECT physical_key FROM object_copies c JOIN object_versions v USING (version_id) WHERE v.key = $1`, [dup.key]);
    assert.deepEqual(rows.map((r) => r.physical_key), [physicalKey('data', dup.key, dup.id)]);
    assert.ok(report.queuedDeletions.examples.some((d) => d.reason === 'duplicate copy on one backend'));
  });

  it('the_size_most_copies_have_wins', async () => {
    assert.deepEqual(await copiesOf(sized.key), { etag: md5('whole'), size: 5, backends: ['fs-1', 'fs-2'] });
    assert.ok(report.queuedDeletions.examples.some((d) => d.reason === 'size 3, the generation has 5'));
  });

  it('counts_foreign_objects_and_leaves_them', async () => {
    assert.equal(report.foreign, 1);
    assert.equal(report.versions, 3);
    assert.equal(report.skipped.count, 2);
    assert.equal(report.queuedDeletions.count, 3);
  });

  it('a_database_that_is_not_empty_is_refused', async () => {
    await assert.rejects(rebuildFromBackends(db, fs), (err: unknown) => err instanceof RebuildRefused && /3 object versions, 5 copies/.test(err.message));
  });
});
