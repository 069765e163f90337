/**
 * A dead s3 backend (nothing listens on its port) first in the order, a live one after it:
 *
 * - every PUT, whatever its size, lands on the live backend. Nothing is read from the client's body before
 *   the first backend's connection is up, so a refused connection leaves the whole body replayable for the
 *   next backend (issue 7: 600 KB PUTs failed with 503 once the body had been read past the 256 KiB replay
 *   window before the connection was even refused);
 * - a GET of an object whose only copy is on a backend that went down answers 503 ServiceUnavailable saying
 *   that the storage provider is unavailable, not S3's "Please reduce your request rate" (SlowDown).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { GetObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { s3BackendConfig } from '../../harness/s3rver.js';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, patternBytes, sha256 } from './helpers.js';

const KB = 1000;

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

let t: TestOrchestrator;

before(async () => {
  const dead = s3BackendConfig({ endpoint: `http://127.0.0.1:${await deadPort()}`, bucket: 'test' }, 'dead');
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 0, extraFirst: true, extraBackends: [dead] });
});

after(async () => {
  await t?.stop();
});

async function copiesOf(key: string): Promise<string[]> {
  const { rows } = await t.orch.db.query<{ backend: string }>(
    `SELECT c.backend FROM object_versions v JOIN object_copies c USING (version_id) WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live'`,
    [key],
  );
  return rows.map((r) => r.backend);
}

describe('a dead backend first in the order', () => {
  it('PUTs of 600 KB to 2 MB all go to the live backend', async () => {
    const sizes = [600 * KB, 600 * KB, 1000 * KB, 2000 * KB];
    const failures: string[] = [];
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        sizes.map(async (size, i) => {
          const key = `dead-first/${round}-${i}`;
          const body = patternBytes(size, round * 10 + i + 1);
          try {
            await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
            const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
            assert.equal(sha256(await bytesOf(got.Body)), sha256(body));
            assert.deepEqual(await copiesOf(key), ['s3-1']);
          } catch (err) {
            failures.push(`${key} (${size} bytes): ${err instanceof Error ? err.message : String(err)}`);
          }
        }),
      );
    }
    assert.deepEqual(failures, []);
  });

  it('a GET whose only copy is on a backend that went down: 503 saying the storage provider is unavailable', async () => {
    const key = 'dead-later/only-copy';
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: 'soon unreachable' }));
    await t.servers[0]!.stop();
    try {
      await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
      assert.fail('the GET must fail');
    } catch (err) {
      assert.ok(err instanceof S3ServiceException, String(err));
      assert.equal(err.$metadata.httpStatusCode, 503);
      assert.equal(err.name, 'ServiceUnavailable');
      assert.match(err.message, /storage provider .*unavailable/);
      assert.doesNotMatch(err.message, /reduce your request rate/i);
    }
  });
});
