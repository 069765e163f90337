/**
 * Requests signed by the AWS SDK's own signer (@smithy/signature-v4) verified by verifyRequest, plus
 * every rejection path: tampering, wrong key, scope, time, presign lifetime and malformed headers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verifyRequest, isAuthenticatedRequest } from '../../../src/s3/auth/sigv4.js';
import type { RequestHead } from '../../../src/s3/auth/types.js';
import { ALICE, NOW, REGION, lookupOf, outcome, presignHead, sdkEncode, signHead } from './helpers.js';

const lookup = lookupOf(ALICE, { accessKeyId: 'AKIDBOB', secretAccessKey: 'bob', buckets: [] });
const opts = { region: REGION, now: NOW };
const verify = (head: RequestHead, o = opts) => verifyRequest(head, lookup, o);
const keyPath = (bucket: string, key: string) => `/${bucket}/${key.split('/').map(sdkEncode).join('/')}`;

const TRICKY_KEYS = [
  'plain.txt',
  'with space/and  two',
  'unicode/日本語/ü/🎉',
  'plus+sign',
  'percent%41literal',
  'double//slash',
  '/leading-slash',
  'trailing/',
  "punct!'()*@:=&$,;",
  'tilde~dash-under_dot.',
  './dot/../segments',
];

describe('SDK-signed requests verify', () => {
  for (const key of TRICKY_KEYS) {
    it(`PUT key ${JSON.stringify(key)}`, async () => {
      const head = await signHead({ method: 'PUT', path: keyPath('b', key), body: 'x', headers: { 'content-length': '1' } });
      const auth = await verify(head);
      assert.ok(isAuthenticatedRequest(auth));
      assert.equal(auth.credential.accessKeyId, 'AKIDALICE');
      assert.equal(auth.payload.kind, 'sha256');
    });
  }

  it('query strings with repeated, empty and encoded parameters', async () => {
    const query = {
      'list-type': '2',
      prefix: 'a b+c/日本/%',
      delimiter: '/',
      'continuation-token': 'AbC+/==',
      empty: '',
      multi: ['z', 'a', ''],
    };
    const head = await signHead({ method: 'GET', path: '/b', query });
    await verify(head);
  });

  it('the same request with a differently (but equivalently) encoded path and query', async () => {
    const head = await signHead({ method: 'GET', path: '/b/a%3Db%40c', query: { prefix: 'x=y@z' } });
    await verify(head);
    await verify({ ...head, rawPath: '/b/a=b@c', rawQuery: 'prefix=x%3dy%40z' });
    await verify({ ...head, rawPath: '/b/a%3db%40c' });
  });

  it('whitespace in signed header values is collapsed and trimmed', async () => {
    const head = await signHead({ method: 'PUT', path: '/b/k', body: '', headers: { 'x-amz-meta-note': '  a   b\tc  ' } });
    assert.equal(head.headers['x-amz-meta-note'], '  a   b\tc  ');
    await verify(head);
    await verify({ ...head, headers: { ...head.headers, 'x-amz-meta-note': 'a \t b c' } });
  });

  it('UNSIGNED-PAYLOAD', async () => {
    const head = await signHead({ method: 'PUT', path: '/b/k', payloadHash: 'UNSIGNED-PAYLOAD' });
    assert.deepEqual((await verify(head)).payload, { kind: 'unsigned' });
  });

  it('streaming payload modes are reported', async () => {
    for (const [value, kind] of [
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { kind: 'streaming-signed', trailer: false }],
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { kind: 'streaming-signed', trailer: true }],
      ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', { kind: 'streaming-unsigned-trailer' }],
    ] as const) {
      const head = await signHead({ method: 'PUT', path: '/b/k', payloadHash: value });
      assert.deepEqual((await verify(head)).payload, kind);
    }
  });

  it('a signature at the edge of the allowed skew (15 minutes)', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k', date: NOW - 15 * 60 * 1000 });
    await verify(head);
  });
});

describe('tampering is rejected with SignatureDoesNotMatch', () => {
  it('method, path, query, signed header, payload hash, signature', async () => {
    const head = await signHead({
      method: 'PUT',
      path: '/b/key',
      query: { tagging: '' },
      body: 'body',
      headers: { 'x-amz-meta-a': '1', 'content-type': 'text/plain' },
    });
    await verify(head);
    const h = head.headers;
    const tampered: RequestHead[] = [
      { ...head, method: 'POST' },
      { ...head, rawPath: '/b/kez' },
      { ...head, rawPath: '/b/key/' },
      { ...head, rawPath: '/b//key' },
      { ...head, rawQuery: 'tagging=&x=1' },
      { ...head, rawQuery: '' },
      { ...head, headers: { ...h, 'x-amz-meta-a': '2' } },
      { ...head, headers: { ...h, 'content-type': 'text/html' } },
      { ...head, headers: { ...h, host: 'evil.example' } },
      { ...head, headers: { ...h, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { ...head, headers: { ...h, authorization: h['authorization']!.replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`) } },
      { ...head, headers: { ...h, authorization: h['authorization']!.replace(/Signature=\w+/, 'Signature=abc') } },
    ];
    for (const t of tampered) assert.equal(await outcome(verify(t)), 'SignatureDoesNotMatch', JSON.stringify(t).slice(0, 200));
  });

  it('the error carries the canonical request and string to sign', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k' });
    await assert.rejects(verify({ ...head, method: 'DELETE' }), (err: { fields: Record<string, string> }) => {
      assert.match(err.fields['CanonicalRequest']!, /^DELETE\n\/b\/k\n/);
      assert.match(err.fields['StringToSign']!, /^AWS4-HMAC-SHA256\n/);
      return true;
    });
  });

  it('a wrong secret', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k', credential: { ...ALICE, secretAccessKey: 'nope' } });
    assert.equal(await outcome(verify(head)), 'SignatureDoesNotMatch');
  });

  it('an unsigned x-amz-* header added after signing is AccessDenied (HeadersNotSigned)', async () => {
    const head = await signHead({ method: 'PUT', path: '/b/k' });
    await assert.rejects(verify({ ...head, headers: { ...head.headers, 'x-amz-acl': 'public-read' } }), {
      code: 'AccessDenied',
    });
  });
});

describe('credential, scope and time errors', () => {
  it('no authentication → AccessDenied', async () => {
    assert.equal(await outcome(verify({ method: 'GET', rawPath: '/b/k', rawQuery: '', headers: { host: 'h' } })), 'AccessDenied');
  });

  it('unknown access key → InvalidAccessKeyId', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k', credential: { accessKeyId: 'NOPE', secretAccessKey: 'x', buckets: [] } });
    assert.equal(await outcome(verify(head)), 'InvalidAccessKeyId');
  });

  it('scope region other than ours → AuthorizationHeaderMalformed naming the expected region', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k', region: 'eu-west-1' });
    await assert.rejects(verify(head), (err: { code: string; message: string; fields: Record<string, string> }) => {
      assert.equal(err.code, 'AuthorizationHeaderMalformed');
      assert.match(err.message, /expecting 'us-east-1'/);
      assert.equal(err.fields['Region'], 'us-east-1');
      return true;
    });
  });

  it('skew beyond 15 minutes either way → RequestTimeTooSkewed', async () => {
    for (const d of [NOW - 16 * 60 * 1000, NOW + 16 * 60 * 1000]) {
      const head = await signHead({ method: 'GET', path: '/b/k', date: d });
      assert.equal(await outcome(verify(head)), 'RequestTimeTooSkewed');
    }
  });

  it('missing x-amz-content-sha256 on header auth → InvalidRequest', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k' });
    const headers = { ...head.headers };
    delete headers['x-amz-content-sha256'];
    assert.equal(await outcome(verify({ ...head, headers })), 'InvalidRequest');
  });

  it('a bogus x-amz-content-sha256 → InvalidArgument', async () => {
    const head = await signHead({ method: 'PUT', path: '/b/k', payloadHash: 'not-a-hash' });
    assert.equal(await outcome(verify(head)), 'InvalidArgument');
  });

  it('malformed Authorization headers', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k' });
    const a = head.headers['authorization']!;
    const cases: Array<[string, string]> = [
      ['AWS AKIDALICE:c2lnbmF0dXJl', 'InvalidRequest'],
      [a.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512'), 'InvalidRequest'],
      [a.replace(/, ?Signature=\w+/, ''), 'AuthorizationHeaderMalformed'],
      [a.replace(/Credential=[^,]+/, 'Credential=AKIDALICE/20240301/us-east-1/s3'), 'AuthorizationHeaderMalformed'],
      [a.replace('/s3/', '/ec2/'), 'AuthorizationHeaderMalformed'],
      [a.replace('aws4_request', 'aws5_request'), 'AuthorizationHeaderMalformed'],
      [a.replace('/20240301/', '/20240302/'), 'AuthorizationHeaderMalformed'],
      [a.replace(/SignedHeaders=[^,]+/, 'SignedHeaders=x-amz-content-sha256;x-amz-date'), 'AuthorizationHeaderMalformed'],
    ];
    for (const [value, code] of cases) {
      assert.equal(await outcome(verify({ ...head, headers: { ...head.headers, authorization: value } })), code, value);
    }
  });

  it('a bad x-amz-date → AccessDenied; Date header alone is accepted', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k' });
    assert.equal(await outcome(verify({ ...head, headers: { ...head.headers, 'x-amz-date': '2024-03-01T12:00:00Z' } })), 'AccessDenied');
    assert.equal(await outcome(verify({ ...head, headers: { ...head.headers, 'x-amz-date': '20240230T120000Z' } })), 'AccessDenied');
  });

  it('both header and query authentication → InvalidArgument', async () => {
    const head = await signHead({ method: 'GET', path: '/b/k' });
    const p = await presignHead({ method: 'GET', path: '/b/k', expiresIn: 60 });
    assert.equal(await outcome(verify({ ...p, headers: { ...p.headers, authorization: head.headers['authorization']! } })), 'InvalidArgument');
  });
});

describe('presigned URLs (SDK presign)', () => {
  it('verify, with tricky keys and extra query parameters', async () => {
    for (const key of TRICKY_KEYS) {
      const head = await presignHead({
        method: 'GET',
        path: keyPath('b', key),
        query: { 'response-content-type': 'text/plain; charset=utf-8', versionId: '' },
        expiresIn: 3600,
      });
      const auth = await verify(head);
      assert.equal(auth.presigned, true);
      assert.deepEqual(auth.payload, { kind: 'unsigned' });
    }
  });

  it('expire after X-Amz-Expires and are not valid >15 minutes early', async () => {
    const head = await presignHead({ method: 'GET', path: '/b/k', expiresIn: 600 });
    await verify(head, { region: REGION, now: NOW + 600_000 });
    await assert.rejects(verify(head, { region: REGION, now: NOW + 600_001 }), { code: 'AccessDenied', message: 'Request has expired' });
    await verify(head, { region: REGION, now: NOW - 14 * 60 * 1000 });
    await assert.rejects(verify(head, { region: REGION, now: NOW - 16 * 60 * 1000 }), { code: 'AccessDenied' });
  });

  it('X-Amz-Expires above 7 days is rejected; exactly 7 days is accepted', async () => {
    const ok = await presignHead({ method: 'GET', path: '/b/k', expiresIn: 604800 });
    await verify(ok);
    const tooLong = { ...ok, rawQuery: ok.rawQuery.replace('X-Amz-Expires=604800', 'X-Amz-Expires=604801') };
    assert.equal(await outcome(verify(tooLong)), 'AuthorizationQueryParametersError');
    for (const bad of ['-1', 'abc']) {
      assert.equal(await outcome(verify({ ...ok, rawQuery: ok.rawQuery.replace('X-Amz-Expires=604800', `X-Amz-Expires=${bad}`) })), 'AuthorizationQueryParametersError');
    }
  });

  it('tampering with the path, a query parameter or the lifetime is rejected', async () => {
    const head = await presignHead({ method: 'GET', path: '/b/k', query: { 'response-content-type': 'a' }, expiresIn: 60 });
    const cases: RequestHead[] = [
      { ...head, rawPath: '/b/k2' },
      { ...head, method: 'PUT' },
      { ...head, rawQuery: head.rawQuery.replace('response-content-type=a', 'response-content-type=b') },
      { ...head, rawQuery: head.rawQuery.replace('X-Amz-Expires=60', 'X-Amz-Expires=61') },
      { ...head, rawQuery: `${head.rawQuery}&extra=1` },
      { ...head, headers: { ...head.headers, host: 'other:9000' } },
    ];
    for (const c of cases) assert.equal(await outcome(verify(c)), 'SignatureDoesNotMatch', c.rawQuery);
  });

  it('missing presign parameters and a wrong algorithm → AuthorizationQueryParametersError', async () => {
    const head = await presignHead({ method: 'GET', path: '/b/k', expiresIn: 60 });
    assert.equal(await outcome(verify({ ...head, rawQuery: head.rawQuery.replace(/&?X-Amz-Date=[^&]+/, '') })), 'AuthorizationQueryParametersError');
    assert.equal(
      await outcome(verify({ ...head, rawQuery: head.rawQuery.replace('X-Amz-Algorithm=AWS4-HMAC-SHA256', 'X-Amz-Algorithm=AWS4-HMAC-SHA1') })),
      'AuthorizationQueryParametersError',
    );
  });

  it('an unsigned x-amz-* request header alongside a presigned URL → AccessDenied', async () => {
    const head = await presignHead({ method: 'PUT', path: '/b/k', expiresIn: 60, extraHeaders: { 'x-amz-meta-x': '1' } });
    assert.equal(await outcome(verify(head)), 'AccessDenied');
  });
});
