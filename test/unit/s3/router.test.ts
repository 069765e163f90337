/**
 * The router, table-driven: every operation path-style and virtual-hosted (multipart, tagging, CORS
 * included), subresources that must be NotImplemented, multipart parameters, key decoding edge cases,
 * key and bucket validation, listing parameters.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { route, parseCopySource, isValidBucketName, type S3Op } from '../../../src/s3/router.js';
import { S3Error } from '../../../src/s3/errors.js';

const cfg = { virtualHostDomains: ['s3.example.com', 'localhost'] };

function r(method: string, url: string, headers: Record<string, string> = {}): S3Op {
  const q = url.indexOf('?');
  return route(
    { method, rawPath: q < 0 ? url : url.slice(0, q), rawQuery: q < 0 ? '' : url.slice(q + 1), headers: { host: '127.0.0.1:9000', ...headers } },
    cfg,
  );
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof S3Error, `not an S3Error: ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

describe('router: operations', () => {
  const cases: [string, string, Record<string, string>, Partial<S3Op> & { op: S3Op['op'] }][] = [
    ['GET', '/', {}, { op: 'ListBuckets' }],
    ['HEAD', '/bkt', {}, { op: 'HeadBucket', bucket: 'bkt' }],
    ['GET', '/bkt?location', {}, { op: 'GetBucketLocation', bucket: 'bkt' }],
    ['GET', '/bkt?versioning', {}, { op: 'GetBucketVersioning', bucket: 'bkt' }],
    ['PUT', '/bkt', {}, { op: 'CreateBucket', bucket: 'bkt' }],
    ['PUT', '/bkt/', {}, { op: 'CreateBucket', bucket: 'bkt' }],
    ['DELETE', '/bkt', {}, { op: 'DeleteBucket', bucket: 'bkt' }],
    ['GET', '/bkt?list-type=2&prefix=a%2Fb&delimiter=%2F&max-keys=10&fetch-owner=true&x-id=ListObjectsV2', {},
      { op: 'ListObjectsV2', bucket: 'bkt', prefix: 'a/b', delimiter: '/', maxKeys: 10, fetchOwner: true, encodeUrl: false }],
    ['GET', '/bkt?marker=m&encoding-type=url', {}, { op: 'ListObjects', bucket: 'bkt', prefix: '', marker: 'm', maxKeys: 1000, encodeUrl: true }],
    ['GET', '/bkt/', {}, { op: 'ListObjects', bucket: 'bkt' }],
    ['PUT', '/bkt/k', {}, { op: 'PutObject', bucket: 'bkt', key: 'k' }],
    ['GET', '/bkt/k?response-content-type=text%2Fplain', {}, { op: 'GetObject', bucket: 'bkt', key: 'k', overrides: { 'Content-Type': 'text/plain' } }],
    ['GET', '/bkt/k?versionId=null', {}, { op: 'GetObject', bucket: 'bkt', key: 'k' }],
    ['GET', '/bkt/k?partNumber=1', {}, { op: 'GetObject', bucket: 'bkt', key: 'k', partNumber: 1 }],
    ['HEAD', '/bkt/k?partNumber=7', {}, { op: 'HeadObject', bucket: 'bkt', key: 'k', partNumber: 7 }],
    ['HEAD', '/bkt/k', {}, { op: 'HeadObject', bucket: 'bkt', key: 'k' }],
    ['DELETE', '/bkt/k', {}, { op: 'DeleteObject', bucket: 'bkt', key: 'k' }],
    ['POST', '/bkt?delete', {}, { op: 'DeleteObjects', bucket: 'bkt' }],
    ['PUT', '/bkt/k', { 'x-amz-copy-source': '/src-b/a%20b' }, { op: 'CopyObject', bucket: 'bkt', key: 'k', srcBucket: 'src-b', srcKey: 'a b' }],
    // Multipart uploads.
    ['POST', '/bkt/k?uploads', {}, { op: 'CreateMultipartUpload', bucket: 'bkt', key: 'k' }],
    ['PUT', '/bkt/k?partNumber=3&uploadId=u%2B1', {}, { op: 'UploadPart', bucket: 'bkt', key: 'k', uploadId: 'u+1', partNumber: 3 }],
    ['PUT', '/bkt/k?partNumber=10000&uploadId=u', { 'x-amz-copy-source': 'src/a%2Fb' },
      { op: 'UploadPartCopy', bucket: 'bkt', key: 'k', uploadId: 'u', partNumber: 10000, srcBucket: 'src', srcKey: 'a/b' }],
    ['POST', '/bkt/k?uploadId=u', {}, { op: 'CompleteMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'u' }],
    ['DELETE', '/bkt/k?uploadId=u', {}, { op: 'AbortMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'u' }],
    ['GET', '/bkt/k?uploadId=u', {}, { op: 'ListParts', bucket: 'bkt', key: 'k', uploadId: 'u', maxParts: 1000, partNumberMarker: undefined }],
    ['GET', '/bkt/k?uploadId=u&max-parts=2&part-number-marker=7', {}, { op: 'ListParts', maxParts: 2, partNumberMarker: 7 }],
    ['GET', '/bkt?uploads', {}, { op: 'ListMultipartUploads', bucket: 'bkt', prefix: '', maxUploads: 1000, encodeUrl: false, keyMarker: undefined }],
    ['GET', '/bkt?uploads&prefix=p%2F&delimiter=%2F&key-marker=k&upload-id-marker=u&max-uploads=5000&encoding-type=url', {},
      { op: 'ListMultipartUploads', prefix: 'p/', delimiter: '/', keyMarker: 'k', uploadIdMarker: 'u', maxUploads: 1000, encodeUrl: true }],
    // upload-id-marker means nothing without key-marker.
    ['GET', '/bkt?uploads&upload-id-marker=u', {}, { op: 'ListMultipartUploads', uploadIdMarker: undefined }],
    // Tagging and CORS.
    ['GET', '/bkt/k?tagging', {}, { op: 'GetObjectTagging', bucket: 'bkt', key: 'k' }],
    ['PUT', '/bkt/k?tagging', {}, { op: 'PutObjectTagging', bucket: 'bkt', key: 'k' }],
    ['DELETE', '/bkt/k?tagging&versionId=null', {}, { op: 'DeleteObjectTagging', bucket: 'bkt', key: 'k' }],
    ['GET', '/bkt?cors', {}, { op: 'GetBucketCors', bucket: 'bkt' }],
    ['PUT', '/bkt?cors', {}, { op: 'PutBucketCors', bucket: 'bkt' }],
    ['DELETE', '/bkt?cors', {}, { op: 'DeleteBucketCors', bucket: 'bkt' }],
    ['OPTIONS', '/bkt/a%20b', {}, { op: 'CorsPreflight', bucket: 'bkt', key: 'a b' }],
    ['OPTIONS', '/bkt', {}, { op: 'CorsPreflight', bucket: 'bkt', key: undefined }],
    ['OPTIONS', '/k?uploads', { host: 'bkt.s3.example.com' }, { op: 'CorsPreflight', bucket: 'bkt', key: 'k' }],
    // Virtual-hosted style, host with and without port.
    ['GET', '/', { host: 'bkt.s3.example.com' }, { op: 'ListObjects', bucket: 'bkt' }],
    ['GET', '/some/key', { host: 'bkt.s3.example.com:9000' }, { op: 'GetObject', bucket: 'bkt', key: 'some/key' }],
    ['PUT', '/k', { host: 'my.bkt.localhost:9000' }, { op: 'PutObject', bucket: 'my.bkt', key: 'k' }],
    ['GET', '/bkt/k', { host: 's3.example.com' }, { op: 'GetObject', bucket: 'bkt', key: 'k' }],
  ];
  for (const [method, url, headers, want] of cases) {
    test(`${method} ${url} ${headers.host ?? ''} → ${want.op}`, () => {
      const got = r(method, url, headers);
      for (const [k, v] of Object.entries(want)) assert.deepEqual((got as Record<string, unknown>)[k], v, k);
    });
  }
});

describe('router: never falls through to object operations', () => {
  const cases: [string, string][] = [
    ['GET', '/bkt/k?acl'], ['PUT', '/bkt/k?acl'], ['GET', '/bkt?tagging'], ['PUT', '/bkt?tagging'],
    ['DELETE', '/bkt?tagging'], ['PUT', '/bkt/k?partNumber=1'], ['GET', '/bkt/k?tagging&versionId=abc'],
    ['POST', '/bkt/k?uploadId=x&tagging'], ['DELETE', '/bkt/k?uploadId=x&acl'], ['GET', '/bkt/k?uploadId=x&tagging'],
    ['GET', '/bkt?uploads&cors'], ['GET', '/bkt?versions'], ['PUT', '/bkt?versioning'], ['PUT', '/bkt/k?cors'],
    ['PUT', '/bkt?lifecycle'], ['GET', '/bkt?policy'], ['DELETE', '/bkt?website'], ['PUT', '/bkt/k?legal-hold'],
    ['PUT', '/bkt/k?retention'], ['GET', '/bkt/k?torrent'], ['POST', '/bkt/k?select&select-type=2'],
    ['POST', '/bkt/k?restore'], ['GET', '/bkt/k?attributes'], ['GET', '/bkt/k?versionId=abc'],
    ['DELETE', '/bkt/k?versionId=abc'], ['POST', '/bkt'], ['POST', '/bkt?uploads'],
    ['GET', '/bkt?acl'], ['GET', '/?acl'], ['GET', '/bkt/k?list-type=2'], ['PUT', '/bkt/k?uploads'],
  ];
  for (const [method, url] of cases) {
    test(`${method} ${url} → NotImplemented`, () => assert.equal(code(() => r(method, url)), 'NotImplemented'));
  }
  test('copy source with a version id → NotImplemented unless null', () => {
    assert.equal(code(() => r('PUT', '/bkt/k', { 'x-amz-copy-source': 'src/k?versionId=123' })), 'NotImplemented');
    assert.deepEqual(parseCopySource('src/k%3Fx?versionId=null'), { srcBucket: 'src', srcKey: 'k?x' });
  });
});

describe('router: multipart parameters', () => {
  test('partNumber must be an integer from 1 to 10000 → InvalidArgument', () => {
    for (const bad of ['0', '10001', '-1', '1.5', 'x', '', '000001']) {
      assert.equal(code(() => r('PUT', `/bkt/k?uploadId=u&partNumber=${bad}`)), 'InvalidArgument', bad);
    }
    assert.equal(code(() => r('PUT', '/bkt/k?uploadId=u')), 'InvalidArgument', 'missing partNumber');
    for (const bad of ['0', '10001', 'x', '']) assert.equal(code(() => r('GET', `/bkt/k?partNumber=${bad}`)), 'InvalidArgument', `GET ${bad}`);
    assert.equal(code(() => r('PUT', '/bkt/k?uploadId=u&partNumber=1', { 'x-amz-copy-source': 'nobucket' })), 'InvalidArgument');
  });
  test('max-parts, part-number-marker and max-uploads must be integers', () => {
    assert.equal(code(() => r('GET', '/bkt/k?uploadId=u&max-parts=x')), 'InvalidArgument');
    assert.equal(code(() => r('GET', '/bkt/k?uploadId=u&part-number-marker=-1')), 'InvalidArgument');
    assert.equal(code(() => r('GET', '/bkt?uploads&max-uploads=1.5')), 'InvalidArgument');
    assert.equal(code(() => r('GET', '/bkt?uploads&encoding-type=base64')), 'InvalidArgument');
  });
  test('OPTIONS on the service is MethodNotAllowed', () => {
    assert.equal(code(() => r('OPTIONS', '/')), 'MethodNotAllowed');
  });
});

describe('router: keys', () => {
  const cases: [string, string][] = [
    ['/bkt/a//b', 'a//b'],
    ['/bkt/../x/./y', '../x/./y'],
    ['/bkt/a%20b', 'a b'],
    ['/bkt/a+b', 'a+b'],
    ['/bkt/a%2Bb', 'a+b'],
    ['/bkt/100%25', '100%'],
    ['/bkt/%2525', '%25'],
    ['/bkt/dir/', 'dir/'],
    ['/bkt/%E2%82%AC%F0%9F%98%80', '€😀'],
    ['/bkt/%3F%23%26', '?#&'],
  ];
  for (const [path, key] of cases) {
    test(`${path} → ${JSON.stringify(key)}`, () => {
      const op = r('GET', path);
      assert.equal(op.op, 'GetObject');
      assert.equal((op as { key: string }).key, key);
    });
  }
  test('a key of 1024 bytes is fine, 1025 is KeyTooLongError (counted in UTF-8)', () => {
    assert.equal(code(() => r('PUT', `/bkt/${'a'.repeat(1024)}`)), 'no error');
    assert.equal(code(() => r('PUT', `/bkt/${'a'.repeat(1025)}`)), 'KeyTooLongError');
    assert.equal(code(() => r('PUT', `/bkt/${'%C3%A9'.repeat(513)}`)), 'KeyTooLongError');
  });
  test('bad percent-encoding and invalid UTF-8 → InvalidURI', () => {
    assert.equal(code(() => r('GET', '/bkt/%ZZ')), 'InvalidURI');
    assert.equal(code(() => r('GET', '/bkt/%C3')), 'InvalidURI');
  });
});

describe('router: buckets and listings', () => {
  test('bucket names', () => {
    for (const ok of ['abc', 'a.b-c', '1bucket', 'x'.repeat(63)]) assert.ok(isValidBucketName(ok), ok);
    for (const bad of ['ab', 'Abc', 'a_b', '-ab', 'ab-', 'a..b', '192.168.1.1', 'x'.repeat(64), 'xn--ab', 'a.-b']) {
      assert.ok(!isValidBucketName(bad), bad);
    }
    assert.equal(code(() => r('GET', '/Bad_Bucket/k')), 'InvalidBucketName');
  });
  test('max-keys: default and cap 1000, invalid values InvalidArgument', () => {
    assert.equal((r('GET', '/bkt?list-type=2&max-keys=5000') as { maxKeys: number }).maxKeys, 1000);
    assert.equal((r('GET', '/bkt?list-type=2&max-keys=0') as { maxKeys: number }).maxKeys, 0);
    for (const bad of ['-1', 'abc', '1.5', '99999999999999']) {
      assert.equal(code(() => r('GET', `/bkt?list-type=2&max-keys=${bad}`)), 'InvalidArgument', bad);
    }
  });
  test('list-type other than 2 and unknown encoding-type are InvalidArgument', () => {
    assert.equal(code(() => r('GET', '/bkt?list-type=3')), 'InvalidArgument');
    assert.equal(code(() => r('GET', '/bkt?encoding-type=base64')), 'InvalidArgument');
  });
  test('query values: + is a space, %2B a plus; first repeated value wins', () => {
    const op = r('GET', '/bkt?list-type=2&prefix=a+b%2Bc&start-after=x&start-after=y&continuation-token=dG9r') as Extract<S3Op, { op: 'ListObjectsV2' }>;
    assert.equal(op.prefix, 'a b+c');
    assert.equal(op.startAfter, 'x');
    assert.equal(op.continuationToken, 'dG9r');
  });
  test('methods not allowed on the service and on objects', () => {
    assert.equal(code(() => r('PUT', '/')), 'MethodNotAllowed');
    assert.equal(code(() => r('PATCH', '/bkt/k')), 'MethodNotAllowed');
  });
  test('copy source parsing', () => {
    assert.deepEqual(parseCopySource('bkt/a/b'), { srcBucket: 'bkt', srcKey: 'a/b' });
    assert.deepEqual(parseCopySource('/bkt/a%2Bb+c'), { srcBucket: 'bkt', srcKey: 'a+b+c' });
    assert.equal(code(() => parseCopySource('bkt')), 'InvalidArgument');
    assert.equal(code(() => parseCopySource('bkt/')), 'InvalidArgument');
    assert.equal(code(() => parseCopySource('BAD/k')), 'InvalidBucketName');
  });
});
