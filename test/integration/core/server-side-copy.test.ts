/**
 * Repair between two backends that are buckets (here: prefixes of one bucket) of the same provider account
 * and endpoint copies provider-side: no byte passes through the orchestrator, and the copy is checked by its
 * size. Across accounts or endpoints it streams.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Backend } from '../../../src/backends/backend.js';
import { enqueueAddCopy } from '../../../src/core/replicate.js';
import { coreFixture, putInput, readAll, type CoreFixture } from '../../harness/core.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('provider-side copies between backends of one account', () => {
  let s3: S3rverInstance;
  let f: CoreFixture;
  const puts: string[] = [];
  before(async () => {
    s3 = await startS3rver();
    f = await coreFixture(
      'postgres',
      () => [s3BackendConfig(s3, 'one', { prefix: 'one/' }), s3BackendConfig(s3, 'two', { prefix: 'two/' })],
      'pack',
      {
        wrap: (b: Backend) => {
          const put = b.put.bind(b);
          b.put = (...a: Parameters<Backend['put']>) => {
            puts.push(b.name);
            return put(...a);
          };
          return b;
        },
      },
    );
  });
  after(async () => {
    await f.drain();
    await f.close();
    await s3.stop();
  });

  test('repair adds the second copy with CopyObject, byte-exact, with its metadata', async () => {
    const data = randomBytes(200 * 1024);
    const v = await f.store.putObject(putInput('data', 'k', data, { userMeta: { who: 'me' } }));
    assert.deepEqual(puts, ['one']);
    // The bucket now wants two copies: the second is added by a copy-version task.
    await f.db.query(`UPDATE buckets SET replicas = 2 WHERE name = 'data'`);
    await f.db.tx((q) => enqueueAddCopy(q, v.versionId, f.clock));
    await f.drain();
    assert.deepEqual(puts, ['one'], 'no streamed put: the provider copied the bytes');
    const { rows } = await f.db.query<{ backend: string; physical_key: string; state: string }>(
      `SELECT backend, physical_key, state FROM object_copies WHERE version_id = $1 ORDER BY backend`,
      [v.versionId],
    );
    assert.deepEqual(rows.map((r) => [r.backend, r.state]), [['one', 'live'], ['two', 'live']]);
    const two = rows.find((r) => r.backend === 'two')!;
    assert.equal(md5(await readAll(await f.registry.get('two')!.get(two.physical_key))), md5(data));
    const head = await f.registry.get('two')!.head(two.physical_key);
    assert.equal(head?.meta?.key, 'k');
    assert.deepEqual(head?.meta?.userMeta, { who: 'me' });
  });

  test('a source of another account is not copied provider-side', () => {
    const two = f.registry.get('two')!;
    const src = f.registry.get('one')!.copySource!('x')!;
    return two.copyFrom!({ ...src, accessKeyId: 'someone-else' }, 'y', { bucket: 'data', key: 'y', versionId: '0'.repeat(32) }, 1).then((done) =>
      assert.equal(done, false),
    );
  });
});
