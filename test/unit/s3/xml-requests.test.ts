/**
 * The request-body parsers of multipart, tagging, CORS and CreateBucket: valid documents as SDKs send
 * them (namespaces, whitespace, quoted ETags) and the malformed ones that must be MalformedXML.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { S3Error } from '../../../src/s3/errors.js';
import {
  parseCompleteMultipartUpload,
  parseCorsConfiguration,
  parseCreateBucketConfiguration,
  parseTagging,
} from '../../../src/s3/xml-requests.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof S3Error, `not an S3Error: ${String(err)}`);
    return err.code;
  }
  return 'no error';
}

const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';

describe('CompleteMultipartUpload body', () => {
  test('parts with quoted ETags and checksums, order kept', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
      <CompleteMultipartUpload ${NS}>
        <Part><ETag>"aaa"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
        <Part><PartNumber>1</PartNumber><ETag>&quot;bbb&quot;</ETag></Part>
      </CompleteMultipartUpload>`;
    assert.deepEqual(parseCompleteMultipartUpload(xml), [
      { partNumber: 2, etag: 'aaa', checksum: 'AAAAAA==' },
      { partNumber: 1, etag: 'bbb' },
    ]);
  });
  const bad: [string, string][] = [
    ['empty body', ''],
    ['no parts', '<CompleteMultipartUpload/>'],
    ['wrong root', '<Complete><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Complete>'],
    ['part without ETag', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>'],
    ['part without number', '<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>'],
    ['non-numeric part number', '<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>'],
    ['unknown field', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag><Size>3</Size></Part></CompleteMultipartUpload>'],
    ['two checksums', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag><ChecksumSHA1>a</ChecksumSHA1><ChecksumCRC32>b</ChecksumCRC32></Part></CompleteMultipartUpload>'],
    ['truncated', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>'],
    ['doctype', '<!DOCTYPE x [<!ENTITY e "e">]><CompleteMultipartUpload/>'],
    ['text in Part', '<CompleteMultipartUpload><Part>junk<PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>'],
  ];
  for (const [what, xml] of bad) test(`${what} → MalformedXML`, () => assert.equal(code(() => parseCompleteMultipartUpload(xml)), 'MalformedXML'));
  test('more than 10000 parts → MalformedXML', () => {
    const part = '<Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>';
    assert.equal(code(() => parseCompleteMultipartUpload(`<CompleteMultipartUpload>${part.repeat(10001)}</CompleteMultipartUpload>`)), 'MalformedXML');
  });
});

describe('Tagging body', () => {
  test('tags in order, values exact (spaces and entities kept), duplicates kept for validation', () => {
    const xml = `<Tagging ${NS}><TagSet>
      <Tag><Key>a</Key><Value> spaced </Value></Tag>
      <Tag><Value>x&amp;y</Value><Key>a</Key></Tag>
      <Tag><Key>empty</Key><Value></Value></Tag>
    </TagSet></Tagging>`;
    assert.deepEqual(parseTagging(xml), [['a', ' spaced '], ['a', 'x&y'], ['empty', '']]);
    assert.deepEqual(parseTagging('<Tagging><TagSet/></Tagging>'), []);
  });
  const bad: [string, string][] = [
    ['empty', ''],
    ['no TagSet', '<Tagging/>'],
    ['two TagSets', '<Tagging><TagSet/><TagSet/></Tagging>'],
    ['tag without value', '<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>'],
    ['tag with two keys', '<Tagging><TagSet><Tag><Key>a</Key><Key>b</Key><Value>v</Value></Tag></TagSet></Tagging>'],
    ['unknown element', '<Tagging><TagSet><Label/></TagSet></Tagging>'],
    ['wrong root', '<TagSet/>'],
  ];
  for (const [what, xml] of bad) test(`${what} → MalformedXML`, () => assert.equal(code(() => parseTagging(xml)), 'MalformedXML'));
});

describe('CORSConfiguration body', () => {
  test('rules with every field', () => {
    const xml = `<CORSConfiguration ${NS}>
      <CORSRule><ID>r1</ID><AllowedOrigin>https://a.example</AllowedOrigin><AllowedOrigin>*</AllowedOrigin>
        <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>
        <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>
      <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
    </CORSConfiguration>`;
    assert.deepEqual(parseCorsConfiguration(xml), [
      { id: 'r1', allowedOrigins: ['https://a.example', '*'], allowedMethods: ['GET', 'PUT'], allowedHeaders: ['*'], exposeHeaders: ['ETag'], maxAgeSeconds: 3000 },
      { allowedOrigins: ['*'], allowedMethods: ['HEAD'], allowedHeaders: [], exposeHeaders: [] },
    ]);
  });
  const bad: [string, string][] = [
    ['no rules', '<CORSConfiguration/>'],
    ['rule without origin', '<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>'],
    ['rule without method', '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>'],
    ['bad max age', '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule></CORSConfiguration>'],
    ['unknown field', '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Credentials/></CORSRule></CORSConfiguration>'],
    ['wrong root', '<CORS><CORSRule/></CORS>'],
  ];
  for (const [what, xml] of bad) test(`${what} → MalformedXML`, () => assert.equal(code(() => parseCorsConfiguration(xml)), 'MalformedXML'));
});

describe('CreateBucketConfiguration body', () => {
  test('with and without a LocationConstraint', () => {
    assert.deepEqual(parseCreateBucketConfiguration(`<CreateBucketConfiguration ${NS}><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`), {
      locationConstraint: 'eu-west-1',
    });
    assert.deepEqual(parseCreateBucketConfiguration('<CreateBucketConfiguration/>'), {});
  });
  test('unknown fields and other roots → MalformedXML', () => {
    assert.equal(code(() => parseCreateBucketConfiguration('<CreateBucketConfiguration><Bucket/></CreateBucketConfiguration>')), 'MalformedXML');
    assert.equal(code(() => parseCreateBucketConfiguration('<LocationConstraint>x</LocationConstraint>')), 'MalformedXML');
  });
});
