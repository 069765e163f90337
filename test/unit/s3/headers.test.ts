/**
 * Header parsing: Range, conditional headers, sizes, metadata, system headers, version headers,
 * continuation tokens and S3 URL encoding.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  normaliseEtagList,
  objectSizeOf,
  parseRange,
  parseReadConditions,
  parseWriteConditions,
  systemHeadersOf,
  userMetaOf,
  versionHeaders,
} from '../../../src/s3/headers.js';
import { decodeContinuationToken, encodeContinuationToken } from '../../../src/s3/ops/list.js';
import { s3UrlEncode } from '../../../src/s3/ops/common.js';
import { S3Error } from '../../../src/s3/errors.js';
import type { ObjectVersion } from '../../../src/core/types.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof S3Error);
    return err.code;
  }
  return 'no error';
}

describe('Range', () => {
  const cases: [string | undefined, unknown][] = [
    [undefined, undefined],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=100-', { start: 100 }],
    ['bytes=-500', { suffix: 500 }],
    ['bytes=-0', { suffix: 0 }],
    ['Bytes = 5 - 9', { start: 5, end: 9 }],
    ['bytes=9-5', undefined],
    ['bytes=0-1,5-6', undefined],
    ['items=0-1', undefined],
    ['bytes=-', undefined],
    ['bytes=abc', undefined],
    ['bytes=99999999999999999999-', undefined],
  ];
  for (const [h, want] of cases) test(`${String(h)} → ${JSON.stringify(want)}`, () => assert.deepEqual(parseRange(h), want));
});

describe('conditions', () => {
  test('etag lists lose quotes and weak prefixes; * is kept', () => {
    assert.equal(normaliseEtagList('"abc"'), 'abc');
    assert.equal(normaliseEtagList(' "a", W/"b" ,c'), 'a,b,c');
    assert.equal(normaliseEtagList('*'), '*');
  });
  test('read conditions, plain and copy-source prefixed; invalid dates are ignored', () => {
    const d = 'Wed, 21 Oct 2015 07:28:00 GMT';
    assert.deepEqual(parseReadConditions({ 'if-match': '"x"', 'if-modified-since': d, 'if-unmodified-since': 'garbage' }), {
      ifMatch: 'x',
      ifModifiedSince: new Date(d),
    });
    assert.deepEqual(parseReadConditions({ 'x-amz-copy-source-if-none-match': '"y"' }, 'x-amz-copy-source-'), { ifNoneMatch: 'y' });
    assert.equal(parseReadConditions({}), undefined);
  });
  test('write conditions: If-None-Match only *, If-Match', () => {
    assert.deepEqual(parseWriteConditions({ 'if-none-match': '*' }), { ifNoneMatchStar: true });
    assert.deepEqual(parseWriteConditions({ 'if-match': '"e"' }), { ifMatch: 'e' });
    assert.equal(code(() => parseWriteConditions({ 'if-none-match': '"e"' })), 'NotImplemented');
  });
});

describe('PUT headers', () => {
  test('size from Content-Length or x-amz-decoded-content-length', () => {
    assert.equal(objectSizeOf({ 'content-length': '42' }), 42);
    assert.equal(objectSizeOf({ 'content-length': '99', 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '42' }), 42);
    assert.equal(objectSizeOf({ 'content-length': '99', 'content-encoding': 'gzip, aws-chunked', 'x-amz-decoded-content-length': '7' }), 7);
    assert.equal(code(() => objectSizeOf({})), 'MissingContentLength');
    assert.equal(code(() => objectSizeOf({ 'content-length': '9', 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' })), 'MissingContentLength');
    assert.equal(code(() => objectSizeOf({ 'content-length': String(5 * 1024 ** 3 + 1) })), 'EntityTooLarge');
    assert.equal(code(() => objectSizeOf({ 'content-length': '-1' })), 'InvalidArgument');
  });
  test('aws-chunked is stripped from the stored Content-Encoding', () => {
    assert.deepEqual(systemHeadersOf({ 'content-encoding': 'aws-chunked', 'content-type': 'text/plain' }), { contentType: 'text/plain' });
    assert.deepEqual(systemHeadersOf({ 'content-encoding': 'gzip,aws-chunked', expires: 'x' }), { contentEncoding: 'gzip', expires: 'x' });
  });
  test('user metadata: prefix removed, 2 KB limit', () => {
    assert.deepEqual(userMetaOf({ 'x-amz-meta-color': 'blue', 'x-amz-other': 'no' }), { color: 'blue' });
    assert.equal(code(() => userMetaOf({ 'x-amz-meta-a': 'x'.repeat(2048) })), 'MetadataTooLarge');
    assert.equal(code(() => userMetaOf({ 'x-amz-meta-a': 'x'.repeat(2047) })), 'no error');
  });
});

describe('response headers', () => {
  const v: ObjectVersion = {
    bucket: 'b',
    key: 'k',
    versionId: 'g1',
    size: 10,
    etag: 'abc',
    userMeta: { note: 'héllo', plain: 'x' },
    tagCount: 0,
    lastModified: new Date('2024-01-02T03:04:05.678Z'),
    checksum: { algorithm: 'CRC32C', value: 'AAAAAA==', type: 'FULL_OBJECT' },
  };
  test('defaults, quoting, dates, metadata encoding, checksum only on request', () => {
    const h = versionHeaders(v, { checksum: false });
    assert.equal(h['ETag'], '"abc"');
    assert.equal(h['Last-Modified'], 'Tue, 02 Jan 2024 03:04:05 GMT');
    assert.equal(h['Content-Type'], 'binary/octet-stream');
    assert.equal(h['x-amz-meta-plain'], 'x');
    assert.equal(h['x-amz-meta-note'], `=?UTF-8?B?${Buffer.from('héllo').toString('base64')}?=`);
    assert.equal(h['x-amz-checksum-crc32c'], undefined);
    assert.equal(h['x-amz-tagging-count'], undefined);
    const c = versionHeaders({ ...v, tagCount: 2 }, { checksum: true });
    assert.equal(c['x-amz-checksum-crc32c'], 'AAAAAA==');
    assert.equal(c['x-amz-tagging-count'], '2');
  });
});

describe('listing encodings', () => {
  test('continuation tokens round-trip; foreign tokens are InvalidArgument', () => {
    for (const k of ['a', 'dir/', '€😀 x+y', 'x'.repeat(1024)]) assert.equal(decodeContinuationToken(encodeContinuationToken(k)), k);
    assert.equal(code(() => decodeContinuationToken('not base64!')), 'InvalidArgument');
    assert.equal(code(() => decodeContinuationToken('')), 'InvalidArgument');
  });
  test('url encoding: space as +, plus as %2B, slash kept', () => {
    assert.equal(s3UrlEncode('a b+c/d%€'), 'a+b%2Bc/d%25%E2%82%AC');
    assert.equal(decodeURIComponent(s3UrlEncode('x y').replace(/\+/g, ' ')), 'x y');
  });
});
