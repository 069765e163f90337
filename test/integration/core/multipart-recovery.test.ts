/**
 * Multipart completion that survives crashes and lost replies (issue 7): an upload left `completing` by a
 * completer that died is taken over by a retried Complete or rolled back by the sweeper; a repeated
 * Complete answers with the version it produced; a lost COMMIT reply is resolved by re-reading; and with
 * `pack`, an upload starts on the backend with the most room instead of the first one with 5 MiB.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { CoreError } from '../../../src/core/errors.js';
import { CoreMultipartStore, MIN_PART_SIZE } from '../../../src/core/multipart.js';
import { rollBackStuckCompletions } from '../../../src/core/sweepers.js';
import type { UploadPartInput } from '../../../src/core/types.js';
import { run } from '../../../src/meta/run.js';
import * as mq from '../../../src/meta/queries/multipart.js';
import { coreFixture, readAll, type CoreFixture } from '../../harness/core.js';
import { faultyDb, type FaultyDb } from '../../harness/faults-db.js';
import { assertLedger } from '../../harness/ledger.js';

const MiB = 1024 * 1024;
const code = (c: string) => (err: unknown) => err instanceof CoreError && err.code === c;

function part(key: string, uploadId: string, partNumber: number, data: Buffer): UploadPartInput {
  return {
    bucket: 'data',
    key,
    uploadId,
    partNumber,
    size: data.length,
    body: Readable.from([data]),
    digests: () => ({ md5: createHash('md5').update(data).digest('hex') }),
  };
}

describe('multipart completion recovery', () => {
  let f: CoreFixture;
  let db: FaultyDb;
  let mp: CoreMultipartStore;
  before(async () => {
    f = await coreFixture('postgres', (dir) => [
      { type: 'fs' as const, name: 'small', path: path.join(dir, 'small'), quotaBytes: 6 * MiB },
      { type: 'fs' as const, name: 'large', path: path.join(dir, 'large'), quotaBytes: 64 * MiB },
    ]);
    db = faultyDb(f.db);
    mp = new CoreMultipartStore({ ...f.deps, db }, f.store);
  });
  after(async () => {
    db.reset();
    f.clock.advance(3_600_000);
    await f.drain();
    await f.close();
  });

  /** An upload with one small part, ready to complete. */
  async function oneParter(key: string, body = 'tail of ' + key) {
    const up = await mp.createMultipartUpload({ bucket: 'data', key, headers: {}, userMeta: {} });
    const p = await mp.uploadPart(part(key, up.uploadId, 1, Buffer.from(body)));
    return { up, parts: [{ partNumber: 1, etag: p.etag }] };
  }

  /** What a completer that died right after claiming the upload leaves behind. */
  const claimAndDie = (uploadId: string) => run(f.db, mq.beginCompleting(uploadId, f.deps.staleMs, f.clock.skewMs()));

  test('with pack, an upload starts on the backend with the most room, so its parts do not run out of space', async () => {
    const { up, parts } = await oneParter('placed');
    const { rows } = await f.db.query<{ backend: string }>(`SELECT backend FROM multipart_uploads WHERE upload_id = $1`, [up.uploadId]);
    assert.equal(rows[0]!.backend, 'large', 'small has 6 MiB: a second 5 MiB part would not fit there');
    await mp.uploadPart(part('placed', up.uploadId, 2, Buffer.alloc(MIN_PART_SIZE, 1)));
    await mp.uploadPart(part('placed', up.uploadId, 3, Buffer.alloc(MIN_PART_SIZE, 2)));
    await mp.abortMultipartUpload('data', 'placed', up.uploadId);
    void parts;
  });

  test('a repeated Complete of a completed upload answers with the same version', async () => {
    const { up, parts } = await oneParter('twice');
    const v1 = await mp.completeMultipartUpload({ bucket: 'data', key: 'twice', uploadId: up.uploadId, parts });
    const v2 = await mp.completeMultipartUpload({ bucket: 'data', key: 'twice', uploadId: up.uploadId, parts });
    assert.equal(v2.versionId, v1.versionId);
    assert.equal(v2.etag, v1.etag);
  });

  test('a completion in progress makes a concurrent Complete or Abort answer OperationAborted', async () => {
    const { up, parts } = await oneParter('busy');
    await claimAndDie(up.uploadId);
    await assert.rejects(mp.completeMultipartUpload({ bucket: 'data', key: 'busy', uploadId: up.uploadId, parts }), code('OperationAborted'));
    await assert.rejects(mp.abortMultipartUpload('data', 'busy', up.uploadId), code('OperationAborted'));
    f.clock.advance(f.deps.staleMs + 1_000);
    // Its completer is now taken for dead: a retried Complete takes the upload over and finishes it.
    const v = await mp.completeMultipartUpload({ bucket: 'data', key: 'busy', uploadId: up.uploadId, parts });
    assert.equal((await readAll((await f.store.getObject('data', 'busy')).body)).toString(), 'tail of busy');
    assert.equal(v.partsCount, 1);
    await assertLedger(f.db);
  });

  test('a completion left behind by a dead completer is rolled back by the sweeper; its reservation comes back', async () => {
    await f.drain(); // earlier tests' deletions, so that the counters below move only for this upload
    const before = await f.backendRow('large');
    const { up, parts } = await oneParter('stuck', 'x'.repeat(4096));
    await claimAndDie(up.uploadId);
    assert.equal(await rollBackStuckCompletions(f.db, f.deps.staleMs, f.clock), 0, 'not stale yet');
    f.clock.advance(f.deps.staleMs + 1_000);
    assert.equal(await rollBackStuckCompletions(f.db, f.deps.staleMs, f.clock), 1);
    await assert.rejects(mp.completeMultipartUpload({ bucket: 'data', key: 'stuck', uploadId: up.uploadId, parts }), code('NoSuchUpload'));
    await f.drain();
    const after = await f.backendRow('large');
    assert.deepEqual(
      { used: after.used_bytes, reserved: after.reserved_bytes },
      { used: before.used_bytes, reserved: before.reserved_bytes },
      'every byte the upload held is released',
    );
    await assertLedger(f.db);
  });

  test('a Complete whose COMMIT reply is lost is resolved by re-reading: acknowledged, and the object stays', async () => {
    const { up, parts } = await oneParter('lost');
    db.loseCommitReply({ match: /DELETE FROM multipart_uploads WHERE upload_id = \$20/ });
    const v = await mp.completeMultipartUpload({ bucket: 'data', key: 'lost', uploadId: up.uploadId, parts });
    assert.equal(db.injected.commits, 1, 'the fault fired');
    f.clock.advance(3_600_000);
    await f.drain();
    const got = await f.store.getObject('data', 'lost');
    assert.equal(got.version.versionId, v.versionId);
    assert.equal((await readAll(got.body)).toString(), 'tail of lost');
    await assertLedger(f.db);
  });
});
