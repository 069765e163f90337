/**
 * Protocol-level errors and response shape: x-amz-request-id on every response, the error XML (Code,
 * Message, RequestId, Resource), missing Content-Length (411), unimplemented subresources (501, nothing
 * created), methods S3 does not allow (405). Multipart and tagging are tested where they are implemented.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  GetBucketLifecycleConfigurationCommand,
  GetObjectAclCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketLifecycleConfigurationCommand,
  PutObjectAclCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, expectS3Error, parseErrorXml, rawRequest, signRequest, type RawResponse } from './helpers.js';

let t: TestOrchestrator;
before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1 });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'exists', Body: 'here' }));
});
after(() => t?.stop());

async function absent(key: string): Promise<void> {
  await expectS3Error(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key })), 'NotFound', 404);
}

async function keyCount(): Promise<number> {
  return (await t.client.send(new ListObjectsV2Command({ Bucket: 'data' }))).KeyCount ?? 0;
}

/** Writes a request head (and optional body) on a raw socket; returns the raw response text. */
function rawSocket(head: string, body = ''): Promise<string> {
  const url = new URL(t.endpoint);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(url.port), url.hostname, () => s.end(head + body));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

describe('response shape', () => {
  it('Every_response_has_a_request_id', async () => {
    const responses: RawResponse[] = [
      await rawRequest(t.endpoint, { method: 'GET', path: '/' }),
      await rawRequest(t.endpoint, { method: 'PUT', path: '/data/rid', body: 'x' }),
      await rawRequest(t.endpoint, { method: 'GET', path: '/data/rid' }),
      await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/rid' }),
      await rawRequest(t.endpoint, { method: 'GET', path: '/data', query: { 'list-type': '2' } }),
      await rawRequest(t.endpoint, { method: 'DELETE', path: '/data/rid' }),
      await rawRequest(t.endpoint, { method: 'GET', path: '/data/rid' }),
      await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/rid' }),
      await rawRequest(t.endpoint, { method: 'GET', path: '/data/exists', anonymous: true }),
      await rawRequest(t.endpoint, { method: 'GET', path: '/data/exists', query: { acl: '' } }),
    ];
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200, 200, 204, 404, 404, 403, 501],
    );
    const ids = responses.map((r) => String(r.headers['x-amz-request-id'] ?? ''));
    for (const id of ids) assert.match(id, /^[0-9A-F]{16}$/);
    assert.equal(new Set(ids).size, ids.length, 'request ids are unique');
    for (const r of responses) assert.ok(r.headers['x-amz-id-2'], 'x-amz-id-2 on every response');
  });

  it('Error_xml_shape_NoSuchKey', async () => {
    const r = await rawRequest(t.endpoint, { method: 'GET', path: '/data/missing%20key' });
    const e = expectRawError(r, 'NoSuchKey', 404);
    assert.equal(r.headers['content-type'], 'application/xml');
    assert.match(r.text, /^<\?xml version="1.0" encoding="UTF-8"\?>/);
    assert.equal(e['Key'], 'missing key');
    assert.equal(e['Resource'], '/data/missing%20key');
    assert.equal(e['Message'], 'The specified key does not exist.');
  });

  it('HeadObject_error_has_no_body', async () => {
    const r = await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/missing' });
    assert.equal(r.status, 404);
    assert.equal(r.body.length, 0);
    assert.match(String(r.headers['x-amz-request-id']), /^[0-9A-F]{16}$/);
  });

  it('Error_xml_escapes_the_resource', async () => {
    const r = await rawRequest(t.endpoint, { method: 'GET', path: '/data/%3Cscript%3E%26' });
    const e = expectRawError(r, 'NoSuchKey', 404);
    assert.equal(e['Key'], '&lt;script&gt;&amp;', 'XML-escaped in the document');
    assert.doesNotMatch(r.text, /<script>/);
  });
});

describe('bad requests', () => {
  it('PutObject_missing_content_length_chunked', async () => {
    const headers = await signRequest(t.endpoint, { method: 'PUT', path: '/data/no-length', payloadHash: 'UNSIGNED-PAYLOAD' });
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const out = await rawSocket(`PUT /data/no-length HTTP/1.1\r\n${lines}transfer-encoding: chunked\r\nconnection: close\r\n\r\n`, '5\r\nhello\r\n0\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 411/, out.slice(0, 200));
    assert.match(out, /<Code>MissingContentLength<\/Code>/);
    assert.match(out, /x-amz-request-id: [0-9A-F]{16}/i);
    await absent('no-length');
  });

  it('PutObject_missing_content_length_no_body_headers', async () => {
    const headers = await signRequest(t.endpoint, { method: 'PUT', path: '/data/no-length-2', payloadHash: 'UNSIGNED-PAYLOAD' });
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const out = await rawSocket(`PUT /data/no-length-2 HTTP/1.1\r\n${lines}connection: close\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 411/, out.slice(0, 200));
    assert.match(out, /<Code>MissingContentLength<\/Code>/);
    await absent('no-length-2');
  });

  it('PutObject_body_shorter_than_content_length', async () => {
    const headers = await signRequest(t.endpoint, { method: 'PUT', path: '/data/short', payloadHash: 'UNSIGNED-PAYLOAD' });
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    // The client half-closes after 5 of 10 bytes: the server must not store a short object.
    await rawSocket(`PUT /data/short HTTP/1.1\r\n${lines}content-length: 10\r\n\r\n`, 'hello');
    await absent('short');
  });

  it('Bucket_operation_not_allowed_is_MethodNotAllowed', async () => {
    const r = await rawRequest(t.endpoint, { method: 'PATCH', path: '/data/exists', body: '' });
    expectRawError(r, 'MethodNotAllowed', 405);
  });

  it('Invalid_bucket_name_is_InvalidBucketName', async () => {
    const r = await rawRequest(t.endpoint, { method: 'GET', path: '/Bad_Bucket/x' });
    assert.ok(r.status === 400, r.text);
    assert.equal(parseErrorXml(r.text)['Code'], 'InvalidBucketName');
  });
});

describe('unimplemented subresources', () => {
  it('PutObjectAcl_is_NotImplemented_and_creates_nothing', async () => {
    await expectS3Error(
      t.client.send(new PutObjectAclCommand({ Bucket: 'data', Key: 'acl-target', ACL: 'public-read' })),
      'NotImplemented',
      501,
    );
    await expectS3Error(t.client.send(new GetObjectAclCommand({ Bucket: 'data', Key: 'exists' })), 'NotImplemented', 501);
    await absent('acl-target');
  });

  it('Unimplemented_bucket_subresources_are_NotImplemented', async () => {
    for (const sub of ['policy', 'website', 'replication', 'object-lock', 'encryption', 'logging', 'notification']) {
      const get = await rawRequest(t.endpoint, { method: 'GET', path: '/data', query: { [sub]: '' } });
      expectRawError(get, 'NotImplemented', 501);
      const put = await rawRequest(t.endpoint, { method: 'PUT', path: '/data', query: { [sub]: '' }, body: '<x/>' });
      expectRawError(put, 'NotImplemented', 501);
    }
    assert.equal(await keyCount(), 1, 'only the object created in before()');
  });

  it('Unimplemented_object_subresources_create_nothing', async () => {
    for (const sub of ['retention', 'legal-hold', 'restore', 'torrent']) {
      const r = await rawRequest(t.endpoint, { method: sub === 'restore' ? 'POST' : 'PUT', path: '/data/sub-target', query: { [sub]: '' }, body: '<x/>' });
      expectRawError(r, 'NotImplemented', 501);
    }
    await absent('sub-target');
  });

  it('BucketLifecycle_is_NotImplemented', async () => {
    await expectS3Error(
      t.client.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: 'data',
          LifecycleConfiguration: { Rules: [{ ID: 'r', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 1 } }] },
        }),
      ),
      'NotImplemented',
      501,
    );
    await expectS3Error(t.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: 'data' })), 'NotImplemented', 501);
  });

  it('Subresource_on_put_with_body_stores_nothing', async () => {
    // A PUT ?acl with a body must never fall through to PutObject and store that body as the object.
    const r = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/sneaky', query: { acl: '' }, body: '<AccessControlPolicy/>' });
    expectRawError(r, 'NotImplemented', 501);
    await absent('sneaky');
  });
});
