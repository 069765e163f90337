/**
 * XML builder escaping and the strict DeleteObjects parser (well-formed and malformed inputs).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { el, escapeXml, parseDeleteRequest, parseXml, xmlDocument } from '../../../src/s3/xml.js';
import { S3Error } from '../../../src/s3/errors.js';
import { errorResult, toClientError } from '../../../src/s3/result.js';
import { CoreError } from '../../../src/core/errors.js';

function malformed(body: string): void {
  assert.throws(() => parseDeleteRequest(body), (err: unknown) => err instanceof S3Error && err.code === 'MalformedXML', body);
}

describe('xml builder', () => {
  test('escapes markup characters and control characters', () => {
    assert.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
    assert.equal(escapeXml('x\u0001y\r\n\tz\u007f'), 'x&#x1;y&#xD;&#xA;&#x9;z&#x7F;');
    assert.equal(escapeXml('plain €😀'), 'plain €😀');
  });
  test('elements: text escaped, children raw, empty and absent content', () => {
    assert.equal(el('Key', '<k>').xml, '<Key>&lt;k&gt;</Key>');
    assert.equal(el('A', [el('B', 1), undefined, el('C', true)]).xml, '<A><B>1</B><C>true</C></A>');
    assert.equal(el('E', '').xml, '<E></E>');
    assert.equal(el('E', undefined).xml, '<E/>');
    assert.match(xmlDocument('R', []), /^<\?xml version="1.0" encoding="UTF-8"\?>\n<R xmlns="http:\/\/s3.amazonaws.com\/doc\/2006-03-01\/"><\/R>$/);
  });
  test('every key survives build → parse', () => {
    const keys = ['a&b', '<x>', 'tab\there', 'cr\rlf\n', '\u0001\u001f', ']]>', '€😀', ' lead and trail ', "quote'\""];
    const doc = `<Delete>${keys.map((k) => el('Object', [el('Key', k)]).xml).join('')}</Delete>`;
    assert.deepEqual(parseDeleteRequest(doc).objects.map((o) => o.key), keys);
  });
  test('error body carries code, message, fields, resource and request id; HEAD has none', () => {
    const err = new S3Error('NoSuchKey', undefined, { Key: 'a<b' });
    const res = errorResult(err, 'REQ1', '/bkt/a%3Cb', false);
    assert.equal(res.status, 404);
    assert.equal(
      res.body,
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&lt;b</Key><Resource>/bkt/a%3Cb</Resource><RequestId>REQ1</RequestId></Error>',
    );
    assert.equal(errorResult(err, 'REQ1', '/', true).body, undefined);
  });
  test('core errors map to the S3 error of the same name; others are InternalError', () => {
    assert.equal(toClientError(new CoreError('NoSuchKey'), { key: 'k' }).fields['Key'], 'k');
    assert.equal(toClientError(new CoreError('InsufficientStorage')).status, 507);
    assert.equal(toClientError(new CoreError('InvalidArgument', 'bad thing')).message, 'bad thing');
    const internal = toClientError(new Error('secret detail'));
    assert.equal(internal.code, 'InternalError');
    assert.ok(!internal.message.includes('secret'));
  });
});

describe('DeleteObjects parser', () => {
  test('quiet, keys, version ids, declaration, namespace, comments, CDATA, entities', () => {
    const r = parseDeleteRequest(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- hi --><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
        <Quiet> true </Quiet>
        <Object><Key>a&amp;b&#x41;&#66;</Key></Object>
        <Object><Key><![CDATA[<raw>&]]></Key><VersionId>null</VersionId></Object>
        <Object><Key>  spaced  </Key></Object>
      </Delete>`,
    );
    assert.equal(r.quiet, true);
    assert.deepEqual(r.objects, [{ key: 'a&bAB' }, { key: '<raw>&', versionId: 'null' }, { key: '  spaced  ' }]);
  });
  test('prefixed element names and single-quoted attributes', () => {
    const r = parseDeleteRequest(`<s3:Delete xmlns:s3='x'><s3:Object><s3:Key>k</s3:Key></s3:Object></s3:Delete>`);
    assert.deepEqual(r.objects, [{ key: 'k' }]);
  });
  test('malformed inputs', () => {
    malformed('');
    malformed('not xml');
    malformed('<Delete>');
    malformed('<Delete></Remove>');
    malformed('<Delete><Object><Key>k</Key></Object></Delete><Delete/>');
    malformed('<Delete><Object><Key>k</Key></Object></Delete>trailing');
    malformed('<Delete></Delete>');
    malformed('<Other><Object><Key>k</Key></Object></Other>');
    malformed('<Delete><Object></Object></Delete>');
    malformed('<Delete><Object><Key>a&bogus;</Key></Object></Delete>');
    malformed('<Delete><Object><Key>a & b</Key></Object></Delete>');
    malformed('<Delete><Object><Key>&#xD800;</Key></Object></Delete>');
    malformed('<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>');
    malformed('<Delete><Object><Key>k<b/></Key></Object></Delete>');
    malformed('<Delete><Unknown/><Object><Key>k</Key></Object></Delete>');
    malformed('<!DOCTYPE x [<!ENTITY e "boom">]><Delete><Object><Key>&e;</Key></Object></Delete>');
    malformed('<Delete><Object><Key attr=unquoted>k</Key></Object></Delete>');
    malformed(`<Delete>${'<Object><Key>k</Key></Object>'.repeat(1001)}</Delete>`);
  });
  test('1000 objects is the limit', () => {
    assert.equal(parseDeleteRequest(`<Delete>${'<Object><Key>k</Key></Object>'.repeat(1000)}</Delete>`).objects.length, 1000);
  });
  test('generic parser keeps text exactly and decodes attributes', () => {
    const e = parseXml('<a x="1&amp;2"> t <b/></a>');
    assert.equal(e.attrs['x'], '1&2');
    assert.equal(e.children[0], ' t ');
  });
});
