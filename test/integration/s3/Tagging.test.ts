/**
 * Object tagging end to end: Put/Get/DeleteObjectTagging round trips, `x-amz-tagging` on PutObject and
 * CreateMultipartUpload, `x-amz-tagging-directive` on CopyObject, `x-amz-tagging-count` on GET/HEAD,
 * and S3's limits (InvalidTag) and errors (NoSuchKey, MalformedXML, AccessDenied).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type Tag,
} from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectRawError, expectS3Error, rawRequest } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 0 });
});
after(() => t?.stop());

const put = (key: string, tagging?: string) =>
  t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: `body of ${key}`, ...(tagging !== undefined ? { Tagging: tagging } : {}) }));
const tagsOf = async (key: string) => (await t.client.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: key }))).TagSet ?? [];
const putTags = (key: string, tags: Tag[]) => t.client.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: key, Tagging: { TagSet: tags } }));
const sorted = (tags: Tag[]) => [...tags].sort((a, b) => (a.Key! < b.Key! ? -1 : 1));

describe('object tagging', () => {
  it('ObjectTagging_round_trip_and_tag_count', async () => {
    await put('tg/a');
    assert.deepEqual(await tagsOf('tg/a'), []);
    const head0 = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'tg/a' }));
    assert.equal(head0.TagCount, undefined, 'no x-amz-tagging-count without tags');
    const tags = [{ Key: 'project', Value: 'blue' }, { Key: 'Classification', Value: 'PHI' }, { Key: 'empty', Value: '' }];
    await putTags('tg/a', tags);
    assert.deepEqual(sorted(await tagsOf('tg/a')), sorted(tags));
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'tg/a' }));
    assert.equal(head.TagCount, 3);
    const get = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'tg/a' }));
    await bytesOf(get.Body);
    assert.equal(get.TagCount, 3);
    await putTags('tg/a', [{ Key: 'only', Value: 'one' }]);
    assert.deepEqual(await tagsOf('tg/a'), [{ Key: 'only', Value: 'one' }], 'PutObjectTagging replaces the set');
    await t.client.send(new DeleteObjectTaggingCommand({ Bucket: 'data', Key: 'tg/a' }));
    assert.deepEqual(await tagsOf('tg/a'), []);
  });

  it('PutObject_with_x_amz_tagging', async () => {
    await put('tg/header', 'a=1&b=two%20words&c=%C3%A9t%C3%A9&d=x%2By%3Dz');
    assert.deepEqual(sorted(await tagsOf('tg/header')), [
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: 'two words' },
      { Key: 'c', Value: 'été' },
      { Key: 'd', Value: 'x+y=z' },
    ]);
    await put('tg/header', 'x=y');
    assert.deepEqual(await tagsOf('tg/header'), [{ Key: 'x', Value: 'y' }], 'an overwrite takes the new tags');
    await put('tg/header');
    assert.deepEqual(await tagsOf('tg/header'), [], 'an overwrite without tags has none');
  });

  it('CopyObject_tagging_directive', async () => {
    await put('tg/src', 'k=v');
    await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'tg/copy', CopySource: 'data/tg/src' }));
    assert.deepEqual(await tagsOf('tg/copy'), [{ Key: 'k', Value: 'v' }], 'COPY is the default');
    await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'tg/replaced', CopySource: 'data/tg/src', TaggingDirective: 'REPLACE', Tagging: 'new=tag' }));
    assert.deepEqual(await tagsOf('tg/replaced'), [{ Key: 'new', Value: 'tag' }]);
    await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'tg/cleared', CopySource: 'data/tg/src', TaggingDirective: 'REPLACE' }));
    assert.deepEqual(await tagsOf('tg/cleared'), []);
    const bad = await rawRequest(t.endpoint, {
      method: 'PUT', path: '/data/tg/bad-dir', headers: { 'x-amz-copy-source': '/data/tg/src', 'x-amz-tagging-directive': 'MERGE' },
    });
    expectRawError(bad, 'InvalidArgument', 400);
  });

  it('CreateMultipartUpload_with_tags', async () => {
    const id = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'tg/mp', Tagging: 'stage=raw&n=1' }))).UploadId!;
    const p = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: 'tg/mp', UploadId: id, PartNumber: 1, Body: 'only part' }));
    await t.client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'tg/mp', UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p.ETag! }] } }));
    assert.deepEqual(sorted(await tagsOf('tg/mp')), [{ Key: 'n', Value: '1' }, { Key: 'stage', Value: 'raw' }]);
    assert.equal((await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'tg/mp' }))).TagCount, 2);
  });
});

describe('object tagging limits and errors', () => {
  it('Tagging_limits_are_InvalidTag', async () => {
    await put('tg/limits');
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const cases: Tag[][] = [
      eleven,
      [{ Key: 'k'.repeat(129), Value: 'v' }],
      [{ Key: 'k', Value: 'v'.repeat(257) }],
      [{ Key: 'dup', Value: '1' }, { Key: 'dup', Value: '2' }],
      [{ Key: 'aws:reserved', Value: 'v' }],
      [{ Key: 'bad#char', Value: 'v' }],
    ];
    for (const tags of cases) await expectS3Error(putTags('tg/limits', tags), 'InvalidTag', 400);
    // The limits count Unicode characters, not bytes: 128 CJK letters (384 bytes) are a valid key.
    await putTags('tg/limits', [{ Key: '語'.repeat(128), Value: 'é'.repeat(256) }, ...eleven.slice(0, 9)]);
    await expectS3Error(putTags('tg/limits', [{ Key: '語'.repeat(129), Value: 'v' }]), 'InvalidTag', 400);
    assert.equal((await tagsOf('tg/limits')).length, 10);
    await expectS3Error(put('tg/limits-header', 'aws:x=1'), 'InvalidTag', 400);
    await expectS3Error(put('tg/limits-header', Array.from({ length: 11 }, (_, i) => `k${i}=v`).join('&')), 'InvalidTag', 400);
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/tg/limits-header', headers: { 'x-amz-tagging': 'a=%ZZ' }, body: 'x' });
    expectRawError(res, 'InvalidArgument', 400);
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'tg/limits-header' })), 'NotFound', 404);
  });

  it('Tagging_of_a_missing_key_is_NoSuchKey', async () => {
    await expectS3Error(t.client.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'tg/none' })), 'NoSuchKey', 404);
    await expectS3Error(putTags('tg/none', [{ Key: 'a', Value: 'b' }]), 'NoSuchKey', 404);
    await expectS3Error(t.client.send(new DeleteObjectTaggingCommand({ Bucket: 'data', Key: 'tg/none' })), 'NoSuchKey', 404);
  });

  it('Tagging_malformed_bodies_are_MalformedXML', async () => {
    await put('tg/xml');
    const bodies = ['', '<Tagging/>', '<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>', '<Other/>', '<Tagging><TagSet>'];
    for (const body of bodies) {
      expectRawError(await rawRequest(t.endpoint, { method: 'PUT', path: '/data/tg/xml', query: { tagging: '' }, body }), 'MalformedXML', 400);
    }
  });

  it('Tagging_of_another_tenants_object_is_AccessDenied', async () => {
    await put('tg/private', 'secret=yes');
    await expectS3Error(t.otherClient.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'tg/private' })), 'AccessDenied', 403);
    await expectS3Error(
      t.otherClient.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: 'tg/private', Tagging: { TagSet: [] } })),
      'AccessDenied',
      403,
    );
    assert.deepEqual(await tagsOf('tg/private'), [{ Key: 'secret', Value: 'yes' }]);
  });
});
