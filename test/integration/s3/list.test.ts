/**
 * ListObjectsV2 and ListObjects (V1) through the SDK: prefix, delimiter, start-after, continuation-token
 * pagination with max-keys, encoding-type=url with odd keys, and the V1 marker.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, rawRequest } from './helpers.js';

let t: TestOrchestrator;
const keys = [
  'a/1',
  'a/2',
  'a/b/3',
  'a/b/4',
  'a/c/5',
  'b',
  'c/x',
  'odd/a b',
  'odd/a+b',
  'odd/%41',
  'odd/ü',
  'odd/tab\there',
  'odd/amp&lt<>"\'',
  ...Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(3, '0')}`),
];
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
  for (const k of keys) await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: k, Body: k }));
});
after(() => t?.stop());

/** Keys in S3's (UTF-8 byte) order. */
const byteSorted = (ks: string[]) => [...ks].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

describe('ListObjectsV2', () => {
  it('ListObjectsV2_all_in_byte_order', async () => {
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data' }));
    assert.deepEqual(r.Contents?.map((o) => o.Key), byteSorted(keys));
    assert.equal(r.KeyCount, keys.length);
    assert.equal(r.IsTruncated, false);
    const first = r.Contents!.find((o) => o.Key === 'b')!;
    assert.equal(first.Size, 1);
    assert.match(first.ETag ?? '', /^"[0-9a-f]{32}"$/);
    assert.ok(first.LastModified instanceof Date);
  });

  it('ListObjectsV2_prefix', async () => {
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'a/b/' }));
    assert.deepEqual(r.Contents?.map((o) => o.Key), ['a/b/3', 'a/b/4']);
    assert.equal(r.Prefix, 'a/b/');
  });

  it('ListObjectsV2_delimiter', async () => {
    const top = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Delimiter: '/' }));
    assert.deepEqual(top.Contents?.map((o) => o.Key), ['b']);
    assert.deepEqual(top.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'c/', 'odd/', 'page/']);
    const inA = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'a/', Delimiter: '/' }));
    assert.deepEqual(inA.Contents?.map((o) => o.Key), ['a/1', 'a/2']);
    assert.deepEqual(inA.CommonPrefixes?.map((p) => p.Prefix), ['a/b/', 'a/c/']);
    assert.equal(inA.KeyCount, 4, 'KeyCount counts keys and common prefixes');
  });

  it('ListObjectsV2_start_after', async () => {
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'a/', StartAfter: 'a/b/3' }));
    assert.deepEqual(r.Contents?.map((o) => o.Key), ['a/b/4', 'a/c/5']);
    assert.equal(r.StartAfter, 'a/b/3');
  });

  it('ListObjectsV2_continuation_token_pagination', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await t.client.send(
        new ListObjectsV2Command({ Bucket: 'data', Prefix: 'page/', MaxKeys: 7, ...(token ? { ContinuationToken: token } : {}) }),
      );
      pages++;
      assert.ok((r.Contents?.length ?? 0) <= 7);
      assert.equal(r.MaxKeys, 7);
      seen.push(...(r.Contents ?? []).map((o) => o.Key!));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
      if (r.IsTruncated) assert.ok(token, 'a truncated page has a NextContinuationToken');
    } while (token);
    assert.equal(pages, 4);
    assert.deepEqual(seen, keys.filter((k) => k.startsWith('page/')));
  });

  it('ListObjectsV2_paginator_with_delimiter', async () => {
    const items: string[] = [];
    for await (const page of paginateListObjectsV2({ client: t.client, pageSize: 2 }, { Bucket: 'data', Delimiter: '/' })) {
      items.push(...(page.Contents ?? []).map((o) => o.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
    }
    assert.deepEqual(items.sort(), ['a/', 'b', 'c/', 'odd/', 'page/']);
  });

  it('ListObjectsV2_encoding_type_url_odd_keys', async () => {
    // The SDK decodes url-encoded keys itself when it asked for encoding-type=url.
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'odd/', EncodingType: 'url' }));
    const got = r.Contents!.map((o) => decodeURIComponent(o.Key!.replace(/\+/g, ' ')));
    assert.deepEqual(got.sort(), keys.filter((k) => k.startsWith('odd/')).sort());
    // And on the wire the tab (not valid in XML 1.0 text as-is for many parsers) and `+` are encoded.
    const raw = await rawRequest(t.endpoint, {
      method: 'GET',
      path: '/data',
      query: { 'list-type': '2', prefix: 'odd/', 'encoding-type': 'url' },
    });
    assert.equal(raw.status, 200);
    assert.match(raw.text, /<EncodingType>url<\/EncodingType>/);
    assert.match(raw.text, /<Key>odd\/a%2Bb<\/Key>/);
    assert.match(raw.text, /<Key>odd\/tab%09here<\/Key>/);
    assert.match(raw.text, /<Key>odd\/%C3%BC<\/Key>/);
  });

  it('ListObjectsV2_max_keys_zero', async () => {
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', MaxKeys: 0 }));
    assert.equal(r.KeyCount, 0);
    assert.equal(r.Contents, undefined);
  });

  it('ListObjectsV2_bad_max_keys_is_InvalidArgument', async () => {
    const raw = await rawRequest(t.endpoint, { method: 'GET', path: '/data', query: { 'list-type': '2', 'max-keys': 'ten' } });
    expectRawError(raw, 'InvalidArgument', 400);
  });

  it('ListObjectsV2_unknown_bucket_of_own_credential_is_AccessDenied', async () => {
    const raw = await rawRequest(t.endpoint, { method: 'GET', path: '/nobucket', query: { 'list-type': '2' } });
    expectRawError(raw, 'AccessDenied', 403);
  });
});

describe('ListObjects (V1)', () => {
  it('ListObjects_marker_pagination', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const r = await t.client.send(new ListObjectsCommand({ Bucket: 'data', Prefix: 'page/', MaxKeys: 10, ...(marker ? { Marker: marker } : {}) }));
      const ks = (r.Contents ?? []).map((o) => o.Key!);
      seen.push(...ks);
      if (!r.IsTruncated) break;
      // Without a delimiter NextMarker is optional in S3; the last key is the marker.
      marker = r.NextMarker ?? ks[ks.length - 1];
    }
    assert.deepEqual(seen, keys.filter((k) => k.startsWith('page/')));
  });

  it('ListObjects_delimiter_next_marker', async () => {
    const r = await t.client.send(new ListObjectsCommand({ Bucket: 'data', Delimiter: '/', MaxKeys: 2 }));
    assert.equal(r.IsTruncated, true);
    assert.deepEqual([...(r.CommonPrefixes ?? []).map((p) => p.Prefix), ...(r.Contents ?? []).map((o) => o.Key)].sort(), ['a/', 'b']);
    assert.ok(r.NextMarker, 'NextMarker is set when a delimiter is used and the list is truncated');
    const rest = await t.client.send(new ListObjectsCommand({ Bucket: 'data', Delimiter: '/', Marker: r.NextMarker! }));
    assert.deepEqual(rest.CommonPrefixes?.map((p) => p.Prefix), ['c/', 'odd/', 'page/']);
  });

  it('ListObjects_marker_excludes_the_marker', async () => {
    const r = await t.client.send(new ListObjectsCommand({ Bucket: 'data', Prefix: 'a/', Marker: 'a/2' }));
    assert.deepEqual(r.Contents?.map((o) => o.Key), ['a/b/3', 'a/b/4', 'a/c/5']);
    assert.equal(r.Marker, 'a/2');
  });
});
