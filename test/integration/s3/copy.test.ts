/**
 * CopyObject: same bucket, across the two buckets of one credential, metadata directive COPY and
 * REPLACE, copy-source conditions, and the access rules (a credential needs both buckets).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BOTH_CREDS, clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectS3Error, patternBytes, sha256 } from './helpers.js';

let t: TestOrchestrator;
let both: S3Client;
const data = patternBytes(300_000, 11);
before(async () => {
  t = await startTestOrchestrator();
  both = clientFor(t.endpoint, BOTH_CREDS);
  await t.client.send(
    new PutObjectCommand({
      Bucket: 'data',
      Key: 'src/original',
      Body: data,
      ContentType: 'application/x-original',
      CacheControl: 'max-age=1',
      Metadata: { origin: 'source' },
    }),
  );
});
after(async () => {
  both?.destroy();
  await t?.stop();
});

async function read(client: S3Client, bucket: string, key: string) {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { got, body: await bytesOf(got.Body) };
}

describe('CopyObject', () => {
  it('CopyObject_same_bucket_copies_bytes_and_metadata', async () => {
    const r = await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'dst/copy', CopySource: 'data/src/original' }));
    const src = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'src/original' }));
    assert.equal(r.CopyObjectResult?.ETag, src.ETag);
    const { got, body } = await read(t.client, 'data', 'dst/copy');
    assert.equal(sha256(body), sha256(data));
    assert.equal(got.ContentType, 'application/x-original');
    assert.equal(got.CacheControl, 'max-age=1');
    assert.deepEqual(got.Metadata, { origin: 'source' });
  });

  it('CopyObject_metadata_directive_replace', async () => {
    await t.client.send(
      new CopyObjectCommand({
        Bucket: 'data',
        Key: 'dst/replaced',
        CopySource: 'data/src/original',
        MetadataDirective: 'REPLACE',
        ContentType: 'text/x-replaced',
        Metadata: { fresh: 'yes' },
      }),
    );
    const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dst/replaced' }));
    assert.equal(h.ContentType, 'text/x-replaced');
    assert.equal(h.CacheControl, undefined, 'REPLACE drops headers not given');
    assert.deepEqual(h.Metadata, { fresh: 'yes' });
    assert.equal(h.ContentLength, data.length);
  });

  it('CopyObject_onto_itself_with_replace_updates_metadata', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'self', Body: 'self body', Metadata: { v: '1' } }));
    await t.client.send(
      new CopyObjectCommand({ Bucket: 'data', Key: 'self', CopySource: 'data/self', MetadataDirective: 'REPLACE', Metadata: { v: '2' } }),
    );
    const { got, body } = await read(t.client, 'data', 'self');
    assert.equal(body.toString(), 'self body');
    assert.deepEqual(got.Metadata, { v: '2' });
  });

  it('CopyObject_onto_itself_without_change_is_InvalidRequest', async () => {
    await expectS3Error(
      t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'src/original', CopySource: 'data/src/original' })),
      'InvalidRequest',
      400,
    );
  });

  it('CopyObject_odd_source_key', async () => {
    const key = 'src/a b+c%d?e#f/ü';
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: 'odd source' }));
    await t.client.send(
      new CopyObjectCommand({ Bucket: 'data', Key: 'dst/from-odd', CopySource: `data/${encodeURIComponent(key)}` }),
    );
    assert.equal((await read(t.client, 'data', 'dst/from-odd')).body.toString(), 'odd source');
  });

  it('CopyObject_missing_source_is_NoSuchKey', async () => {
    await expectS3Error(
      t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'dst/none', CopySource: 'data/src/missing' })),
      'NoSuchKey',
      404,
    );
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dst/none' })), 'NotFound', 404);
  });

  it('CopyObject_copy_source_if_match', async () => {
    await expectS3Error(
      t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'dst/cond', CopySource: 'data/src/original', CopySourceIfMatch: '"00"' })),
      'PreconditionFailed',
      412,
    );
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'dst/cond' })), 'NotFound', 404);
  });
});

describe('CopyObject across buckets', () => {
  it('CopyObject_across_the_credentials_buckets', async () => {
    await both.send(new CopyObjectCommand({ Bucket: 'other', Key: 'imported', CopySource: 'data/src/original' }));
    const { got, body } = await read(both, 'other', 'imported');
    assert.equal(sha256(body), sha256(data));
    assert.deepEqual(got.Metadata, { origin: 'source' });
    // The owner of `other` sees it too; the source is untouched.
    assert.equal(sha256((await read(t.otherClient, 'other', 'imported')).body), sha256(data));
    assert.equal(sha256((await read(t.client, 'data', 'src/original')).body), sha256(data));
  });

  it('CopyObject_from_foreign_bucket_is_AccessDenied', async () => {
    await expectS3Error(
      t.otherClient.send(new CopyObjectCommand({ Bucket: 'other', Key: 'stolen', CopySource: 'data/src/original' })),
      'AccessDenied',
      403,
    );
    await expectS3Error(t.otherClient.send(new HeadObjectCommand({ Bucket: 'other', Key: 'stolen' })), 'NotFound', 404);
  });

  it('CopyObject_into_foreign_bucket_is_AccessDenied', async () => {
    await expectS3Error(
      t.client.send(new CopyObjectCommand({ Bucket: 'other', Key: 'pushed', CopySource: 'data/src/original' })),
      'AccessDenied',
      403,
    );
    await expectS3Error(t.otherClient.send(new HeadObjectCommand({ Bucket: 'other', Key: 'pushed' })), 'NotFound', 404);
  });
});
