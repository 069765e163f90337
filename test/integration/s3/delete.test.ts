/**
 * DeleteObject and DeleteObjects (quiet and verbose, more than 1000 keys, malformed XML, Content-MD5),
 * and that deleted bytes leave the backends once the cleanup queue has run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { backendCounters, expectRawError, expectS3Error, physicalInventory, rawRequest, recordedCopies } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
});
after(() => t?.stop());

async function put(...keys: string[]) {
  for (const k of keys) await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: k, Body: `bytes of ${k}` }));
}
async function listed(prefix: string): Promise<string[]> {
  const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!);
}
const deleteXml = (keys: string[], quiet = false) =>
  `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${quiet ? '<Quiet>true</Quiet>' : ''}${keys
    .map((k) => `<Object><Key>${k}</Key></Object>`)
    .join('')}</Delete>`;
const md5b64 = (s: string) => createHash('md5').update(s).digest('base64');

describe('DeleteObject', () => {
  it('DeleteObject_removes_the_key', async () => {
    await put('del/one');
    const r = await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'del/one' }));
    assert.equal(r.$metadata.httpStatusCode, 204);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'del/one' })), 'NotFound', 404);
  });

  it('DeleteObject_missing_key_is_204', async () => {
    const r = await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'del/never-existed' }));
    assert.equal(r.$metadata.httpStatusCode, 204);
  });

  it('DeleteObject_bytes_leave_the_backend_after_cleanup', async () => {
    await put('del/bytes');
    // Earlier tests' deletions must have settled, or their releases would land between the two readings.
    assert.equal(await drainCleanup(t), 0);
    const before = await backendCounters(t);
    await t.client.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'del/bytes' }));
    assert.equal(await drainCleanup(t), 0, 'cleanup queue drained');
    const after = await backendCounters(t);
    assert.equal(after['s3-1']!.used, before['s3-1']!.used - Buffer.byteLength('bytes of del/bytes'));
    assert.equal(after['s3-1']!.objects, before['s3-1']!.objects - 1);
    // Every physical object is one the metadata still knows about.
    const phys = await physicalInventory(t);
    const rec = await recordedCopies(t);
    assert.deepEqual(phys['s3-1'], rec['s3-1'] ?? []);
  });
});

describe('DeleteObjects', () => {
  it('DeleteObjects_verbose_reports_each_key', async () => {
    await put('multi/a', 'multi/b', 'multi/c');
    const r = await t.client.send(
      new DeleteObjectsCommand({
        Bucket: 'data',
        Delete: { Objects: [{ Key: 'multi/a' }, { Key: 'multi/b' }, { Key: 'multi/not-there' }] },
      }),
    );
    assert.deepEqual(r.Deleted?.map((d) => d.Key).sort(), ['multi/a', 'multi/b', 'multi/not-there']);
    assert.equal(r.Errors, undefined);
    assert.deepEqual(await listed('multi/'), ['multi/c']);
  });

  it('DeleteObjects_quiet_reports_nothing_on_success', async () => {
    await put('quiet/a', 'quiet/b');
    const r = await t.client.send(
      new DeleteObjectsCommand({ Bucket: 'data', Delete: { Quiet: true, Objects: [{ Key: 'quiet/a' }, { Key: 'quiet/b' }] } }),
    );
    assert.equal(r.Deleted, undefined);
    assert.equal(r.Errors, undefined);
    assert.deepEqual(await listed('quiet/'), []);
  });

  it('DeleteObjects_with_per_object_conditions_is_NotImplemented_and_deletes_nothing', async () => {
    await put('cond/a');
    for (const cond of [{ ETag: '"0123456789abcdef0123456789abcdef"' }, { Size: 5 }, { LastModifiedTime: new Date('2020-01-01T00:00:00Z') }]) {
      await expectS3Error(
        t.client.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'cond/a', ...cond }] } })),
        'NotImplemented',
        501,
      );
    }
    assert.deepEqual(await listed('cond/'), ['cond/a'], 'a condition that is not enforced deletes nothing');
  });

  it('DeleteObjects_odd_keys', async () => {
    const odd = ['oddel/a b', 'oddel/a+b', 'oddel/<&>', 'oddel/ü'];
    await put(...odd);
    const r = await t.client.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: odd.map((Key) => ({ Key })) } }));
    assert.deepEqual(r.Deleted?.map((d) => d.Key).sort(), [...odd].sort());
    assert.deepEqual(await listed('oddel/'), []);
  });

  it('DeleteObjects_more_than_1000_keys_is_MalformedXML', async () => {
    await put('limit/keep');
    const keys = Array.from({ length: 1001 }, (_, i) => `limit/${i}`);
    keys[0] = 'limit/keep';
    const f = await expectS3Error(
      t.client.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: keys.map((Key) => ({ Key })) } })),
      'MalformedXML',
      400,
    );
    assert.ok(f);
    assert.deepEqual(await listed('limit/'), ['limit/keep'], 'nothing deleted');
  });

  it('DeleteObjects_malformed_xml', async () => {
    await put('mal/keep');
    for (const body of ['<Delete><Object><Key>mal/keep</Key></Object>', 'not xml at all', '<Delete></Delete>']) {
      const raw = await rawRequest(t.endpoint, {
        method: 'POST',
        path: '/data',
        query: { delete: '' },
        headers: { 'content-md5': md5b64(body), 'content-type': 'application/xml' },
        body,
      });
      expectRawError(raw, 'MalformedXML', 400);
    }
    assert.deepEqual(await listed('mal/'), ['mal/keep'], 'nothing deleted');
  });

  it('DeleteObjects_wrong_content_md5_is_BadDigest', async () => {
    await put('md5/keep');
    const body = deleteXml(['md5/keep']);
    const raw = await rawRequest(t.endpoint, {
      method: 'POST',
      path: '/data',
      query: { delete: '' },
      headers: { 'content-md5': md5b64('something else') },
      body,
    });
    expectRawError(raw, 'BadDigest', 400);
    assert.deepEqual(await listed('md5/'), ['md5/keep'], 'nothing deleted');
  });

  it('DeleteObjects_on_foreign_bucket_is_AccessDenied', async () => {
    await put('foreign/keep');
    await expectS3Error(
      t.otherClient.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'foreign/keep' }] } })),
      'AccessDenied',
      403,
    );
    assert.deepEqual(await listed('foreign/'), ['foreign/keep']);
  });
});
