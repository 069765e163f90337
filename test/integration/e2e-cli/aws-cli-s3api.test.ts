/**
 * The Debian aws cli (/usr/bin/aws) `s3api` commands against a real orchestrator: put-object /
 * get-object / head-object with headers, metadata and a range, a 404, copy-object, delete-objects,
 * list-objects-v2 pagination, and the two refusals a user meets first (wrong secret, someone else's
 * bucket). Skipped with a message when /usr/bin/aws is absent. Helpers in aws.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { TEST_CREDS } from '../../harness/orchestrator.js';
import { skip, startAwsCli, type AwsCli } from './aws.js';

let c: AwsCli;

describe('aws cli: s3api commands', { skip }, () => {
  before(async () => {
    c = await startAwsCli();
  });
  after(async () => {
    await c?.close();
  });

  it('s3api_put_get_head_object', async () => {
    const src = path.join(c.dir, 'api.json');
    await writeFile(src, '{"a":1}');
    const put = JSON.parse(
      await c.ok([
        's3api', 'put-object', '--bucket', 'data', '--key', 'api/obj.json', '--body', src,
        '--content-type', 'application/json', '--metadata', 'owner=cli,purpose=test', '--cache-control', 'no-cache',
      ]),
    ) as { ETag: string };
    assert.equal(put.ETag, `"${createHash('md5').update('{"a":1}').digest('hex')}"`);
    const head = JSON.parse(await c.ok(['s3api', 'head-object', '--bucket', 'data', '--key', 'api/obj.json'])) as Record<string, unknown>;
    assert.equal(head['ContentLength'], 7);
    assert.equal(head['ContentType'], 'application/json');
    assert.equal(head['CacheControl'], 'no-cache');
    assert.equal(head['ETag'], put.ETag);
    assert.deepEqual(head['Metadata'], { owner: 'cli', purpose: 'test' });
    const out = path.join(c.dir, 'api.back');
    const get = JSON.parse(
      await c.ok(['s3api', 'get-object', '--bucket', 'data', '--key', 'api/obj.json', '--range', 'bytes=1-3', out]),
    ) as Record<string, unknown>;
    assert.equal(get['ContentRange'], 'bytes 1-3/7');
    assert.equal(await readFile(out, 'utf8'), '"a"');
  });

  it('s3api_head_object_missing_fails_with_404', async () => {
    const r = await c.aws(['s3api', 'head-object', '--bucket', 'data', '--key', 'api/missing']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /404|Not Found/);
  });

  it('s3api_copy_and_delete_objects', async () => {
    await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'api/src', Body: 'copy me' }));
    await c.ok(['s3api', 'copy-object', '--bucket', 'data', '--key', 'api/dst', '--copy-source', 'data/api/src']);
    assert.equal((await c.objectBytes('api/dst')).toString(), 'copy me');
    const del = JSON.parse(
      await c.ok(['s3api', 'delete-objects', '--bucket', 'data', '--delete', JSON.stringify({ Objects: [{ Key: 'api/src' }, { Key: 'api/dst' }] })]),
    ) as { Deleted: { Key: string }[] };
    assert.deepEqual(del.Deleted.map((d) => d.Key).sort(), ['api/dst', 'api/src']);
    assert.equal(await c.exists('api/src'), false);
  });

  it('s3api_list_objects_v2_paginates', async () => {
    for (let i = 0; i < 7; i++) await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: `pg/${i}`, Body: 'x' }));
    const r = JSON.parse(await c.ok(['s3api', 'list-objects-v2', '--bucket', 'data', '--prefix', 'pg/', '--page-size', '2'])) as {
      Contents: { Key: string }[];
    };
    assert.deepEqual(r.Contents.map((x) => x.Key), ['pg/0', 'pg/1', 'pg/2', 'pg/3', 'pg/4', 'pg/5', 'pg/6']);
  });

  it('s3_wrong_secret_is_SignatureDoesNotMatch', async () => {
    const src = path.join(c.dir, 'denied.txt');
    await writeFile(src, 'no');
    const r = await c.aws(['s3', 'cp', src, 's3://data/cli/denied.txt'], { creds: { accessKeyId: TEST_CREDS.accessKeyId, secretAccessKey: 'wrong' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SignatureDoesNotMatch/);
    assert.equal(await c.exists('cli/denied.txt'), false);
  });

  it('s3_foreign_bucket_is_AccessDenied', async () => {
    const r = await c.aws(['s3', 'ls', 's3://other/']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /AccessDenied/);
  });
});
