/**
 * Issue 7, from 10,000 fuzzed requests: the NUL character anywhere a request carries a name (key, listing
 * parameters, continuation token, copy source, response overrides, upload id, `&#0;` or a raw NUL in an XML
 * body) answered 500 InternalError from the database (PostgreSQL text cannot hold it). Each is now refused
 * with 400 and the S3 code for its place, before any query: InvalidArgument naming the parameter, or
 * MalformedXML for XML bodies. DeleteObjects bodies that are not UTF-8 are MalformedXML (they were decoded
 * with replacement characters and answered 200), and an XML body over its size limit is answered
 * MaxMessageLengthExceeded that the client actually receives (it got a reset connection).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, rawRequest } from './helpers.js';
import { signedHead, wireExchange } from './wire.js';

let t: TestOrchestrator;

before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 0 });
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'present', Body: 'here' }));
});
after(() => t?.stop());

const md5 = (b: string | Buffer) => createHash('md5').update(b).digest('base64');

/** A request that must be refused with `code`; returns the error fields. */
async function refused(req: Parameters<typeof rawRequest>[1], code: string): Promise<Record<string, string>> {
  const res = await rawRequest(t.endpoint, req);
  if (req.method === 'HEAD') {
    assert.equal(res.status, 400, `${req.method} ${req.path}: 400`);
    return {};
  }
  return expectRawError(res, code, 400);
}

describe('the NUL character is refused before any query', () => {
  const keyCases: [string, string][] = [
    ['PUT', '/data/a%00b'],
    ['GET', '/data/a%00b'],
    ['HEAD', '/data/a%00b'],
    ['DELETE', '/data/%00'],
    ['POST', '/data/x%00?uploads'],
  ];
  for (const [method, target] of keyCases) {
    it(`in the key: ${method} ${target}`, async () => {
      const [path, rawQuery] = target.split('?');
      const query = rawQuery ? { [rawQuery]: '' } : undefined;
      const e = await refused({ method, path: path!, ...(query ? { query } : {}), ...(method === 'PUT' ? { body: 'x' } : {}) }, 'InvalidArgument');
      if (method !== 'HEAD') assert.equal(e['ArgumentName'], 'key');
    });
  }

  const listCases: [Record<string, string>, string][] = [
    [{ 'list-type': '2', prefix: 'a\0' }, 'prefix'],
    [{ 'list-type': '2', delimiter: '\0' }, 'delimiter'],
    [{ 'list-type': '2', 'start-after': '\0' }, 'start-after'],
    [{ 'list-type': '2', 'continuation-token': 'a\0b' }, 'continuation-token'],
    [{ 'list-type': '2', 'continuation-token': Buffer.from('a\0b').toString('base64') }, 'continuation-token'],
    [{ marker: 'm\0' }, 'marker'],
    [{ uploads: '', 'key-marker': 'k\0' }, 'key-marker'],
    [{ uploads: '', 'key-marker': 'k', 'upload-id-marker': '\0' }, 'upload-id-marker'],
  ];
  for (const [query, name] of listCases) {
    it(`in a listing parameter: ${name} (${JSON.stringify(query)})`, async () => {
      const e = await refused({ method: 'GET', path: '/data', query }, 'InvalidArgument');
      assert.equal(e['ArgumentName'], name);
    });
  }

  it('in the copy source', async () => {
    const e = await refused({ method: 'PUT', path: '/data/copy-dst', headers: { 'x-amz-copy-source': '/data/pre%00sent' } }, 'InvalidArgument');
    assert.equal(e['ArgumentName'], 'x-amz-copy-source');
  });

  it('in an upload id and a response override', async () => {
    assert.equal((await refused({ method: 'GET', path: '/data/present', query: { uploadId: 'u\0' } }, 'InvalidArgument'))['ArgumentName'], 'uploadId');
    const e = await refused({ method: 'GET', path: '/data/present', query: { 'response-content-type': 'text/\0' } }, 'InvalidArgument');
    assert.equal(e['ArgumentName'], 'response-content-type');
  });

  const xmlCases: [string, string, Record<string, string>, string][] = [
    ['DeleteObjects with &#0;', '/data', { delete: '' }, '<Delete><Object><Key>a&#0;b</Key></Object></Delete>'],
    ['DeleteObjects with &#x0;', '/data', { delete: '' }, '<Delete><Object><Key>&#x0;</Key></Object></Delete>'],
    ['DeleteObjects with a raw NUL', '/data', { delete: '' }, '<Delete><Object><Key>a\0b</Key></Object></Delete>'],
    ['PutBucketCors with &#0;', '/data', { cors: '' }, '<CORSConfiguration><CORSRule><AllowedOrigin>http://a&#0;</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>'],
    ['PutObjectTagging with &#0;', '/data/present', { tagging: '' }, '<Tagging><TagSet><Tag><Key>k</Key><Value>&#0;</Value></Tag></TagSet></Tagging>'],
  ];
  for (const [label, path, query, xml] of xmlCases) {
    it(`in an XML body: ${label}`, async () => {
      const method = query['delete'] !== undefined ? 'POST' : 'PUT';
      await refused({ method, path, query, body: xml, headers: { 'content-md5': md5(xml) } }, 'MalformedXML');
    });
  }

  it('in x-amz-tagging', async () => {
    await refused({ method: 'PUT', path: '/data/tagged', body: 'x', headers: { 'x-amz-tagging': 'k=%00' } }, 'InvalidTag');
  });

  it('nothing was stored, and the server answers normally afterwards', async () => {
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data', query: { 'list-type': '2' } });
    assert.equal(res.status, 200);
    assert.match(res.text, /<Key>present<\/Key>/);
    assert.doesNotMatch(res.text, /<Key>(a|x|tagged|copy-dst)/);
  });
});

describe('DeleteObjects bodies', () => {
  it('invalid UTF-8 is MalformedXML (was answered 200 with replacement characters)', async () => {
    for (const bad of [Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80])]) {
      const body = Buffer.concat([Buffer.from('<Delete><Object><Key>k'), bad, Buffer.from('</Key></Object></Delete>')]);
      await refused({ method: 'POST', path: '/data', query: { delete: '' }, body, headers: { 'content-md5': md5(body) } }, 'MalformedXML');
    }
  });

  it('a body over the limit is answered MaxMessageLengthExceeded once it is all in, so a client still sending hears it', async () => {
    const big = Buffer.concat([Buffer.from('<Delete>'), Buffer.alloc(9 * 1024 * 1024, ' '), Buffer.from('<Object><Key>present</Key></Object></Delete>')]);
    const split = 8 * 1024 * 1024 + 512 * 1024;
    const head = await signedHead(t.endpoint, {
      method: 'POST',
      path: '/data',
      query: { delete: '' },
      headers: { 'content-md5': md5(big), 'content-length': String(big.length) },
      body: big,
    });
    // Past the 8 MiB limit, a pause, then the rest: a server that answers and closes at the limit resets this
    // client's next write (what clients that send the whole body before reading, like urllib3, report).
    const res = await wireExchange(t.orch.s3Port, head, undefined, {
      write: async (socket) => {
        socket.write(head);
        socket.write(big.subarray(0, split));
        await new Promise((resolve) => setTimeout(resolve, 300));
        await new Promise((resolve) => socket.write(big.subarray(split), resolve));
      },
    });
    assert.equal(res.error, undefined, 'the client could send its whole body');
    assert.equal(res.closedByServer, false, 'the connection stayed open while the client was still sending');
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /<Code>MaxMessageLengthExceeded<\/Code>/);
    const still = await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/present' });
    assert.equal(still.status, 200, 'the oversized request deleted nothing');
  });
});
