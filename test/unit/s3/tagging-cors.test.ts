/**
 * Tag validation (S3's limits and messages), the x-amz-tagging header form, CreateMultipartUpload
 * checksum settings, copy-source ranges, and the CORS answers: preflight outcomes and the headers of
 * actual responses.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CorsRule } from '../../../src/core/cors.js';
import { S3Error } from '../../../src/s3/errors.js';
import { corsResponseHeaders, preflight, requestedHeaders } from '../../../src/s3/ops/cors.js';
import { checksumSettingsOf, parseCopySourceRange } from '../../../src/s3/ops/multipart.js';
import { taggingDirectiveOf, taggingHeaderOf, validateTags } from '../../../src/s3/ops/tagging.js';

function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof S3Error, `not an S3Error: ${String(err)}`);
    return { code: err.code, message: err.message };
  }
  return { code: 'no error', message: '' };
}

describe('tag validation', () => {
  test('valid sets become records', () => {
    assert.deepEqual(validateTags([['Project', 'Blue'], ['path', '/a/b:c@d.e_f+g-h=i'], ['empty', ''], ['été', 'naïve 語']]), {
      Project: 'Blue',
      path: '/a/b:c@d.e_f+g-h=i',
      empty: '',
      été: 'naïve 語',
    });
  });
  const cases: [string, [string, string][], string][] = [
    ['11 tags', Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'] as [string, string]), 'Object tags cannot be greater than 10'],
    ['key of 129 characters', [['k'.repeat(129), 'v']], 'The TagKey you have provided is too long, max 128'],
    ['value of 257 characters', [['k', 'v'.repeat(257)]], 'The TagValue you have provided is too long, max 256'],
    ['duplicate key', [['a', '1'], ['a', '2']], 'Cannot provide multiple Tags with the same key'],
    ['aws: prefix', [['aws:cloudformation', 'x']], 'Your TagKey cannot be prefixed with aws:'],
    ['AWS: prefix in capitals', [['AWS:x', 'x']], 'Your TagKey cannot be prefixed with aws:'],
    ['empty key', [['', 'v']], 'The TagKey you have provided is invalid'],
    ['bad key character', [['a#b', 'v']], 'The TagKey you have provided is invalid'],
    ['bad value character', [['a', 'x,y']], 'The TagValue you have provided is invalid'],
  ];
  for (const [what, tags, message] of cases) {
    test(`${what} → InvalidTag`, () => assert.deepEqual(failure(() => validateTags(tags)), { code: 'InvalidTag', message }));
  }
  test('lengths count code points, not UTF-16 units or bytes', () => {
    // 𝒳 is one letter outside the BMP: two UTF-16 units, four UTF-8 bytes.
    assert.deepEqual(Object.keys(validateTags([['𝒳'.repeat(128), 'é'.repeat(256)]])), ['𝒳'.repeat(128)]);
    assert.equal(failure(() => validateTags([['𝒳'.repeat(129), 'v']])).code, 'InvalidTag');
  });
});

describe('x-amz-tagging header', () => {
  test('URL query form, + and %20 are spaces, absent → undefined', () => {
    assert.deepEqual(taggingHeaderOf({ 'x-amz-tagging': 'a=1&b=two+words&c=x%2By&d' }), { a: '1', b: 'two words', c: 'x+y', d: '' });
    assert.equal(taggingHeaderOf({}), undefined);
    assert.deepEqual(taggingHeaderOf({ 'x-amz-tagging': '' }), {});
  });
  test('bad encoding → InvalidArgument; limits → InvalidTag', () => {
    assert.equal(failure(() => taggingHeaderOf({ 'x-amz-tagging': 'a=%E2%82' })).code, 'InvalidArgument');
    assert.equal(failure(() => taggingHeaderOf({ 'x-amz-tagging': 'a=1&a=2' })).code, 'InvalidTag');
  });
  test('tagging directive', () => {
    assert.equal(taggingDirectiveOf({}), 'COPY');
    assert.equal(taggingDirectiveOf({ 'x-amz-tagging-directive': 'replace' }), 'REPLACE');
    assert.equal(failure(() => taggingDirectiveOf({ 'x-amz-tagging-directive': 'MERGE' })).code, 'InvalidArgument');
  });
});

describe('multipart header parsing', () => {
  test('checksum algorithm and type', () => {
    assert.deepEqual(checksumSettingsOf({}), {});
    assert.deepEqual(checksumSettingsOf({ 'x-amz-checksum-algorithm': 'crc32c' }), { checksumAlgorithm: 'CRC32C' });
    assert.deepEqual(checksumSettingsOf({ 'x-amz-checksum-algorithm': 'CRC32', 'x-amz-checksum-type': 'full_object' }), {
      checksumAlgorithm: 'CRC32',
      checksumType: 'FULL_OBJECT',
    });
    assert.equal(failure(() => checksumSettingsOf({ 'x-amz-checksum-algorithm': 'MD5' })).code, 'InvalidRequest');
    assert.equal(failure(() => checksumSettingsOf({ 'x-amz-checksum-type': 'COMPOSITE' })).code, 'InvalidRequest');
    assert.equal(failure(() => checksumSettingsOf({ 'x-amz-checksum-algorithm': 'SHA1', 'x-amz-checksum-type': 'PARTIAL' })).code, 'InvalidRequest');
  });
  test('copy source range', () => {
    assert.equal(parseCopySourceRange(undefined), undefined);
    assert.deepEqual(parseCopySourceRange('bytes=0-0'), { start: 0, end: 0 });
    assert.deepEqual(parseCopySourceRange('bytes=5-10'), { start: 5, end: 10 });
    for (const bad of ['bytes=5-', 'bytes=-5', 'bytes=10-5', 'items=0-1', 'bytes=0-1,3-4']) {
      assert.equal(failure(() => parseCopySourceRange(bad)).code, 'InvalidArgument', bad);
    }
  });
});

describe('CORS answers', () => {
  const rules: CorsRule[] = [
    { allowedOrigins: ['https://*.example.com'], allowedMethods: ['GET', 'PUT'], allowedHeaders: ['x-amz-*', 'Content-Type'], exposeHeaders: ['ETag'], maxAgeSeconds: 30 },
    { allowedOrigins: ['*'], allowedMethods: ['HEAD'], allowedHeaders: [], exposeHeaders: [] },
  ];
  const ask = (h: Record<string, string>) => preflight(rules, h, true);

  test('a matching preflight echoes the origin and the requested headers', () => {
    const res = ask({ origin: 'https://app.example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'X-Amz-Date, content-type' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers, {
      'Access-Control-Allow-Origin': 'https://app.example.com',
      'Access-Control-Allow-Credentials': 'true',
      'Access-Control-Allow-Methods': 'GET, PUT',
      'Access-Control-Allow-Headers': 'x-amz-date, content-type',
      'Access-Control-Expose-Headers': 'ETag',
      'Access-Control-Max-Age': '30',
      Vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
    });
  });
  test('a wildcard-origin rule answers *', () => {
    const res = ask({ origin: 'http://anything', 'access-control-request-method': 'HEAD' });
    assert.equal(res.headers['Access-Control-Allow-Origin'], '*');
    assert.equal(res.headers['Access-Control-Allow-Credentials'], undefined);
  });
  test('refusals', () => {
    assert.equal(failure(() => ask({ 'access-control-request-method': 'GET' })).code, 'BadRequest');
    assert.equal(failure(() => ask({ origin: 'https://a.example.com' })).code, 'BadRequest');
    assert.equal(failure(() => ask({ origin: 'https://a.example.com', 'access-control-request-method': 'TRACE' })).code, 'BadRequest');
    const denied = failure(() => ask({ origin: 'https://example.org', 'access-control-request-method': 'GET' }));
    assert.equal(denied.code, 'AccessForbidden');
    assert.match(denied.message, /^CORSResponse: This CORS request is not allowed/);
    assert.equal(failure(() => ask({ origin: 'https://a.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' })).code, 'AccessForbidden');
    const off = failure(() => preflight(undefined, { origin: 'https://a.example.com', 'access-control-request-method': 'GET' }, false));
    assert.deepEqual(off, { code: 'AccessForbidden', message: 'CORSResponse: CORS is not enabled for this bucket.' });
  });
  test('actual responses: headers only for a matching origin and method', () => {
    assert.deepEqual(corsResponseHeaders(rules, undefined, 'GET'), {});
    assert.deepEqual(corsResponseHeaders(undefined, 'https://a.example.com', 'GET'), {});
    assert.deepEqual(corsResponseHeaders(rules, 'https://a.example.com', 'DELETE'), {});
    assert.equal(corsResponseHeaders(rules, 'https://a.example.com', 'get')['Access-Control-Allow-Origin'], 'https://a.example.com');
    assert.equal(corsResponseHeaders(rules, 'https://evil.org', 'HEAD')['Access-Control-Allow-Origin'], '*');
  });
  test('requested header lists are trimmed and lower-cased', () => {
    assert.deepEqual(requestedHeaders(' A, ,b '), ['a', 'b']);
    assert.deepEqual(requestedHeaders(undefined), []);
  });
});
