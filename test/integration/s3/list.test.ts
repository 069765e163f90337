/**
 * ListObjectsV2 and ListObjects (V1) through the SDK: prefix, delimiter, start-after, continuation-token
 * pagination with max-keys, encoding-type=url with odd keys, and the V1 marker. Then edge cases over raw
 * requests in bucket `other` (keys no XML 1.0 document can hold unencoded, so always encoding-type=url):
 * delimiters longer than one character, keys equal to the prefix, multi-byte UTF-8 and the U+FFFF /
 * U+10000 / U+10FFFF boundaries, all compared page by page with a reference model of S3's listing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { OTHER_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
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
  for (const k of edgeKeys) await t.otherClient.send(new PutObjectCommand({ Bucket: 'other', Key: k, Body: 'x' }));
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

/** Keys of bucket `other` for the edge cases. */
const edgeKeys = [
  // multi-character delimiters, overlapping delimiter characters
  'm/x--y--z',
  'm/x--w',
  'm/q',
  'm/r-s',
  'm/baaa',
  'm/-',
  'm/--',
  'm/---x',
  // keys equal to a prefix
  'eq',
  'eq/',
  'eq/a/1',
  // multi-byte UTF-8; U+E000–U+FFFF sort BELOW U+10000 in UTF-8 but ABOVE it in UTF-16
  'u/e/1',
  'u/é/1',
  'u/é/2',
  'u/z',
  'u/\uE000',
  'u/\uFFFD/1',
  'u/\u{1F600}/1',
  'u/\u{1F600}/2',
  'v/\uFFFE',
  'v/\uFFFF',
  'v/\uFFFF/x',
  'v/\uFFFFa',
  'v/\u{10000}',
  // a multi-byte delimiter; the successor of a common prefix ending in U+1F600 is ...U+1F601
  'd/a\u{1F600}b',
  'd/a\u{1F600}c',
  'd/a\u{1F601}',
  'd/x',
  'd/\u{1F600}',
  // U+10FFFF: a common prefix ending in it has its successor one character earlier
  'z/a\u{10FFFF}1',
  'z/a\u{10FFFF}2',
  'z/b',
  'z/\u{10FFFF}',
  'z/\u{10FFFF}\u{10FFFF}x',
  // many keys under few common prefixes: a batch that ends inside a prefix continues with the skip scan
  'w/0/a',
  'w/0/b',
  'w/0/c',
  'w/1/a',
  'w/1/b',
  'w/2/a',
  'w/3',
  'top',
];

/** UTF-8 byte order, computed independently of the code under test. */
const byteCmp = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** One listing entry: a key or a common prefix. */
type Entry = { key: string } | { cp: string };

/**
 * S3's listing as a model: keys under the prefix after the start point, rolled up at the first delimiter
 * after the prefix; a common prefix at or before the start point is not listed again (as radosgw does:
 * a marker inside a common prefix skips the rest of it).
 */
function model(all: readonly string[], o: { prefix: string; delimiter?: string; after?: string }): Entry[] {
  const out: Entry[] = [];
  for (const k of [...all].filter((x) => x.startsWith(o.prefix)).sort(byteCmp)) {
    if (o.after !== undefined && byteCmp(k, o.after) <= 0) continue;
    const i = o.delimiter ? k.indexOf(o.delimiter, o.prefix.length) : -1;
    if (i < 0) {
      out.push({ key: k });
      continue;
    }
    const cp = k.slice(0, i + o.delimiter!.length);
    if (o.after !== undefined && byteCmp(cp, o.after) <= 0) continue;
    const last = out[out.length - 1];
    if (last && 'cp' in last && last.cp === cp) continue;
    out.push({ cp });
  }
  return out;
}

interface RawPage {
  keys: string[];
  prefixes: string[];
  truncated: boolean;
  keyCount?: number;
  nextToken?: string;
  nextMarker?: string;
}

const urlDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));

/** One listing page of bucket `other` (encoding-type=url), parsed from the raw XML. */
async function rawList(query: Record<string, string>): Promise<RawPage> {
  const res = await rawRequest(t.endpoint, { method: 'GET', path: '/other', query: { 'encoding-type': 'url', ...query }, credentials: OTHER_CREDS });
  assert.equal(res.status, 200, res.text.slice(0, 400));
  const one = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(res.text)?.[1];
  const page: RawPage = {
    keys: [...res.text.matchAll(/<Contents><Key>([^<]*)<\/Key>/g)].map((m) => urlDecode(m[1]!)),
    prefixes: [...res.text.matchAll(/<CommonPrefixes><Prefix>([^<]*)<\/Prefix><\/CommonPrefixes>/g)].map((m) => urlDecode(m[1]!)),
    truncated: one('IsTruncated') === 'true',
  };
  const kc = one('KeyCount');
  if (kc !== undefined) page.keyCount = Number(kc);
  const nt = one('NextContinuationToken');
  if (nt !== undefined) page.nextToken = nt;
  const nm = one('NextMarker');
  if (nm !== undefined) page.nextMarker = urlDecode(nm);
  return page;
}

const keysOf = (es: Entry[]) => es.flatMap((e) => ('key' in e ? [e.key] : []));
const cpsOf = (es: Entry[]) => es.flatMap((e) => ('cp' in e ? [e.cp] : []));
const show = (s: string) => JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);

/**
 * Walks a whole V2 listing with continuation tokens and asserts every page equals the model's next
 * max-keys entries, with IsTruncated, KeyCount and a token exactly when more entries follow.
 */
async function expectV2Pages(o: { prefix: string; delimiter?: string; startAfter?: string; maxKeys: number }): Promise<void> {
  const want = model(edgeKeys, { prefix: o.prefix, ...(o.delimiter ? { delimiter: o.delimiter } : {}), ...(o.startAfter !== undefined ? { after: o.startAfter } : {}) });
  const what = `prefix=${show(o.prefix)} delimiter=${show(o.delimiter ?? '')} start-after=${show(o.startAfter ?? '')} max-keys=${o.maxKeys}`;
  let token: string | undefined;
  let at = 0;
  for (let pages = 0; ; pages++) {
    assert.ok(pages <= want.length + 1, `${what}: too many pages`);
    const q: Record<string, string> = { 'list-type': '2', prefix: o.prefix, 'max-keys': String(o.maxKeys) };
    if (o.delimiter) q['delimiter'] = o.delimiter;
    if (o.startAfter !== undefined) q['start-after'] = o.startAfter;
    if (token !== undefined) q['continuation-token'] = token;
    const page = await rawList(q);
    const chunk = want.slice(at, at + o.maxKeys);
    at += chunk.length;
    assert.deepEqual(page.keys.map(show), keysOf(chunk).map(show), `${what}: keys of page ${pages + 1}`);
    assert.deepEqual(page.prefixes.map(show), cpsOf(chunk).map(show), `${what}: common prefixes of page ${pages + 1}`);
    assert.equal(page.keyCount, chunk.length, `${what}: KeyCount`);
    assert.equal(page.truncated, at < want.length, `${what}: IsTruncated of page ${pages + 1}`);
    if (!page.truncated) {
      assert.equal(page.nextToken, undefined);
      return;
    }
    assert.ok(page.nextToken, `${what}: a truncated page has a NextContinuationToken`);
    token = page.nextToken;
  }
}

const edgePrefixes = ['', 'm/', 'm/x', 'eq', 'eq/', 'u/', 'u/\uFFFD', 'u/\u{1F600}', 'v/', 'v/\uFFFF', 'd/', 'd/a', 'z/', 'z/\u{10FFFF}', 'w/', 'none/'];
const edgeDelimiters = [undefined, '/', '--', '-', 'aa', '\u{1F600}', '\u{10FFFF}', '\uFFFF', 'é/', '0/'];

describe('Listing edge cases against a model of S3', () => {
  it('every_prefix_and_delimiter_paginates_like_S3', async () => {
    for (const prefix of edgePrefixes) {
      for (const delimiter of edgeDelimiters) {
        // max-keys 1 pages at every entry; 3 ends batches inside common prefixes (the skip scan continues).
        for (const maxKeys of delimiter === '/' || delimiter === '--' ? [1, 3, 1000] : [3, 1000]) {
          await expectV2Pages({ prefix, ...(delimiter ? { delimiter } : {}), maxKeys });
        }
      }
    }
  });

  it('start_after_anywhere_paginates_like_S3', async () => {
    // Every key, every common prefix, and points between them (inside a prefix, just before, just after).
    const points = new Set<string>(['', 'm/x-', 'm/x--', 'm/x--x', 'u/\uFFFD/', 'u/\uFFFD/0', 'u/\uFFFF', 'v/\uFFFF', 'v/\uFFFF\u{10FFFF}', 'w/0/', 'w/0/b', 'w/0/z', 'z/a\u{10FFFF}', 'zz']);
    for (const k of edgeKeys) {
      points.add(k);
      for (const d of ['/', '--']) {
        const i = k.indexOf(d);
        if (i >= 0) points.add(k.slice(0, i + d.length));
      }
    }
    for (const startAfter of points) {
      for (const [prefix, delimiter] of [['', '/'], ['u/', '/'], ['v/', '/'], ['m/', '--'], ['w/', '/'], ['', undefined]] as const) {
        await expectV2Pages({ prefix, ...(delimiter ? { delimiter } : {}), startAfter, maxKeys: 2 });
      }
    }
  });

  it('prefix_ending_in_U+FFFF_lists_its_keys', async () => {
    // Its successor is U+10000, which UTF-16 comparison puts BELOW the prefix; the listing must not end at once.
    const page = await rawList({ 'list-type': '2', prefix: 'v/\uFFFF' });
    assert.deepEqual(page.keys.map(show), ['v/\uFFFF', 'v/\uFFFF/x', 'v/\uFFFFa'].map(show));
    const rolled = await rawList({ 'list-type': '2', prefix: 'v/', delimiter: '/' });
    assert.deepEqual(rolled.keys.map(show), ['v/\uFFFE', 'v/\uFFFF', 'v/\uFFFFa', 'v/\u{10000}'].map(show));
    assert.deepEqual(rolled.prefixes.map(show), ['v/\uFFFF/'].map(show));
  });

  it('continuation_after_a_U+FFFD_prefix_reaches_an_emoji_prefix', async () => {
    // 'u/\uFFFD/' < 'u/\u{1F600}/' in UTF-8 (and in S3) though not in UTF-16.
    const p1 = await rawList({ 'list-type': '2', prefix: 'u/', delimiter: '/', 'max-keys': '5' });
    assert.deepEqual(p1.prefixes.map(show), ['u/e/', 'u/é/', 'u/\uFFFD/'].map(show));
    assert.deepEqual(p1.keys.map(show), ['u/z', 'u/\uE000'].map(show));
    assert.equal(p1.truncated, true);
    const p2 = await rawList({ 'list-type': '2', prefix: 'u/', delimiter: '/', 'max-keys': '5', 'continuation-token': p1.nextToken! });
    assert.deepEqual(p2.keys, []);
    assert.deepEqual(p2.prefixes.map(show), ['u/\u{1F600}/'].map(show));
    assert.equal(p2.truncated, false);
  });

  it('multi_character_delimiter_rolls_up_at_its_first_occurrence_after_the_prefix', async () => {
    const page = await rawList({ 'list-type': '2', prefix: 'm/', delimiter: '--' });
    assert.deepEqual(page.prefixes, ['m/--', 'm/x--']);
    assert.deepEqual(page.keys, ['m/-', 'm/baaa', 'm/q', 'm/r-s']);
    // Overlapping characters: 'aa' first occurs in 'baaa' at offset 1.
    const aa = await rawList({ 'list-type': '2', prefix: 'm/', delimiter: 'aa' });
    assert.deepEqual(aa.prefixes, ['m/baa']);
    // The delimiter is looked for only after the prefix.
    const inside = await rawList({ 'list-type': '2', prefix: 'm/x--', delimiter: '--' });
    assert.deepEqual(inside.prefixes, ['m/x--y--']);
    assert.deepEqual(inside.keys, ['m/x--w']);
  });

  it('key_equal_to_the_prefix_is_listed_as_a_key', async () => {
    const page = await rawList({ 'list-type': '2', prefix: 'eq/', delimiter: '/' });
    assert.deepEqual(page.keys, ['eq/']);
    assert.deepEqual(page.prefixes, ['eq/a/']);
    const bare = await rawList({ 'list-type': '2', prefix: 'eq', delimiter: '/' });
    assert.deepEqual(bare.keys, ['eq']);
    assert.deepEqual(bare.prefixes, ['eq/']);
  });

  it('delimiter_of_astral_and_U+10FFFF_characters', async () => {
    const emoji = await rawList({ 'list-type': '2', prefix: 'd/', delimiter: '\u{1F600}' });
    assert.deepEqual(emoji.prefixes.map(show), ['d/a\u{1F600}', 'd/\u{1F600}'].map(show));
    assert.deepEqual(emoji.keys.map(show), ['d/a\u{1F601}', 'd/x'].map(show));
    const max = await rawList({ 'list-type': '2', prefix: 'z/', delimiter: '\u{10FFFF}', 'max-keys': '1' });
    assert.deepEqual(max.prefixes.map(show), ['z/a\u{10FFFF}'].map(show));
    const rest = await rawList({ 'list-type': '2', prefix: 'z/', delimiter: '\u{10FFFF}', 'continuation-token': max.nextToken! });
    assert.deepEqual(rest.keys.map(show), ['z/b'].map(show));
    assert.deepEqual(rest.prefixes.map(show), ['z/\u{10FFFF}'].map(show));
    assert.equal(rest.truncated, false);
  });

  it('common_prefixes_count_against_max_keys_and_IsTruncated_only_when_more_follow', async () => {
    // w/: w/0/, w/1/, w/2/, w/3 = 4 entries.
    const exact = await rawList({ 'list-type': '2', prefix: 'w/', delimiter: '/', 'max-keys': '4' });
    assert.deepEqual({ p: exact.prefixes, k: exact.keys, t: exact.truncated, n: exact.keyCount }, { p: ['w/0/', 'w/1/', 'w/2/'], k: ['w/3'], t: false, n: 4 });
    const short = await rawList({ 'list-type': '2', prefix: 'w/', delimiter: '/', 'max-keys': '3' });
    assert.deepEqual({ p: short.prefixes, k: short.keys, t: short.truncated }, { p: ['w/0/', 'w/1/', 'w/2/'], k: [], t: true });
    // Starting inside w/0/: that prefix is not listed again, and exactly 3 entries remain.
    const inside = await rawList({ 'list-type': '2', prefix: 'w/', delimiter: '/', 'max-keys': '3', 'start-after': 'w/0/a' });
    assert.deepEqual({ p: inside.prefixes, k: inside.keys, t: inside.truncated }, { p: ['w/1/', 'w/2/'], k: ['w/3'], t: false });
  });

  it('ListObjects_V1_NextMarker_walks_with_a_multi_character_delimiter', async () => {
    const want = model(edgeKeys, { prefix: 'm/', delimiter: '--' });
    const got: Entry[] = [];
    let marker: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await rawList({ prefix: 'm/', delimiter: '--', 'max-keys': '2', ...(marker !== undefined ? { marker } : {}) });
      got.push(...page.keys.map((key) => ({ key })), ...page.prefixes.map((cp) => ({ cp })));
      if (!page.truncated) {
        assert.equal(page.nextMarker, undefined);
        break;
      }
      assert.ok(page.nextMarker, 'NextMarker with a delimiter');
      marker = page.nextMarker;
    }
    const sortEntries = (es: Entry[]) => es.map((e) => ('key' in e ? e.key : e.cp)).sort(byteCmp);
    assert.deepEqual(sortEntries(got), sortEntries(want));
  });
});

describe('Listing shows stored checksums', () => {
  it('ListObjectsV2_Contents_carry_ChecksumAlgorithm_and_ChecksumType', async () => {
    // The SDK sends a CRC32 with every PutObject by default; the orchestrator verified and stored it.
    const r = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'a/1' }));
    assert.deepEqual(r.Contents?.[0]?.ChecksumAlgorithm, ['CRC32']);
    assert.equal(r.Contents?.[0]?.ChecksumType, 'FULL_OBJECT');
  });
});
