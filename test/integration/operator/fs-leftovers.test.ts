/**
 * Crash leftovers on fs backends: temp files of writes that never finished and multipart directories that
 * no upload references. Before the fix no quota counted them and nothing removed them (temp files only
 * after an hour, at start; `.mpu` directories never). Real files; ages are set with utimes, not waited for.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { FsBackend, MPU_DIR, TMP_DIR } from '../../../src/backends/fs.js';
import { sweepFsLeftovers } from '../../../src/core/fs-upkeep.js';
import { createLogger } from '../../../src/log.js';
import { stallingStream } from '../backends/helpers.js';
import { eventually, startFixture, type OperatorFixture } from './fixture.js';

const HOUR = 3_600_000;
const MIN = 60_000;

/** Sets a file's or directory's times `ageMs` into the past. */
async function age(p: string, ageMs: number): Promise<void> {
  const t = new Date(Date.now() - ageMs);
  await utimes(p, t, t);
}

async function leftover(root: string, rel: string, bytes: number, ageMs: number): Promise<string> {
  const p = path.join(root, rel);
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, Buffer.alloc(bytes, 1));
  await age(p, ageMs);
  return p;
}

describe('FsBackend.sweepLeftovers', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('counts_every_leftover_and_removes_only_old_unreferenced_ones', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 's3o-sweep-'));
    dirs.push(root);
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await b.check();
    const oldTmp = await leftover(root, `${TMP_DIR}/old-1`, 1000, 2 * HOUR);
    const oldSidecar = await leftover(root, `${TMP_DIR}/old-1.meta.json`, 10, 2 * HOUR);
    const youngTmp = await leftover(root, `${TMP_DIR}/young-1`, 500, 1 * MIN);
    // An upload the database still holds (old, but referenced), an orphan (old) and a young orphan.
    const active = 'A'.repeat(22);
    const orphan = 'O'.repeat(22);
    const youngOrphan = 'Y'.repeat(22);
    for (const [id, ms] of [[active, 3 * HOUR], [orphan, 3 * HOUR], [youngOrphan, 2 * MIN]] as const) {
      await leftover(root, `${MPU_DIR}/${id}/1`, 300, ms);
      await leftover(root, `${MPU_DIR}/${id}/meta.json`, 20, ms);
      await age(path.join(root, MPU_DIR, id), ms);
    }
    const r = await b.sweepLeftovers({ olderThanMs: 10 * MIN, activeUploads: new Set([active]) });
    assert.deepEqual(r, {
      tmpFiles: 3,
      tmpBytes: 1510,
      orphanUploads: 2,
      orphanUploadBytes: 640,
      removedFiles: 2,
      removedUploads: 1,
      removedBytes: 1330,
    });
    assert.equal(existsSync(oldTmp) || existsSync(oldSidecar), false);
    assert.ok(existsSync(youngTmp), 'a young temp file may belong to a live write');
    assert.deepEqual((await readdir(path.join(root, MPU_DIR))).sort(), [active, youngOrphan].sort());
  });

  it('never_removes_a_temp_file_this_process_is_writing_whatever_its_age', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 's3o-sweep-'));
    dirs.push(root);
    const b = new FsBackend({ type: 'fs', name: 'disk', quotaBytes: 0, path: root });
    await b.check();
    let stalled!: () => void;
    const reached = new Promise<void>((r) => (stalled = r));
    const ac = new AbortController();
    const write = b.put('k/obj', stallingStream(64 * 1024, stalled), 1 << 20, { bucket: 'b', key: 'k', versionId: 'v' }, ac.signal);
    await reached;
    const [tmp] = await readdir(path.join(root, TMP_DIR));
    await age(path.join(root, TMP_DIR, tmp!), 5 * HOUR);
    const r = await b.sweepLeftovers({ olderThanMs: 10 * MIN, activeUploads: new Set() });
    assert.equal(r.removedFiles, 0);
    assert.ok(existsSync(path.join(root, TMP_DIR, tmp!)));
    ac.abort();
    await write.catch(() => undefined);
  });
});

describe('leftover sweeps of a running orchestrator', () => {
  let f: OperatorFixture | undefined;
  after(async () => {
    await f?.close();
  });

  it('Start_removes_old_orphans_and_keeps_uploads_in_progress', async () => {
    f = await startFixture((dir) => [{ type: 'fs', name: 'fs-1', path: path.join(dir, 'fs-1'), quotaBytes: 0 }]);
    const t = f;
    const root = path.join(t.dir, 'fs-1');
    // A multipart upload in progress whose directory has not been touched for hours (a slow client).
    const part = Buffer.alloc(5 * 1024 * 1024, 7);
    const created = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big' }));
    const up = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'big', UploadId: created.UploadId, PartNumber: 1, Body: part }));
    const [mpuDir] = await readdir(path.join(root, MPU_DIR));
    for (const n of await readdir(path.join(root, MPU_DIR, mpuDir!))) await age(path.join(root, MPU_DIR, mpuDir!, n), 5 * HOUR);
    await age(path.join(root, MPU_DIR, mpuDir!), 5 * HOUR);
    // What a crash leaves: an old temp file and an old upload directory no row references.
    const crashedTmp = await leftover(root, `${TMP_DIR}/crashed`, 4096, 2 * HOUR);
    const crashedMpu = path.join(root, MPU_DIR, 'Z'.repeat(22));
    await leftover(root, `${MPU_DIR}/${'Z'.repeat(22)}/1`, 8192, 2 * HOUR);
    await age(crashedMpu, 2 * HOUR);

    await t.restart();
    await eventually('the start-up sweep removed the crash leftovers', () => !existsSync(crashedTmp) && !existsSync(crashedMpu));
    assert.ok(t.log.some((l) => /fs backend crash leftovers .*"removedFiles":1,"removedUploads":1,"removedBytes":12288/.test(l)), t.log.join('\n'));
    assert.ok(existsSync(path.join(root, MPU_DIR, mpuDir!)), 'the upload in progress is kept');
    // The same sweep run directly against the database finds nothing more to remove.
    const same = new FsBackend({ type: 'fs', name: 'fs-1', quotaBytes: 0, path: root });
    await same.check();
    const again = (await sweepFsLeftovers(t.orch.db, [same], 10 * MIN, createLogger({}, 'error'))).get('fs-1')!;
    assert.deepEqual([again.orphanUploads, again.removedUploads, again.removedFiles], [0, 0, 0], 'the upload in progress is referenced');

    await t.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'data',
        Key: 'big',
        UploadId: created.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: up.ETag }] },
      }),
    );
  });
});
