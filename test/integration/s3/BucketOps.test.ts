/**
 * Bucket operations and the edges of the API surface: CreateBucket on an owned bucket (us-east-1
 * "already yours" success, LocationConstraint rules), on a foreign one (AccessDenied), DeleteBucket
 * (AccessDenied: buckets are managed by the control plane), GetBucketVersioning, HEAD with a Range, and
 * subresources that stay NotImplemented.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetObjectAclCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, expectS3Error, rawRequest } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 0 });
});
after(() => t?.stop());

describe('bucket operations', () => {
  it('CreateBucket_owned_bucket_answers_200_with_Location', async () => {
    const r = await t.client.send(new CreateBucketCommand({ Bucket: 'data' }));
    assert.equal(r.Location, '/data');
    const withRegion = await t.client.send(new CreateBucketCommand({ Bucket: 'data', CreateBucketConfiguration: { LocationConstraint: 'us-east-1' as never } }));
    assert.equal(withRegion.Location, '/data');
  });

  it('CreateBucket_other_region_is_IllegalLocationConstraintException', async () => {
    await expectS3Error(
      t.client.send(new CreateBucketCommand({ Bucket: 'data', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })),
      'IllegalLocationConstraintException',
      400,
    );
    const bad = await rawRequest(t.endpoint, {
      method: 'PUT', path: '/data',
      body: '<CreateBucketConfiguration><LocationConstraint>Not A Region!</LocationConstraint></CreateBucketConfiguration>',
    });
    expectRawError(bad, 'InvalidLocationConstraint', 400);
    const malformed = await rawRequest(t.endpoint, { method: 'PUT', path: '/data', body: '<CreateBucketConfiguration>' });
    expectRawError(malformed, 'MalformedXML', 400);
  });

  it('CreateBucket_foreign_or_unknown_bucket_is_AccessDenied', async () => {
    await expectS3Error(t.otherClient.send(new CreateBucketCommand({ Bucket: 'data' })), 'AccessDenied', 403);
    await expectS3Error(t.client.send(new CreateBucketCommand({ Bucket: 'brand-new-bucket' })), 'AccessDenied', 403);
  });

  it('DeleteBucket_is_AccessDenied', async () => {
    await expectS3Error(t.client.send(new DeleteBucketCommand({ Bucket: 'data' })), 'AccessDenied', 403);
  });

  it('GetBucketVersioning_is_never_enabled', async () => {
    const r = await t.client.send(new GetBucketVersioningCommand({ Bucket: 'data' }));
    assert.equal(r.Status, undefined);
    assert.equal(r.MFADelete, undefined);
  });

  it('Other_subresources_are_NotImplemented', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ops/x', Body: 'x' }));
    await expectS3Error(t.client.send(new GetBucketTaggingCommand({ Bucket: 'data' })), 'NotImplemented', 501);
    await expectS3Error(
      t.client.send(new PutBucketVersioningCommand({ Bucket: 'data', VersioningConfiguration: { Status: 'Enabled' } })),
      'NotImplemented',
      501,
    );
    await expectS3Error(t.client.send(new GetObjectAclCommand({ Bucket: 'data', Key: 'ops/x' })), 'NotImplemented', 501);
  });

  it('HeadObject_with_a_Range_answers_206_like_GET', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ops/ranged', Body: '0123456789' }));
    const r = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'ops/ranged', Range: 'bytes=2-5' }));
    assert.equal(r.$metadata.httpStatusCode, 206);
    assert.equal(r.ContentLength, 4);
    assert.equal(r.ContentRange, 'bytes 2-5/10');
    const suffix = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'ops/ranged', Range: 'bytes=-3' }));
    assert.equal(suffix.ContentRange, 'bytes 7-9/10');
    const whole = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'ops/ranged' }));
    assert.equal(whole.$metadata.httpStatusCode, 200);
    assert.equal(whole.ContentLength, 10);
    const beyond = await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/ops/ranged', headers: { range: 'bytes=10-' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], 'bytes */10');
  });
});
