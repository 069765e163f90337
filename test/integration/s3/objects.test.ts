/**
 * PutObject / GetObject / HeadObject through @aws-sdk/client-s3 with its default settings (CRC32 in an
 * aws-chunked trailer on every PUT): bytes, ETags, system headers, user metadata, odd keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectS3Error, patternBytes, sha256 } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator();
});
after(() => t?.stop());

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

describe('PutObject and GetObject', () => {
  it('PutObject_GetObject_bytes_roundtrip', async () => {
    const data = patternBytes(3 * 1024 * 1024 + 17, 7);
    const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'bin/one', Body: data }));
    assert.equal(put.ETag, `"${md5(data)}"`);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'bin/one' }));
    assert.equal(got.ContentLength, data.length);
    assert.equal(got.ETag, put.ETag);
    assert.equal(sha256(await bytesOf(got.Body)), sha256(data));
  });

  it('PutObject_streamed_body_with_content_length', async () => {
    const data = patternBytes(2 * 1024 * 1024, 9);
    const chunks = Array.from({ length: 32 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    await t.client.send(
      new PutObjectCommand({ Bucket: 'data', Key: 'bin/streamed', Body: Readable.from(chunks), ContentLength: data.length }),
    );
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'bin/streamed' }));
    assert.equal(sha256(await bytesOf(got.Body)), sha256(data));
  });

  it('PutObject_empty_object', async () => {
    const put = await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'empty', Body: '' }));
    assert.equal(put.ETag, `"${md5('')}"`);
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'empty' }));
    assert.equal(got.ContentLength, 0);
    assert.equal((await bytesOf(got.Body)).length, 0);
  });

  it('PutObject_overwrite_serves_the_new_bytes', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'over', Body: 'first version' }));
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'over', Body: 'second', Metadata: { gen: '2' } }));
    const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'over' }));
    assert.equal((await bytesOf(got.Body)).toString(), 'second');
    assert.deepEqual(got.Metadata, { gen: '2' });
  });

  it('GetObject_missing_key_is_NoSuchKey', async () => {
    await expectS3Error(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: 'nope/never' })), 'NoSuchKey', 404);
  });

  it('GetObject_response_overrides', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'override', Body: 'x', ContentType: 'text/plain' }));
    const got = await t.client.send(
      new GetObjectCommand({
        Bucket: 'data',
        Key: 'override',
        ResponseContentType: 'application/json',
        ResponseContentDisposition: 'attachment; filename="o.json"',
        ResponseCacheControl: 'no-store',
      }),
    );
    await bytesOf(got.Body);
    assert.equal(got.ContentType, 'application/json');
    assert.equal(got.ContentDisposition, 'attachment; filename="o.json"');
    assert.equal(got.CacheControl, 'no-store');
  });
});

describe('HeadObject', () => {
  it('HeadObject_system_headers_and_metadata', async () => {
    const before = Date.now();
    const body = 'hello headers';
    const expires = new Date('2031-05-06T07:08:09Z');
    await t.client.send(
      new PutObjectCommand({
        Bucket: 'data',
        Key: 'headers',
        Body: body,
        ContentType: 'text/plain; charset=utf-8',
        ContentEncoding: 'identity',
        ContentDisposition: 'inline; filename="h.txt"',
        ContentLanguage: 'fr-CA',
        CacheControl: 'max-age=60',
        Expires: expires,
        Metadata: { colour: 'blue', 'multi-word': 'a b c' },
      }),
    );
    const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'headers' }));
    assert.equal(h.ETag, `"${md5(body)}"`);
    assert.equal(h.ContentLength, Buffer.byteLength(body));
    assert.equal(h.ContentType, 'text/plain; charset=utf-8');
    assert.equal(h.ContentEncoding, 'identity');
    assert.equal(h.ContentDisposition, 'inline; filename="h.txt"');
    assert.equal(h.ContentLanguage, 'fr-CA');
    assert.equal(h.CacheControl, 'max-age=60');
    assert.equal(h.Expires?.getTime(), expires.getTime());
    assert.equal(h.AcceptRanges, 'bytes');
    assert.deepEqual(h.Metadata, { colour: 'blue', 'multi-word': 'a b c' });
    // Last-Modified has second precision; allow the second the PUT started in.
    const lm = h.LastModified!.getTime();
    assert.ok(lm >= Math.floor(before / 1000) * 1000 && lm <= Date.now(), `Last-Modified ${h.LastModified?.toISOString()}`);
  });

  it('HeadObject_default_content_type', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'no-type', Body: Buffer.from([1, 2, 3]) }));
    const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'no-type' }));
    // The SDK does not invent a Content-Type for a Buffer body; S3 reports its default.
    assert.ok(h.ContentType === 'binary/octet-stream' || h.ContentType === 'application/octet-stream', h.ContentType);
    assert.equal(h.ContentLength, 3);
  });

  it('HeadObject_missing_key_is_404', async () => {
    await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'missing' })), 'NotFound', 404);
  });

  it('HeadObject_non_ascii_metadata_is_header_safe', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'meta-ascii', Body: 'm', Metadata: { note: 'plain ascii ok' } }));
    const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'meta-ascii' }));
    assert.equal(h.Metadata?.['note'], 'plain ascii ok');
  });
});

describe('keys', () => {
  const keys = [
    'unicode/日本語/ファイル.txt',
    'unicode/emoji-😀',
    'spaces/a b  c',
    'plus/a+b+c',
    'percent/100%/%41%zz',
    'double//slash',
    '//leading-slashes',
    'dots/../up',
    'dots/./here/..',
    'trailing/slash/',
    'specials/!$&\'()*,;=:@[]{}~^`|"<>#?',
    `long/${'k'.repeat(1024 - 'long/'.length)}`,
    `long-utf8/${'é'.repeat((1024 - 'long-utf8/'.length) / 2)}`,
  ];

  it('PutObject_odd_keys_roundtrip', async () => {
    for (const [i, key] of keys.entries()) {
      assert.ok(Buffer.byteLength(key) <= 1024);
      const body = `body of key ${i}`;
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: body }));
      const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
      assert.equal((await bytesOf(got.Body)).toString(), body, `GET ${JSON.stringify(key)}`);
      const h = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
      assert.equal(h.ContentLength, Buffer.byteLength(body));
    }
    const listed: string[] = [];
    for (const prefix of ['unicode/', 'spaces/', 'plus/', 'percent/', 'double', '//', 'dots/', 'trailing/', 'specials/', 'long']) {
      const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: prefix }));
      listed.push(...(r.Contents ?? []).map((o) => o.Key!));
    }
    assert.deepEqual([...new Set(listed)].sort(), [...keys].sort());
  });

  it('PutObject_key_too_long', async () => {
    const key = 'x'.repeat(1025);
    await expectS3Error(t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: 'no' })), 'KeyTooLongError', 400);
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'xxxxxxxx' }));
    assert.equal(r.KeyCount, 0, 'nothing stored');
  });
});
