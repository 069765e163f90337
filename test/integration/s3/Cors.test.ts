/**
 * Bucket CORS end to end: rules from the config file (`buckets[].cors`), unauthenticated preflight
 * OPTIONS allowed and denied, Access-Control-* headers on actual responses (errors included), and
 * Put/Get/DeleteBucketCors through @aws-sdk/client-s3.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteBucketCorsCommand, GetBucketCorsCommand, PutBucketCorsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, expectS3Error, parseErrorXml, rawRequest, sendRaw, type RawResponse } from './helpers.js';

const APP = 'https://app.example.com';
let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({
    s3rvers: 1,
    fsBackends: 0,
    bucketCors: {
      data: [
        {
          id: 'app',
          allowed_origins: [APP],
          allowed_methods: ['GET', 'PUT', 'HEAD'],
          allowed_headers: ['content-type', 'x-amz-*'],
          expose_headers: ['ETag', 'x-amz-request-id'],
          max_age_seconds: 600,
        },
        { allowed_origins: ['*'], allowed_methods: ['GET'] },
      ],
    },
  });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'web/page.html', Body: '<p>hi</p>' }));
});
after(() => t?.stop());

function preflight(path: string, headers: Record<string, string>): Promise<RawResponse> {
  const host = new URL(t.endpoint).host;
  return sendRaw(t.endpoint, { method: 'OPTIONS', path, headers: { host, ...headers } });
}

function corsHeaders(res: RawResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (k.startsWith('access-control-') || k === 'vary') out[k] = String(v);
  return out;
}

describe('CORS preflight', () => {
  it('Preflight_allowed_answers_the_rule_without_authentication', async () => {
    const res = await preflight('/data/web/page.html', {
      origin: APP,
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'Content-Type, X-Amz-Date',
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(corsHeaders(res), {
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, PUT, HEAD',
      'access-control-allow-headers': 'content-type, x-amz-date',
      'access-control-expose-headers': 'ETag, x-amz-request-id',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
    });
  });

  it('Preflight_wildcard_origin_answers_star', async () => {
    const res = await preflight('/data/anything', { origin: 'https://elsewhere.example', 'access-control-request-method': 'GET' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    assert.equal(res.headers['access-control-allow-methods'], 'GET');
  });

  it('Preflight_on_the_bucket_itself', async () => {
    const res = await preflight('/data', { origin: APP, 'access-control-request-method': 'GET' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['access-control-allow-origin'], APP);
  });

  it('Preflight_not_allowed_is_AccessForbidden', async () => {
    const cases: Record<string, string>[] = [
      { origin: 'https://evil.example', 'access-control-request-method': 'PUT' },
      { origin: APP, 'access-control-request-method': 'DELETE' },
      { origin: APP, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom' },
    ];
    for (const headers of cases) {
      const res = await preflight('/data/web/page.html', headers);
      const e = expectRawError(res, 'AccessForbidden', 403);
      assert.match(e['Message'] ?? '', /^CORSResponse: This CORS request is not allowed/);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
    }
  });

  it('Preflight_on_a_bucket_without_CORS_is_AccessForbidden', async () => {
    const res = await preflight('/other/x', { origin: APP, 'access-control-request-method': 'GET' });
    expectRawError(res, 'AccessForbidden', 403);
    const missing = await preflight('/no-such-bucket/x', { origin: APP, 'access-control-request-method': 'GET' });
    expectRawError(missing, 'AccessForbidden', 403);
  });

  it('Preflight_without_Origin_or_method_is_BadRequest', async () => {
    expectRawError(await preflight('/data/x', { 'access-control-request-method': 'GET' }), 'BadRequest', 400);
    expectRawError(await preflight('/data/x', { origin: APP }), 'BadRequest', 400);
    expectRawError(await preflight('/data/x', { origin: APP, 'access-control-request-method': 'PATCH' }), 'BadRequest', 400);
  });
});

describe('CORS headers on actual responses', () => {
  it('GetObject_with_a_matching_Origin_carries_the_rule_headers', async () => {
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data/web/page.html', headers: { origin: APP } });
    assert.equal(res.status, 200);
    assert.equal(res.text, '<p>hi</p>');
    assert.equal(res.headers['access-control-allow-origin'], APP);
    assert.equal(res.headers['access-control-allow-methods'], 'GET, PUT, HEAD');
    assert.equal(res.headers['access-control-expose-headers'], 'ETag, x-amz-request-id');
    assert.match(String(res.headers['vary']), /Origin/);
  });

  it('Error_responses_carry_CORS_headers_too', async () => {
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data/web/missing', headers: { origin: APP } });
    expectRawError(res, 'NoSuchKey', 404);
    assert.equal(res.headers['access-control-allow-origin'], APP);
  });

  it('No_or_unmatched_Origin_means_no_CORS_headers', async () => {
    const plain = await rawRequest(t.endpoint, { method: 'GET', path: '/data/web/page.html' });
    assert.deepEqual(corsHeaders(plain), {});
    // DELETE is allowed by no rule for this origin.
    const del = await rawRequest(t.endpoint, { method: 'DELETE', path: '/data/web/nothing', headers: { origin: APP } });
    assert.equal(del.status, 204);
    assert.deepEqual(corsHeaders(del), {});
    const evil = await rawRequest(t.endpoint, { method: 'GET', path: '/data/web/page.html', headers: { origin: 'https://evil.example' } });
    assert.equal(evil.headers['access-control-allow-origin'], '*', 'the wildcard GET rule matches any origin');
  });
});

describe('bucket CORS configuration', () => {
  it('GetBucketCors_returns_the_configured_rules', async () => {
    const r = await t.client.send(new GetBucketCorsCommand({ Bucket: 'data' }));
    assert.deepEqual(r.CORSRules?.[0], {
      ID: 'app',
      AllowedOrigins: [APP],
      AllowedMethods: ['GET', 'PUT', 'HEAD'],
      AllowedHeaders: ['content-type', 'x-amz-*'],
      ExposeHeaders: ['ETag', 'x-amz-request-id'],
      MaxAgeSeconds: 600,
    });
    assert.equal(r.CORSRules?.length, 2);
  });

  it('Put_Get_Delete_BucketCors_round_trip', async () => {
    const other = t.otherClient;
    await expectS3Error(other.send(new GetBucketCorsCommand({ Bucket: 'other' })), 'NoSuchCORSConfiguration', 404);
    const rules = [{ AllowedOrigins: ['https://*.other.example'], AllowedMethods: ['GET', 'POST'], AllowedHeaders: ['*'], MaxAgeSeconds: 60 }];
    await other.send(new PutBucketCorsCommand({ Bucket: 'other', CORSConfiguration: { CORSRules: rules } }));
    const got = await other.send(new GetBucketCorsCommand({ Bucket: 'other' }));
    assert.deepEqual(got.CORSRules, rules);
    const ok = await preflight('/other/k', { origin: 'https://www.other.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-anything' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers['access-control-allow-headers'], 'x-anything');
    await other.send(new DeleteBucketCorsCommand({ Bucket: 'other' }));
    await expectS3Error(other.send(new GetBucketCorsCommand({ Bucket: 'other' })), 'NoSuchCORSConfiguration', 404);
    expectRawError(await preflight('/other/k', { origin: 'https://www.other.example', 'access-control-request-method': 'POST' }), 'AccessForbidden', 403);
  });

  it('BucketCors_of_a_bucket_not_owned_is_AccessDenied', async () => {
    await expectS3Error(t.otherClient.send(new GetBucketCorsCommand({ Bucket: 'data' })), 'AccessDenied', 403);
    await expectS3Error(
      t.otherClient.send(new PutBucketCorsCommand({ Bucket: 'data', CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['GET'] }] } })),
      'AccessDenied',
      403,
    );
    await expectS3Error(t.otherClient.send(new DeleteBucketCorsCommand({ Bucket: 'data' })), 'AccessDenied', 403);
    assert.equal((await t.client.send(new GetBucketCorsCommand({ Bucket: 'data' }))).CORSRules?.length, 2, 'unchanged');
  });

  it('PutBucketCors_invalid_configurations', async () => {
    await expectS3Error(
      t.otherClient.send(new PutBucketCorsCommand({ Bucket: 'other', CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['PATCH'] }] } })),
      'InvalidRequest',
      400,
    );
    const bodies = [
      '<CORSConfiguration/>',
      '<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>',
      '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>',
      '<CORSConfiguration><CORSRule>',
    ];
    for (const body of bodies) {
      const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data', query: { cors: '' }, body });
      expectRawError(res, 'MalformedXML', 400);
    }
    const twoStars = await rawRequest(t.endpoint, {
      method: 'PUT', path: '/data', query: { cors: '' },
      body: '<CORSConfiguration><CORSRule><AllowedOrigin>https://*.*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>',
    });
    assert.match(parseErrorXml(twoStars.text)['Code'] ?? '', /^InvalidRequest$/);
    assert.equal((await t.client.send(new GetBucketCorsCommand({ Bucket: 'data' }))).CORSRules?.length, 2, 'unchanged');
  });
});
