import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authorize, clipListing, grantOf } from '../../../src/s3/access.js';
import type { AuthenticatedRequest } from '../../../src/s3/auth/types.js';
import { S3Error } from '../../../src/s3/errors.js';
import type { S3Op } from '../../../src/s3/router.js';
import type { Credential } from '../../../src/core/types.js';

const g = (prefix: string) => ({ bucket: 'b', permission: 'read_write' as const, prefix });
const isDenied = (err: unknown) => err instanceof S3Error && err.code === 'AccessDenied';

function auth(credential: Credential): AuthenticatedRequest {
  return { credential } as unknown as AuthenticatedRequest;
}

describe('clipListing', () => {
  test('a request prefix under the grant lists as asked', () => {
    assert.deepEqual(clipListing(g('team/a/'), 'team/a/x', '/'), { kind: 'list', prefix: 'team/a/x' });
    assert.deepEqual(clipListing(g(''), '', '/'), { kind: 'list', prefix: '' });
  });

  test('a shorter request prefix lists under the grant, or rolls up into one common prefix', () => {
    assert.deepEqual(clipListing(g('team/a/'), '', undefined), { kind: 'list', prefix: 'team/a/' });
    assert.deepEqual(clipListing(g('team/a/'), 'te', '/'), { kind: 'one-prefix', commonPrefix: 'team/', grantPrefix: 'team/a/' });
    assert.deepEqual(clipListing(g('team/a/'), 'team/', '/'), { kind: 'one-prefix', commonPrefix: 'team/a/', grantPrefix: 'team/a/' });
    // No delimiter inside the grant's rest: the listing under the grant's prefix is the exact answer.
    assert.deepEqual(clipListing(g('team/a'), 'team/', '/'), { kind: 'list', prefix: 'team/a' });
    assert.deepEqual(clipListing(g('logs-2024'), 'lo', '/'), { kind: 'list', prefix: 'logs-2024' });
  });

  test('disjoint prefixes and delimiters crossing the end of the grant are refused', () => {
    assert.throws(() => clipListing(g('team/a/'), 'team/b', '/'), isDenied);
    assert.throws(() => clipListing(g('team/a/'), 'x', undefined), isDenied);
    // "ab" may start with the grant's last "a" and end in the key: not answerable exactly.
    assert.throws(() => clipListing(g('data'), 'd', 'ab'), isDenied);
    assert.deepEqual(clipListing(g('data'), 'd', 'xy'), { kind: 'list', prefix: 'data' });
    assert.deepEqual(clipListing(g('dxya'), 'd', 'xy'), { kind: 'one-prefix', commonPrefix: 'dxy', grantPrefix: 'dxya' });
  });
});

describe('authorize', () => {
  const ro: Credential = { accessKeyId: 'RO', secretAccessKey: 's', buckets: ['b'], grants: [{ bucket: 'b', permission: 'read', prefix: '' }] };
  const pre: Credential = { accessKeyId: 'P', secretAccessKey: 's', buckets: ['b', 'c'], grants: [g('p/'), { bucket: 'c', permission: 'read', prefix: '' }] };
  const legacy: Credential = { accessKeyId: 'L', secretAccessKey: 's', buckets: ['b'] };

  const ok = (c: Credential, op: S3Op) => assert.doesNotThrow(() => authorize(auth(c), op));
  const no = (c: Credential, op: S3Op) => assert.throws(() => authorize(auth(c), op), isDenied);

  test('read-only grants allow reads only', () => {
    ok(ro, { op: 'GetObject', bucket: 'b', key: 'k', overrides: {} });
    ok(ro, { op: 'ListParts', bucket: 'b', key: 'k', uploadId: 'u', maxParts: 1 });
    no(ro, { op: 'PutObject', bucket: 'b', key: 'k' });
    no(ro, { op: 'DeleteObjects', bucket: 'b' });
    no(ro, { op: 'UploadPart', bucket: 'b', key: 'k', uploadId: 'u', partNumber: 1 });
    no(ro, { op: 'PutBucketCors', bucket: 'b' });
    no(ro, { op: 'GetObject', bucket: 'x', key: 'k', overrides: {} });
  });

  test('prefixes confine both ends of a copy; bucket configuration needs the whole bucket', () => {
    ok(pre, { op: 'CopyObject', bucket: 'b', key: 'p/x', srcBucket: 'c', srcKey: 'anything' });
    no(pre, { op: 'CopyObject', bucket: 'b', key: 'q/x', srcBucket: 'b', srcKey: 'p/x' });
    no(pre, { op: 'CopyObject', bucket: 'b', key: 'p/x', srcBucket: 'b', srcKey: 'q/x' });
    no(pre, { op: 'UploadPartCopy', bucket: 'b', key: 'p/x', uploadId: 'u', partNumber: 1, srcBucket: 'b', srcKey: 'secret' });
    no(pre, { op: 'CopyObject', bucket: 'c', key: 'x', srcBucket: 'b', srcKey: 'p/x' });
    no(pre, { op: 'DeleteBucketCors', bucket: 'b' });
    ok(pre, { op: 'GetBucketCors', bucket: 'b' });
  });

  test('a credential without grants (hand-built) is read-write on its buckets', () => {
    assert.deepEqual(grantOf(legacy, 'b'), { bucket: 'b', permission: 'read_write', prefix: '' });
    ok(legacy, { op: 'PutObject', bucket: 'b', key: 'k' });
    no(legacy, { op: 'PutObject', bucket: 'c', key: 'k' });
  });
});
