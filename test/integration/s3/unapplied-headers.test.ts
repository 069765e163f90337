/**
 * Never accept what is not applied (issue 16, first part). Every request header asking for a feature this
 * server does not implement — SSE-S3/KMS/SSE-C encryption, object lock, storage classes other than
 * STANDARD, ACL grants, website redirects, whole-object checksums at completion, conditional deletes — is
 * answered with S3's error for an unsupported option, naming the header, and nothing is written: no object,
 * no upload, no part, no deletion, no byte on any backend.
 *
 * - Coverage: every x-amz-* request header the S3 API reference defines for these operations (written out
 *   below) is either honoured (src/s3/unapplied.ts APPLIED) or refused (REFUSED), never both, and each
 *   refused (header, operation) pair is sent over the wire here with the answer this test expects.
 * - Each refusal with raw signed requests: status, code, message naming the header, and the state after it
 *   (HEAD 404, no upload, no part, object not deleted); the same requests without the header succeed.
 * - Values asking for no more than we do (STANDARD, private, ...) are accepted; invalid values are refused.
 * - @aws-sdk/client-s3 with SSE-C, SSE, object lock, storage class, ACL parameters and the encryption,
 *   object-lock, retention and legal-hold subresources; boto3 (Debian's, and a newer one when present)
 *   with SSE-C on PUT and GET.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketEncryptionCommand,
  GetBucketEncryptionCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { APPLIED, REFUSED, REFUSED_SUBRESOURCES } from '../../../src/s3/unapplied.js';
import type { S3OpName } from '../../../src/s3/router.js';
import { createSandbox, describeFailure, hasBoto3, newerPython, runTool, type ToolSandbox } from '../../harness/clients.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { expectRawError, expectS3Error, pendingWrites, physicalInventory, rawRequest, sdkFailure, type RawRequest, type RawResponse } from './helpers.js';

type Op = S3OpName;

const SSE_C = ['x-amz-server-side-encryption-customer-algorithm', 'x-amz-server-side-encryption-customer-key', 'x-amz-server-side-encryption-customer-key-md5'];
const COPY_SSE_C = SSE_C.map((h) => h.replace('x-amz-', 'x-amz-copy-source-'));
const KMS = ['x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-server-side-encryption-context', 'x-amz-server-side-encryption-bucket-key-enabled'];
const LOCK = ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'];
const CHECKSUMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'].map((a) => `x-amz-checksum-${a}`);
const GRANTS = ['x-amz-grant-full-control', 'x-amz-grant-read', 'x-amz-grant-read-acp', 'x-amz-grant-write-acp'];
const COPY_IF = ['if-match', 'if-modified-since', 'if-none-match', 'if-unmodified-since'].map((c) => `x-amz-copy-source-${c}`);

/**
 * The request headers the Amazon S3 API reference defines for each operation (x-amz-*, plus the
 * conditional-delete If-Match), as of 2025. `x-amz-meta-*` stands for user metadata.
 */
const S3_DEFINED: Record<string, string[]> = {
  PutObject: [
    'x-amz-acl', ...GRANTS, 'x-amz-write-offset-bytes', 'x-amz-server-side-encryption', 'x-amz-storage-class',
    'x-amz-website-redirect-location', ...SSE_C, ...KMS, 'x-amz-request-payer', 'x-amz-tagging', ...LOCK,
    'x-amz-expected-bucket-owner', 'x-amz-sdk-checksum-algorithm', ...CHECKSUMS, 'x-amz-meta-*',
  ],
  CopyObject: [
    'x-amz-acl', 'x-amz-checksum-algorithm', 'x-amz-copy-source', ...COPY_IF, ...GRANTS, 'x-amz-metadata-directive',
    'x-amz-tagging-directive', 'x-amz-server-side-encryption', 'x-amz-storage-class', 'x-amz-website-redirect-location',
    ...SSE_C, ...KMS, ...COPY_SSE_C, 'x-amz-request-payer', 'x-amz-tagging', ...LOCK, 'x-amz-expected-bucket-owner',
    'x-amz-source-expected-bucket-owner', 'x-amz-meta-*',
  ],
  CreateMultipartUpload: [
    'x-amz-acl', ...GRANTS, 'x-amz-server-side-encryption', 'x-amz-storage-class', 'x-amz-website-redirect-location',
    ...SSE_C, ...KMS, 'x-amz-request-payer', 'x-amz-tagging', ...LOCK, 'x-amz-expected-bucket-owner',
    'x-amz-checksum-algorithm', 'x-amz-checksum-type', 'x-amz-meta-*',
  ],
  UploadPart: ['x-amz-sdk-checksum-algorithm', ...CHECKSUMS, ...SSE_C, 'x-amz-request-payer', 'x-amz-expected-bucket-owner'],
  UploadPartCopy: [
    'x-amz-copy-source', ...COPY_IF, 'x-amz-copy-source-range', ...SSE_C, ...COPY_SSE_C, 'x-amz-request-payer',
    'x-amz-expected-bucket-owner', 'x-amz-source-expected-bucket-owner',
  ],
  CompleteMultipartUpload: [...CHECKSUMS, 'x-amz-checksum-type', 'x-amz-mp-object-size', 'x-amz-request-payer', 'x-amz-expected-bucket-owner', ...SSE_C],
  CreateBucket: ['x-amz-acl', 'x-amz-grant-full-control', 'x-amz-grant-read', 'x-amz-grant-read-acp', 'x-amz-grant-write', 'x-amz-grant-write-acp', 'x-amz-bucket-object-lock-enabled', 'x-amz-object-ownership'],
  GetObject: [...SSE_C, 'x-amz-request-payer', 'x-amz-expected-bucket-owner', 'x-amz-checksum-mode'],
  HeadObject: [...SSE_C, 'x-amz-request-payer', 'x-amz-expected-bucket-owner', 'x-amz-checksum-mode'],
  DeleteObject: ['x-amz-mfa', 'x-amz-request-payer', 'x-amz-bypass-governance-retention', 'x-amz-expected-bucket-owner', 'if-match', 'x-amz-if-match-last-modified-time', 'x-amz-if-match-size'],
  DeleteObjects: ['x-amz-mfa', 'x-amz-request-payer', 'x-amz-bypass-governance-retention', 'x-amz-expected-bucket-owner', 'x-amz-sdk-checksum-algorithm'],
};

/** Refused although S3 does not define them for the operation: S3 itself answers InvalidArgument. */
const REFUSED_BEYOND_S3_DEFINED = ['GetObject', 'HeadObject', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload'].map((op) => `${op} x-amz-server-side-encryption`);

const matches = (pattern: string, header: string) => (pattern.endsWith('*') ? header.startsWith(pattern.slice(0, -1)) : pattern === header);
const isApplied = (op: string, header: string) => APPLIED.some((a) => a.ops.includes(op as Op) && matches(a.header, header));
const isRefused = (op: string, header: string) => REFUSED.some((r) => r.ops.includes(op as Op) && r.header === header);

/** The customer key of the SSE-C requests (never stored: the requests are refused). */
const SSE_KEY = randomBytes(32);
const sseC: Record<string, string> = {
  'x-amz-server-side-encryption-customer-algorithm': 'AES256',
  'x-amz-server-side-encryption-customer-key': SSE_KEY.toString('base64'),
  'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(SSE_KEY).digest('base64'),
};
const copySseC = Object.fromEntries(Object.entries(sseC).map(([k, v]) => [k.replace('x-amz-', 'x-amz-copy-source-'), v]));

/** One refusal this test expects: the header with a value asking for the feature, on `ops`. */
interface Case {
  header: string;
  value: string;
  ops: Op[];
  code: string;
  status: number;
}

const WRITES: Op[] = ['PutObject', 'CopyObject', 'CreateMultipartUpload'];
const NOT_IMPLEMENTED = { code: 'NotImplemented', status: 501 };
const INVALID_REQUEST = { code: 'InvalidRequest', status: 400 };
const RETAIN = new Date(Date.now() + 86_400_000).toISOString();

const CASES: Case[] = [
  { header: 'x-amz-server-side-encryption', value: 'AES256', ops: WRITES, ...NOT_IMPLEMENTED },
  { header: 'x-amz-server-side-encryption', value: 'aws:kms', ops: ['CreateMultipartUpload'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-server-side-encryption', value: 'aws:kms:dsse', ops: ['PutObject'], ...NOT_IMPLEMENTED },
  {
    header: 'x-amz-server-side-encryption',
    value: 'AES256',
    ops: ['GetObject', 'HeadObject', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload'],
    code: 'InvalidArgument',
    status: 400,
  },
  { header: 'x-amz-server-side-encryption-aws-kms-key-id', value: 'arn:aws:kms:us-east-1:123456789012:key/abc', ops: WRITES, ...NOT_IMPLEMENTED },
  { header: 'x-amz-server-side-encryption-context', value: Buffer.from('{"a":"b"}').toString('base64'), ops: WRITES, ...NOT_IMPLEMENTED },
  { header: 'x-amz-server-side-encryption-bucket-key-enabled', value: 'true', ops: WRITES, ...NOT_IMPLEMENTED },
  ...SSE_C.map((header) => ({ header, value: sseC[header]!, ops: [...WRITES, 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload'] as Op[], ...NOT_IMPLEMENTED })),
  ...SSE_C.map((header) => ({ header, value: sseC[header]!, ops: ['GetObject', 'HeadObject'] as Op[], ...INVALID_REQUEST })),
  ...COPY_SSE_C.map((header) => ({ header, value: copySseC[header]!, ops: ['CopyObject', 'UploadPartCopy'] as Op[], ...INVALID_REQUEST })),
  { header: 'x-amz-bucket-object-lock-enabled', value: 'true', ops: ['CreateBucket'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-object-lock-mode', value: 'GOVERNANCE', ops: WRITES, ...INVALID_REQUEST },
  { header: 'x-amz-object-lock-mode', value: 'COMPLIANCE', ops: ['PutObject'], ...INVALID_REQUEST },
  { header: 'x-amz-object-lock-retain-until-date', value: RETAIN, ops: WRITES, ...INVALID_REQUEST },
  { header: 'x-amz-object-lock-legal-hold', value: 'ON', ops: WRITES, ...INVALID_REQUEST },
  { header: 'x-amz-object-lock-legal-hold', value: 'OFF', ops: ['PutObject'], ...INVALID_REQUEST },
  { header: 'x-amz-storage-class', value: 'GLACIER', ops: WRITES, code: 'InvalidStorageClass', status: 400 },
  { header: 'x-amz-storage-class', value: 'REDUCED_REDUNDANCY', ops: ['PutObject'], code: 'InvalidStorageClass', status: 400 },
  { header: 'x-amz-storage-class', value: 'NEARLINE', ops: ['PutObject'], code: 'InvalidStorageClass', status: 400 },
  { header: 'x-amz-website-redirect-location', value: '/elsewhere.html', ops: WRITES, ...NOT_IMPLEMENTED },
  { header: 'x-amz-write-offset-bytes', value: '0', ops: ['PutObject'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-acl', value: 'public-read', ops: [...WRITES, 'CreateBucket'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-acl', value: 'authenticated-read', ops: ['PutObject'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-acl', value: 'everyone-may-write', ops: ['PutObject'], code: 'InvalidArgument', status: 400 },
  ...GRANTS.map((header) => ({ header, value: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"', ops: [...WRITES, 'CreateBucket'] as Op[], ...NOT_IMPLEMENTED })),
  { header: 'x-amz-grant-write', value: 'id="someone-else"', ops: ['CreateBucket'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-object-ownership', value: 'ObjectWriter', ops: ['CreateBucket'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-checksum-algorithm', value: 'SHA256', ops: ['CopyObject'], ...NOT_IMPLEMENTED },
  ...CHECKSUMS.map((header) => ({ header, value: header.endsWith('sha256') ? 'x'.repeat(43) + '=' : 'AAAAAA==', ops: ['CompleteMultipartUpload'] as Op[], ...NOT_IMPLEMENTED })),
  { header: 'x-amz-checksum-type', value: 'FULL_OBJECT', ops: ['CompleteMultipartUpload'], ...INVALID_REQUEST },
  { header: 'x-amz-mp-object-size', value: '9', ops: ['CompleteMultipartUpload'], ...NOT_IMPLEMENTED },
  { header: 'if-match', value: '"0123456789abcdef0123456789abcdef"', ops: ['DeleteObject'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-if-match-last-modified-time', value: new Date().toUTCString(), ops: ['DeleteObject'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-if-match-size', value: '11', ops: ['DeleteObject'], ...NOT_IMPLEMENTED },
  { header: 'x-amz-mfa', value: 'arn:aws:iam::123456789012:mfa/user 123456', ops: ['DeleteObject', 'DeleteObjects'], ...NOT_IMPLEMENTED },
];

describe('the refused and applied lists', () => {
  it('cover every x-amz-* header S3 defines for these operations, each (operation, header) in exactly one list', () => {
    const problems: string[] = [];
    for (const [op, headers] of Object.entries(S3_DEFINED)) {
      for (const h of headers) {
        const applied = isApplied(op, h);
        const refused = isRefused(op, h);
        if (!applied && !refused) problems.push(`${op} ${h}: in neither list`);
        if (applied && refused) problems.push(`${op} ${h}: in both lists`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('name only headers S3 defines for the operation (no misspelt header names)', () => {
    const stray: string[] = [];
    for (const r of REFUSED) {
      for (const op of r.ops) if (!S3_DEFINED[op]?.includes(r.header) && !REFUSED_BEYOND_S3_DEFINED.includes(`${op} ${r.header}`)) stray.push(`refused ${op} ${r.header}`);
    }
    for (const a of APPLIED) {
      for (const op of a.ops) if (!S3_DEFINED[op]?.some((h) => h === a.header)) stray.push(`applied ${op} ${a.header}`);
    }
    assert.deepEqual(stray, []);
  });

  it('every refused (operation, header) is exercised below, and every case is a refused row', () => {
    const table = new Set(REFUSED.flatMap((r) => r.ops.map((op) => `${op} ${r.header}`)));
    const tested = new Set(CASES.flatMap((c) => c.ops.map((op) => `${op} ${c.header}`)));
    assert.deepEqual([...table].filter((x) => !tested.has(x)).sort(), [], 'refused rows without a case');
    assert.deepEqual([...tested].filter((x) => !table.has(x)).sort(), [], 'cases that are not refused rows');
  });
});

let t: TestOrchestrator;
let uploadId: string;
let part1Etag: string;
let box: ToolSandbox | undefined;

/** Objects the setup writes: plain ones, with a CRC32 checksum (PutObject via the SDK). */
const PLAIN = 'unapplied/plain.txt';
const SOURCE = 'unapplied/source.txt';
const DELETE_ME = 'unapplied/keep-me.txt';
const MP_KEY = 'unapplied/mp.bin';

before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
  for (const key of [PLAIN, SOURCE, DELETE_ME]) {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: `bytes of ${key}`, ChecksumAlgorithm: 'CRC32' }));
  }
  const mp = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: MP_KEY }));
  uploadId = mp.UploadId!;
  const p1 = await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: MP_KEY, UploadId: uploadId, PartNumber: 1, Body: 'part one' }));
  part1Etag = p1.ETag!;
});
after(async () => {
  await t?.stop();
  await box?.cleanup();
});

const completeXml = () => `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part1Etag}</ETag></Part></CompleteMultipartUpload>`;
const deleteXml = `<Delete><Object><Key>${DELETE_ME}</Key></Object></Delete>`;
const md5 = (s: string) => createHash('md5').update(s).digest('base64');
const enc = (key: string) => key.split('/').map(encodeURIComponent).join('/');

/** The raw request for `op` writing (or reading, deleting) `key`, with `extra` headers. */
function requestFor(op: Op, key: string, extra: Record<string, string>): RawRequest {
  const path = `/data/${enc(key)}`;
  const copy = { 'x-amz-copy-source': `data/${SOURCE}` };
  switch (op) {
    case 'PutObject':
      return { method: 'PUT', path, body: 'should not be stored', headers: extra };
    case 'CopyObject':
      return { method: 'PUT', path, headers: { ...copy, ...extra } };
    case 'CreateMultipartUpload':
      return { method: 'POST', path, query: { uploads: '' }, headers: extra };
    case 'UploadPart':
      return { method: 'PUT', path: `/data/${enc(MP_KEY)}`, query: { partNumber: '2', uploadId }, body: 'part two', headers: extra };
    case 'UploadPartCopy':
      return { method: 'PUT', path: `/data/${enc(MP_KEY)}`, query: { partNumber: '3', uploadId }, headers: { ...copy, ...extra } };
    case 'CompleteMultipartUpload':
      return { method: 'POST', path: `/data/${enc(MP_KEY)}`, query: { uploadId }, body: completeXml(), headers: extra };
    case 'CreateBucket':
      return { method: 'PUT', path: '/data', headers: extra };
    case 'GetObject':
      return { method: 'GET', path: `/data/${enc(PLAIN)}`, headers: extra };
    case 'HeadObject':
      return { method: 'HEAD', path: `/data/${enc(PLAIN)}`, headers: extra };
    case 'DeleteObject':
      return { method: 'DELETE', path: `/data/${enc(DELETE_ME)}`, headers: extra };
    case 'DeleteObjects':
      return { method: 'POST', path: '/data', query: { delete: '' }, body: deleteXml, headers: { 'content-md5': md5(deleteXml), ...extra } };
    default:
      throw new Error(`no request for ${op}`);
  }
}

async function status(method: string, key: string): Promise<number> {
  return (await rawRequest(t.endpoint, { method, path: `/data/${enc(key)}` })).status;
}

async function uploadsUnder(prefix: string): Promise<string[]> {
  const r = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: prefix }));
  return (r.Uploads ?? []).map((u) => u.UploadId!);
}

async function partNumbers(): Promise<number[]> {
  const { rows } = await t.orch.db.query<{ part_number: number }>(
    'SELECT part_number FROM multipart_parts p JOIN multipart_uploads u ON u.upload_id = p.upload_id WHERE u.upload_id = $1 ORDER BY 1',
    [uploadId],
  );
  return rows.map((r) => Number(r.part_number));
}

/** What must hold after `op` was refused for `key`: nothing written, nothing deleted. */
async function assertNothingChanged(op: Op, key: string, what: string): Promise<void> {
  switch (op) {
    case 'PutObject':
    case 'CopyObject':
    case 'CreateMultipartUpload':
      assert.equal(await status('HEAD', key), 404, `${what}: no object`);
      assert.deepEqual(await uploadsUnder(key), [], `${what}: no upload`);
      break;
    case 'UploadPart':
    case 'UploadPartCopy':
      assert.deepEqual(await partNumbers(), [1], `${what}: the upload still has part 1 only`);
      break;
    case 'CompleteMultipartUpload':
      assert.equal(await status('HEAD', MP_KEY), 404, `${what}: not completed`);
      assert.deepEqual(await uploadsUnder(MP_KEY), [uploadId], `${what}: the upload is still in progress`);
      break;
    case 'DeleteObject':
    case 'DeleteObjects':
      assert.equal(await status('HEAD', DELETE_ME), 200, `${what}: not deleted`);
      break;
    default:
      break;
  }
}

/** Rows and bytes that no refused request may change. */
async function snapshot(): Promise<unknown> {
  const { rows } = await t.orch.db.query<{ versions: string; copies: string; uploads: string; parts: string }>(
    `SELECT (SELECT count(*) FROM object_versions)::text AS versions, (SELECT count(*) FROM object_copies)::text AS copies,
            (SELECT count(*) FROM multipart_uploads)::text AS uploads, (SELECT count(*) FROM multipart_parts)::text AS parts`,
  );
  return { rows: rows[0], physical: await physicalInventory(t) };
}

function assertNamesHeader(res: RawResponse, c: Case, op: Op): void {
  const what = `${op} with ${c.header}: ${c.value}`;
  if (op === 'HeadObject') {
    assert.equal(res.status, c.status, `${what}: status`);
    assert.equal(res.text, '', 'HEAD errors carry no body');
    return;
  }
  const e = expectRawError(res, c.code, c.status);
  assert.ok(e['Message']!.includes(c.header), `${what}: the message names the header: ${e['Message']}`);
  if (c.code === 'NotImplemented') assert.equal(e['Header'], c.header, `${what}: <Header>`);
  if (c.code === 'InvalidArgument') assert.equal(e['ArgumentName'], c.header, `${what}: <ArgumentName>`);
  assert.ok(!res.text.includes(SSE_KEY.toString('base64')), `${what}: the customer key is never echoed`);
}

describe('every refused header, over the wire', () => {
  it('is answered with S3’s error naming it, and nothing is written or deleted', async () => {
    const before = await snapshot();
    let n = 0;
    for (const c of CASES) {
      for (const op of c.ops) {
        const key = `unapplied/refused-${n++}`;
        const res = await rawRequest(t.endpoint, requestFor(op, key, { [c.header]: c.value }));
        assertNamesHeader(res, c, op);
        await assertNothingChanged(op, key, `${op} with ${c.header}`);
      }
    }
    assert.deepEqual(await snapshot(), before, 'no row and no backend byte changed');
    assert.equal(await pendingWrites(t), 0);
  });

  it('SSE-C on GET/HEAD of a missing object is NoSuchKey (404) first, as S3 answers', async () => {
    const res = await rawRequest(t.endpoint, { method: 'GET', path: '/data/unapplied/missing', headers: sseC });
    expectRawError(res, 'NoSuchKey', 404);
    const head = await rawRequest(t.endpoint, { method: 'HEAD', path: '/data/unapplied/missing', headers: sseC });
    assert.equal(head.status, 404);
  });

  it('copy-source SSE-C naming a missing source is NoSuchKey for the source key', async () => {
    const res = await rawRequest(t.endpoint, { method: 'PUT', path: '/data/unapplied/copy-dst', headers: { 'x-amz-copy-source': 'data/unapplied/missing-src', ...copySseC } });
    const e = expectRawError(res, 'NoSuchKey', 404);
    assert.equal(e['Key'], 'unapplied/missing-src');
  });

  it('values asking for no more than what is done are accepted', async () => {
    const ok: [Op, Record<string, string>][] = [
      ['PutObject', { 'x-amz-storage-class': 'STANDARD' }],
      ['PutObject', { 'x-amz-acl': 'private' }],
      ['PutObject', { 'x-amz-acl': 'bucket-owner-full-control' }],
      ['PutObject', { 'x-amz-server-side-encryption-bucket-key-enabled': 'false' }],
      ['CreateMultipartUpload', { 'x-amz-storage-class': 'STANDARD', 'x-amz-acl': 'private' }],
      ['CopyObject', { 'x-amz-storage-class': 'STANDARD', 'x-amz-metadata-directive': 'REPLACE' }],
      // The copy keeps the source's CRC32: asking for it is honoured.
      ['CopyObject', { 'x-amz-checksum-algorithm': 'CRC32' }],
      ['CreateBucket', { 'x-amz-acl': 'private', 'x-amz-bucket-object-lock-enabled': 'false', 'x-amz-object-ownership': 'BucketOwnerEnforced' }],
      ['GetObject', { 'x-amz-request-payer': 'requester' }],
    ];
    let n = 0;
    for (const [op, headers] of ok) {
      const key = `unapplied/accepted-${n++}`;
      const res = await rawRequest(t.endpoint, requestFor(op, key, headers));
      assert.equal(res.status, 200, `${op} ${JSON.stringify(headers)}: ${res.text.slice(0, 300)}`);
      if (op === 'CreateMultipartUpload') {
        const id = /<UploadId>([^<]+)<\/UploadId>/.exec(res.text)![1]!;
        await rawRequest(t.endpoint, { method: 'DELETE', path: `/data/${enc(key)}`, query: { uploadId: id } });
      }
    }
  });

  it('the same requests without the refused header succeed (the header alone was refused)', async () => {
    const order: Op[] = ['PutObject', 'CopyObject', 'CreateMultipartUpload', 'UploadPart', 'UploadPartCopy', 'GetObject', 'HeadObject', 'CreateBucket', 'CompleteMultipartUpload', 'DeleteObject', 'DeleteObjects'];
    for (const op of order) {
      const res = await rawRequest(t.endpoint, requestFor(op, `unapplied/control-${op}`, {}));
      assert.ok(res.status === 200 || res.status === 204, `${op} without the header: ${res.status} ${res.text.slice(0, 300)}`);
      if (op === 'CreateMultipartUpload') {
        const id = /<UploadId>([^<]+)<\/UploadId>/.exec(res.text)![1]!;
        await rawRequest(t.endpoint, { method: 'DELETE', path: `/data/${enc(`unapplied/control-${op}`)}`, query: { uploadId: id } });
      }
    }
    assert.equal(await status('HEAD', MP_KEY), 200, 'the upload completed');
    assert.equal(await status('HEAD', DELETE_ME), 404, 'the delete deleted');
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: DELETE_ME, Body: 'again' }));
  });

  it('x-amz-expected-bucket-owner is checked against the Owner ID this credential is shown', async () => {
    const owner = (await t.client.send(new ListBucketsCommand({}))).Owner!.ID!;
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'unapplied/owned', Body: 'x', ExpectedBucketOwner: owner }));
    await expectS3Error(t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'unapplied/not-owned', Body: 'x', ExpectedBucketOwner: '123456789012' })), 'AccessDenied', 403);
    assert.equal(await status('HEAD', 'unapplied/not-owned'), 404);
    await expectS3Error(
      t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'unapplied/not-copied', CopySource: `data/${SOURCE}`, ExpectedSourceBucketOwner: '123456789012' })),
      'AccessDenied',
      403,
    );
    assert.equal(await status('HEAD', 'unapplied/not-copied'), 404);
    await t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: 'unapplied/copied', CopySource: `data/${SOURCE}`, ExpectedSourceBucketOwner: owner, ExpectedBucketOwner: owner }));
  });

  it('the configuration subresources of these features are 501 NotImplemented naming the subresource', async () => {
    for (const { subresource } of REFUSED_SUBRESOURCES) {
      const objectLevel = ['retention', 'legal-hold', 'restore'].includes(subresource);
      for (const method of objectLevel ? ['GET', 'PUT', 'POST'] : ['GET', 'PUT', 'DELETE']) {
        const res = await rawRequest(t.endpoint, { method, path: objectLevel ? `/data/${enc(PLAIN)}` : '/data', query: { [subresource]: '' }, body: '<x/>' });
        const e = expectRawError(res, 'NotImplemented', 501);
        assert.ok(e['Message']!.includes(subresource), `${method} ?${subresource}: ${e['Message']}`);
      }
    }
  });
});

/** Asserts an SDK call fails with `code`/`status` and a message naming `header`. */
async function sdkError(p: Promise<unknown>, code: string, status: number, header: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err;
    assert.deepEqual({ code: err.name, status: err.$metadata.httpStatusCode }, { code, status }, err.message);
    assert.ok(err.message.includes(header), `message names ${header}: ${err.message}`);
    return;
  }
  assert.fail(`expected ${code}`);
}

describe('@aws-sdk/client-s3', () => {
  const key = (n: string) => `unapplied/sdk-${n}`;
  const ssec = { SSECustomerAlgorithm: 'AES256', SSECustomerKey: SSE_KEY.toString('base64') };

  it('SSE-C on PutObject, CopyObject and CreateMultipartUpload: 501, nothing stored', async () => {
    await sdkError(t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key('ssec'), Body: 'secret', ...ssec })), 'NotImplemented', 501, 'x-amz-server-side-encryption-customer-algorithm');
    await sdkError(t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: key('ssec-copy'), CopySource: `data/${SOURCE}`, ...ssec })), 'NotImplemented', 501, 'x-amz-server-side-encryption-customer-algorithm');
    await sdkError(t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key('ssec-mp'), ...ssec })), 'NotImplemented', 501, 'x-amz-server-side-encryption-customer-algorithm');
    for (const k of ['ssec', 'ssec-copy', 'ssec-mp']) assert.equal(await status('HEAD', key(k)), 404);
    assert.deepEqual(await uploadsUnder(key('ssec-mp')), []);
  });

  it('SSE-C on GetObject/HeadObject of an object stored without it: 400 InvalidRequest, no bytes', async () => {
    await sdkError(t.client.send(new GetObjectCommand({ Bucket: 'data', Key: PLAIN, ...ssec })), 'InvalidRequest', 400, 'x-amz-server-side-encryption-customer-algorithm');
    // HEAD errors have no body: the SDK sees only the status.
    const f = await sdkFailure(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: PLAIN, ...ssec })));
    assert.equal(f.status, 400);
    await sdkError(
      t.client.send(new CopyObjectCommand({ Bucket: 'data', Key: key('ssec-src'), CopySource: `data/${PLAIN}`, CopySourceSSECustomerAlgorithm: 'AES256', CopySourceSSECustomerKey: SSE_KEY.toString('base64') })),
      'InvalidRequest',
      400,
      'x-amz-copy-source-server-side-encryption-customer-algorithm',
    );
  });

  it('ServerSideEncryption AES256 / aws:kms, ObjectLock*, StorageClass, ACL: refused, nothing stored', async () => {
    const cases: [string, Record<string, unknown>, string, number, string][] = [
      ['sse', { ServerSideEncryption: 'AES256' }, 'NotImplemented', 501, 'x-amz-server-side-encryption'],
      ['kms', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/x' }, 'NotImplemented', 501, 'x-amz-server-side-encryption'],
      ['lock', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) }, 'InvalidRequest', 400, 'x-amz-object-lock-'],
      ['hold', { ObjectLockLegalHoldStatus: 'ON' }, 'InvalidRequest', 400, 'x-amz-object-lock-legal-hold'],
      ['glacier', { StorageClass: 'GLACIER' }, 'InvalidStorageClass', 400, 'x-amz-storage-class'],
      ['acl', { ACL: 'public-read' }, 'NotImplemented', 501, 'x-amz-acl'],
      ['redirect', { WebsiteRedirectLocation: '/x' }, 'NotImplemented', 501, 'x-amz-website-redirect-location'],
    ];
    for (const [name, params, code, st, header] of cases) {
      await sdkError(t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key(name), Body: 'x', ...params } as never)), code, st, header);
      await sdkError(t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key(`${name}-mp`), ...params } as never)), code, st, header);
      assert.equal(await status('HEAD', key(name)), 404, name);
      assert.deepEqual(await uploadsUnder(key(`${name}-mp`)), [], name);
    }
    await sdkError(t.client.send(new UploadPartCommand({ Bucket: 'data', Key: MP_KEY, UploadId: uploadId, PartNumber: 4, Body: 'x', ...ssec })), 'NotImplemented', 501, 'x-amz-server-side-encryption-customer');
  });

  it('presigned URLs: refused headers the presigner moved into the query string are refused too', async () => {
    // getSignedUrl hoists x-amz-storage-class, x-amz-acl, x-amz-object-lock-* and the like into the query.
    const cases: [string, Record<string, unknown>, string, number, string][] = [
      ['glacier', { StorageClass: 'GLACIER' }, 'InvalidStorageClass', 400, 'x-amz-storage-class'],
      ['acl', { ACL: 'public-read' }, 'NotImplemented', 501, 'x-amz-acl'],
      ['lock', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) }, 'InvalidRequest', 400, 'x-amz-object-lock-'],
      ['owner', { ExpectedBucketOwner: '123456789012' }, 'AccessDenied', 403, 'x-amz-expected-bucket-owner'],
    ];
    for (const [name, params, code, st, header] of cases) {
      const url = await getSignedUrl(t.client, new PutObjectCommand({ Bucket: 'data', Key: key(`presigned-${name}`), ...params } as never), { expiresIn: 300 });
      assert.ok(url.includes(header), `${name}: the presigner put ${header} in the query: ${url}`);
      const res = await fetch(url, { method: 'PUT', body: '' });
      const text = await res.text();
      assert.equal(res.status, st, `${name}: ${text}`);
      assert.match(text, new RegExp(`<Code>${code}</Code>`));
      assert.ok(text.includes(header), `${name}: the message names ${header}: ${text}`);
      assert.equal(await status('HEAD', key(`presigned-${name}`)), 404, name);
    }
    const plain = await getSignedUrl(t.client, new PutObjectCommand({ Bucket: 'data', Key: key('presigned-standard'), StorageClass: 'STANDARD', ACL: 'private' }), { expiresIn: 300 });
    assert.equal((await fetch(plain, { method: 'PUT', body: '' })).status, 200, 'STANDARD and private are accepted from the query too');
  });

  it('CreateBucket with ObjectLockEnabledForBucket or a public ACL: 501', async () => {
    await sdkError(t.client.send(new CreateBucketCommand({ Bucket: 'data', ObjectLockEnabledForBucket: true })), 'NotImplemented', 501, 'x-amz-bucket-object-lock-enabled');
    await sdkError(t.client.send(new CreateBucketCommand({ Bucket: 'data', ACL: 'public-read' })), 'NotImplemented', 501, 'x-amz-acl');
    await t.client.send(new CreateBucketCommand({ Bucket: 'data', ObjectLockEnabledForBucket: false }));
  });

  it('bucket encryption, object lock configuration, retention and legal hold: 501 NotImplemented', async () => {
    const calls: (() => Promise<unknown>)[] = [
      () => t.client.send(new PutBucketEncryptionCommand({ Bucket: 'data', ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } })),
      () => t.client.send(new GetBucketEncryptionCommand({ Bucket: 'data' })),
      () => t.client.send(new DeleteBucketEncryptionCommand({ Bucket: 'data' })),
      () => t.client.send(new PutObjectLockConfigurationCommand({ Bucket: 'data', ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } })),
      () => t.client.send(new GetObjectLockConfigurationCommand({ Bucket: 'data' })),
      () => t.client.send(new PutObjectRetentionCommand({ Bucket: 'data', Key: PLAIN, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 86_400_000) } })),
      () => t.client.send(new GetObjectRetentionCommand({ Bucket: 'data', Key: PLAIN })),
      () => t.client.send(new PutObjectLegalHoldCommand({ Bucket: 'data', Key: PLAIN, LegalHold: { Status: 'ON' } })),
      () => t.client.send(new GetObjectLegalHoldCommand({ Bucket: 'data', Key: PLAIN })),
    ];
    for (const c of calls) await expectS3Error(c(), 'NotImplemented', 501);
  });
});

// boto3: Debian's /usr/bin/python3 (python3-boto3) and, when present, the newer one first on PATH.
const BOTO3_SCRIPT = `
import json, os, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=os.environ["S3O_ENDPOINT"], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}))
key = bytes.fromhex(os.environ["SSE_KEY_HEX"])
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = {"ok": True}
    except ClientError as e:
        out[name] = {"code": e.response["Error"].get("Code"), "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                     "message": e.response["Error"].get("Message", "")}
attempt("put", lambda: s3.put_object(Bucket="data", Key=sys.argv[1], Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=key))
attempt("head_after_put", lambda: s3.head_object(Bucket="data", Key=sys.argv[1]))
attempt("get", lambda: s3.get_object(Bucket="data", Key=sys.argv[2], SSECustomerAlgorithm="AES256", SSECustomerKey=key))
attempt("get_plain", lambda: s3.get_object(Bucket="data", Key=sys.argv[2])["Body"].read())
print(json.dumps(out))
`;

const newer = newerPython();
const pythons = [
  { label: 'debian', python: '/usr/bin/python3', skip: hasBoto3('/usr/bin/python3') ? false : '/usr/bin/python3 cannot import boto3 (python3-boto3)' },
  { label: 'newer', python: newer ?? 'python3', skip: newer ? false : 'no python3 other than /usr/bin/python3 with boto3 on PATH' },
];

for (const { label, python, skip } of pythons) {
  describe(`boto3 (${label} python)`, { skip }, () => {
    it('SSE-C put_object is 501 NotImplemented and stores nothing; SSE-C get_object of a plain object is 400 InvalidRequest', async () => {
      box ??= await createSandbox('unapplied-boto3');
      const target = `unapplied/boto3-${label}`;
      const env = box.env({
        S3O_ENDPOINT: t.endpoint,
        AWS_ACCESS_KEY_ID: TEST_CREDS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDS.secretAccessKey,
        AWS_CONFIG_FILE: `${box.dir}/no-aws-config`,
        AWS_SHARED_CREDENTIALS_FILE: `${box.dir}/no-aws-credentials`,
        SSE_KEY_HEX: SSE_KEY.toString('hex'),
      });
      const r = await runTool(python, ['-c', BOTO3_SCRIPT, target, PLAIN], { env, timeoutMs: 40_000 });
      assert.equal(r.code, 0, describeFailure(python, ['-c', 'BOTO3_SCRIPT'], r));
      const out = JSON.parse(r.stdout) as Record<string, { ok?: boolean; code?: string; status?: number; message?: string }>;
      assert.deepEqual({ code: out['put']?.code, status: out['put']?.status }, { code: 'NotImplemented', status: 501 }, JSON.stringify(out));
      assert.match(out['put']!.message!, /x-amz-server-side-encryption-customer-/);
      assert.equal(out['head_after_put']?.status, 404, 'nothing was stored');
      assert.deepEqual({ code: out['get']?.code, status: out['get']?.status }, { code: 'InvalidRequest', status: 400 }, JSON.stringify(out));
      assert.match(out['get']!.message!, /not applicable to this object/);
      assert.deepEqual(out['get_plain'], { ok: true });
    });
  });
}
