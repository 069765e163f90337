/**
 * Never accept what is not applied. A request header asking for something this server does not do yet —
 * encryption (SSE-S3, SSE-KMS, SSE-C), object lock, a storage class other than STANDARD, ACL grants, a
 * website redirect, a whole-object checksum asserted at completion, a conditional delete — is refused the
 * way S3 refuses an option it cannot apply, before the handler runs: no byte is read or written and no row
 * changes. Accepting and dropping it would make a client believe its data encrypted or write-protected.
 *
 * {@link REFUSED} is the one table: the header, the operations it is refused on, the feature it asks for
 * and S3's error. Values that ask for no more than what we do (`x-amz-storage-class: STANDARD`,
 * `x-amz-acl: private`, `x-amz-bucket-object-lock-enabled: false`, ...) are accepted. {@link APPLIED}
 * lists the x-amz-* headers we do honour, so a test can show that every header S3 defines for these
 * operations is in one list or the other; when a feature lands, its rows move from REFUSED to APPLIED.
 * {@link REFUSED_SUBRESOURCES} names the configuration subresources of the same features (the router
 * answers them NotImplemented). {@link checkRequestHeaders} is the one hook, called once per request after
 * authorization.
 */
import { CoreError } from '../core/errors.js';
import type { ObjectVersion, UploadInfo } from '../core/types.js';
import { CHECKSUM_ALGORITHMS } from './checksums.js';
import { S3Error, invalidArgument } from './errors.js';
import { parseQuery } from './route-params.js';
import type { S3Op, S3OpName } from './router.js';
import type { RequestHead } from './auth/types.js';
import { ownerId, type OpContext } from './ops/common.js';

/** How a refused header is answered (S3's answer for that situation). */
export type RefusalKind =
  /** 501 NotImplemented naming the header (`<Header>`), S3's answer to an option it does not implement. */
  | 'NotImplemented'
  /** 400 InvalidRequest "The encryption parameters are not applicable to this object": nothing is stored with SSE-C. */
  | 'NotApplicable'
  /** 400 InvalidRequest "Bucket is missing Object Lock Configuration": no bucket here has object lock. */
  | 'NoObjectLock'
  /** 400 InvalidArgument "<header> header is not supported for this operation", as S3 answers. */
  | 'NotForOperation'
  /** 400 InvalidStorageClass: only STANDARD is stored. */
  | 'InvalidStorageClass'
  /** 400 InvalidRequest: the value contradicts the multipart upload it completes. */
  | 'UploadMismatch';

/** What a refusal is about, looked up first: when it is missing, S3's 404 (NoSuchKey, NoSuchUpload) comes first. */
type Subject = 'object' | 'copy-source' | 'upload';

/** One row of the table. */
export interface RefusedHeader {
  /** Lower-case header name. */
  header: string;
  ops: readonly S3OpName[];
  /** What the header asks for, in the message: "server-side encryption with customer-provided keys (SSE-C)". */
  feature: string;
  refusal: RefusalKind;
  /** Values (case-insensitive) that ask for no more than what this server does: accepted. */
  honoured?: readonly string[];
  /** Every value S3 defines (case-insensitive); another is invalid: InvalidArgument (InvalidStorageClass for storage classes). */
  valid?: readonly string[];
  /** Looked up before refusing (a missing one answers 404 first). */
  subject?: Subject;
  /** Accepted when this holds for the subject (e.g. the copy source already has the checksum asked for). */
  honouredBy?: (value: string, subject: ObjectVersion | UploadInfo) => boolean;
  /** Never echo the value (SSE-C keys). */
  secret?: boolean;
}

const WRITES: readonly S3OpName[] = ['PutObject', 'CopyObject', 'CreateMultipartUpload'];
const SSE_C = ['x-amz-server-side-encryption-customer-algorithm', 'x-amz-server-side-encryption-customer-key', 'x-amz-server-side-encryption-customer-key-md5'];
const COPY_SOURCE_SSE_C = SSE_C.map((h) => h.replace('x-amz-', 'x-amz-copy-source-'));
const SSE_C_FEATURE = 'server-side encryption with customer-provided keys (SSE-C)';
const KMS_FEATURE = 'server-side encryption with AWS KMS keys (SSE-KMS)';
const LOCK_FEATURE = 'object lock';
const ACL_FEATURE = 'access control lists other than the bucket owner having full control';
/** Every storage class S3 defines for x-amz-storage-class. */
export const STORAGE_CLASSES = [
  'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE',
  'OUTPOSTS', 'GLACIER_IR', 'SNOW', 'EXPRESS_ONEZONE', 'FSX_OPENZFS', 'FSX_ONTAP',
] as const;
const OBJECT_ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'aws-exec-read', 'bucket-owner-read', 'bucket-owner-full-control'];
const BUCKET_ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read', 'log-delivery-write'];
const CHECKSUM_HEADERS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'].map((a) => `x-amz-checksum-${a}`);

/** The table: every header refused until its feature exists, where, and with which answer. */
export const REFUSED: readonly RefusedHeader[] = [
  // Server-side encryption with keys the orchestrator would manage (SSE-S3, SSE-KMS, DSSE-KMS).
  {
    header: 'x-amz-server-side-encryption',
    ops: WRITES,
    feature: 'server-side encryption at rest',
    refusal: 'NotImplemented',
    valid: ['AES256', 'aws:kms', 'aws:kms:dsse'],
  },
  {
    header: 'x-amz-server-side-encryption',
    ops: ['GetObject', 'HeadObject', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload'],
    feature: 'server-side encryption at rest',
    refusal: 'NotForOperation',
  },
  { header: 'x-amz-server-side-encryption-aws-kms-key-id', ops: WRITES, feature: KMS_FEATURE, refusal: 'NotImplemented' },
  { header: 'x-amz-server-side-encryption-context', ops: WRITES, feature: KMS_FEATURE, refusal: 'NotImplemented' },
  {
    header: 'x-amz-server-side-encryption-bucket-key-enabled',
    ops: WRITES,
    feature: 'S3 Bucket Keys for SSE-KMS',
    refusal: 'NotImplemented',
    honoured: ['false'],
  },
  // SSE-C: writes would need the key; reads of objects stored without one are "not applicable", as in S3.
  ...SSE_C.map((header): RefusedHeader => ({
    header,
    ops: [...WRITES, 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload'],
    feature: SSE_C_FEATURE,
    refusal: 'NotImplemented',
    secret: true,
  })),
  ...SSE_C.map((header): RefusedHeader => ({ header, ops: ['GetObject', 'HeadObject'], feature: SSE_C_FEATURE, refusal: 'NotApplicable', subject: 'object', secret: true })),
  ...COPY_SOURCE_SSE_C.map((header): RefusedHeader => ({
    header,
    ops: ['CopyObject', 'UploadPartCopy'],
    feature: SSE_C_FEATURE,
    refusal: 'NotApplicable',
    subject: 'copy-source',
    secret: true,
  })),
  // Object lock: no bucket has it, so S3's answer is "Bucket is missing Object Lock Configuration".
  {
    header: 'x-amz-bucket-object-lock-enabled',
    ops: ['CreateBucket'],
    feature: LOCK_FEATURE,
    refusal: 'NotImplemented',
    honoured: ['false'],
    valid: ['true', 'false'],
  },
  { header: 'x-amz-object-lock-mode', ops: WRITES, feature: LOCK_FEATURE, refusal: 'NoObjectLock' },
  { header: 'x-amz-object-lock-retain-until-date', ops: WRITES, feature: LOCK_FEATURE, refusal: 'NoObjectLock' },
  { header: 'x-amz-object-lock-legal-hold', ops: WRITES, feature: LOCK_FEATURE, refusal: 'NoObjectLock' },
  // Storage classes: every object is STANDARD (listings say so); any other class is refused.
  {
    header: 'x-amz-storage-class',
    ops: WRITES,
    feature: 'storage classes other than STANDARD',
    refusal: 'InvalidStorageClass',
    honoured: ['STANDARD'],
    valid: STORAGE_CLASSES,
  },
  { header: 'x-amz-website-redirect-location', ops: WRITES, feature: 'website redirects', refusal: 'NotImplemented' },
  { header: 'x-amz-write-offset-bytes', ops: ['PutObject'], feature: 'appending to objects', refusal: 'NotImplemented' },
  // ACLs: only the bucket's credentials can reach an object, which is what private and
  // bucket-owner-full-control say; anything granting more (or to someone else) is refused.
  { header: 'x-amz-acl', ops: WRITES, feature: ACL_FEATURE, refusal: 'NotImplemented', honoured: ['private', 'bucket-owner-full-control'], valid: OBJECT_ACLS },
  { header: 'x-amz-acl', ops: ['CreateBucket'], feature: ACL_FEATURE, refusal: 'NotImplemented', honoured: ['private'], valid: BUCKET_ACLS },
  ...['full-control', 'read', 'read-acp', 'write-acp'].map((g): RefusedHeader => ({
    header: `x-amz-grant-${g}`,
    ops: [...WRITES, 'CreateBucket'],
    feature: 'access control grants',
    refusal: 'NotImplemented',
  })),
  { header: 'x-amz-grant-write', ops: ['CreateBucket'], feature: 'access control grants', refusal: 'NotImplemented' },
  {
    header: 'x-amz-object-ownership',
    ops: ['CreateBucket'],
    feature: 'object ownership other than BucketOwnerEnforced (ACLs)',
    refusal: 'NotImplemented',
    honoured: ['BucketOwnerEnforced'],
    valid: ['BucketOwnerEnforced', 'BucketOwnerPreferred', 'ObjectWriter'],
  },
  // Checksums asked of a copy or asserted at completion.
  {
    header: 'x-amz-checksum-algorithm',
    ops: ['CopyObject'],
    feature: 'computing a new checksum while copying',
    refusal: 'NotImplemented',
    valid: CHECKSUM_ALGORITHMS,
    subject: 'copy-source',
    // The copy keeps the source's checksum: enough when it is a whole-object checksum of that algorithm.
    honouredBy: (v, src) => {
      const c = (src as ObjectVersion).checksum;
      return c !== undefined && c.type === 'FULL_OBJECT' && c.algorithm === v.trim().toUpperCase();
    },
  },
  ...CHECKSUM_HEADERS.map((header): RefusedHeader => ({
    header,
    ops: ['CompleteMultipartUpload'],
    feature: 'verifying a whole-object checksum sent with CompleteMultipartUpload',
    refusal: 'NotImplemented',
  })),
  {
    header: 'x-amz-checksum-type',
    ops: ['CompleteMultipartUpload'],
    feature: 'a checksum type other than the upload’s',
    refusal: 'UploadMismatch',
    valid: ['COMPOSITE', 'FULL_OBJECT'],
    subject: 'upload',
    honouredBy: (v, u) => (u as UploadInfo).checksumType === v.trim().toUpperCase(),
  },
  { header: 'x-amz-mp-object-size', ops: ['CompleteMultipartUpload'], feature: 'checking the object size at completion', refusal: 'NotImplemented' },
  // Deletes: conditions and MFA that a plain delete would silently ignore.
  { header: 'if-match', ops: ['DeleteObject'], feature: 'conditional deletes', refusal: 'NotImplemented' },
  { header: 'x-amz-if-match-last-modified-time', ops: ['DeleteObject'], feature: 'conditional deletes', refusal: 'NotImplemented' },
  { header: 'x-amz-if-match-size', ops: ['DeleteObject'], feature: 'conditional deletes', refusal: 'NotImplemented' },
  { header: 'x-amz-mfa', ops: ['DeleteObject', 'DeleteObjects'], feature: 'MFA delete', refusal: 'NotImplemented' },
];

/** One header we do honour, and how (for the coverage test and the docs). */
export interface AppliedHeader {
  /** Lower-case header name; a trailing `*` is a prefix. */
  header: string;
  ops: readonly S3OpName[];
  how: string;
}

const OBJECT_OPS: readonly S3OpName[] = [
  'PutObject', 'CopyObject', 'CreateMultipartUpload', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload',
  'GetObject', 'HeadObject', 'DeleteObject', 'DeleteObjects',
];

/** Headers of these operations that are honoured (the partly honoured ones are rows of {@link REFUSED}). */
export const APPLIED: readonly AppliedHeader[] = [
  { header: 'x-amz-meta-*', ops: WRITES, how: 'stored and returned (≤ 2 KB)' },
  { header: 'x-amz-tagging', ops: WRITES, how: 'stored as the tag set' },
  { header: 'x-amz-tagging-directive', ops: ['CopyObject'], how: 'COPY or REPLACE the tags' },
  { header: 'x-amz-metadata-directive', ops: ['CopyObject'], how: 'COPY or REPLACE the metadata' },
  { header: 'x-amz-copy-source', ops: ['CopyObject', 'UploadPartCopy'], how: 'the source object' },
  ...['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'].map((c) => ({
    header: `x-amz-copy-source-${c}`,
    ops: ['CopyObject', 'UploadPartCopy'] as const,
    how: 'evaluated against the source (412 when it fails)',
  })),
  { header: 'x-amz-copy-source-range', ops: ['UploadPartCopy'], how: 'the bytes of the source that become the part' },
  { header: 'x-amz-sdk-checksum-algorithm', ops: ['PutObject', 'UploadPart', 'DeleteObjects'], how: 'the body checksum is computed, verified and stored' },
  ...CHECKSUM_HEADERS.map((header) => ({ header, ops: ['PutObject', 'UploadPart'] as const, how: 'verified against the body and stored' })),
  { header: 'x-amz-checksum-algorithm', ops: ['CreateMultipartUpload'], how: 'the upload’s checksum algorithm' },
  { header: 'x-amz-checksum-type', ops: ['CreateMultipartUpload'], how: 'COMPOSITE or FULL_OBJECT' },
  { header: 'x-amz-checksum-mode', ops: ['GetObject', 'HeadObject'], how: 'ENABLED returns the stored checksum' },
  { header: 'x-amz-expected-bucket-owner', ops: OBJECT_OPS, how: 'must equal the Owner ID this credential is shown, else 403 AccessDenied' },
  { header: 'x-amz-source-expected-bucket-owner', ops: ['CopyObject', 'UploadPartCopy'], how: 'the same check on the source bucket' },
  {
    header: 'x-amz-request-payer',
    ops: OBJECT_OPS,
    how: 'accepted: no bucket is Requester Pays, and S3 ignores the acknowledgement on such buckets',
  },
  { header: 'x-amz-bypass-governance-retention', ops: ['DeleteObject', 'DeleteObjects'], how: 'accepted: nothing is under retention, so nothing is bypassed' },
];

/** Configuration subresources of the same features; the router answers each 501 NotImplemented naming it. */
export const REFUSED_SUBRESOURCES: readonly { subresource: string; operations: readonly string[] }[] = [
  { subresource: 'encryption', operations: ['PutBucketEncryption', 'GetBucketEncryption', 'DeleteBucketEncryption'] },
  { subresource: 'object-lock', operations: ['PutObjectLockConfiguration', 'GetObjectLockConfiguration'] },
  { subresource: 'retention', operations: ['PutObjectRetention', 'GetObjectRetention'] },
  { subresource: 'legal-hold', operations: ['PutObjectLegalHold', 'GetObjectLegalHold'] },
  { subresource: 'acl', operations: ['PutObjectAcl', 'GetObjectAcl', 'PutBucketAcl', 'GetBucketAcl'] },
  { subresource: 'ownershipControls', operations: ['PutBucketOwnershipControls', 'GetBucketOwnershipControls', 'DeleteBucketOwnershipControls'] },
  { subresource: 'website', operations: ['PutBucketWebsite', 'GetBucketWebsite', 'DeleteBucketWebsite'] },
  { subresource: 'requestPayment', operations: ['PutBucketRequestPayment', 'GetBucketRequestPayment'] },
  { subresource: 'restore', operations: ['RestoreObject'] },
];

const lower = (v: string): string => v.trim().toLowerCase();

/** The error for `rule` refusing `value`. */
function refusalError(rule: RefusedHeader, value: string, subject?: ObjectVersion | UploadInfo): S3Error {
  const h = rule.header;
  switch (rule.refusal) {
    case 'NotImplemented':
      return new S3Error('NotImplemented', `${h}: ${rule.feature} is not implemented by this server; the request was refused and nothing was changed.`, { Header: h });
    case 'NotApplicable':
      return new S3Error(
        'InvalidRequest',
        `The encryption parameters are not applicable to this object: ${h} was sent, but the ${rule.subject === 'copy-source' ? 'copy source' : 'object'} is not stored with a customer-provided key.`,
      );
    case 'NoObjectLock':
      return new S3Error('InvalidRequest', `Bucket is missing Object Lock Configuration: ${h} needs object lock, which this server does not implement.`);
    case 'NotForOperation':
      return invalidArgument(h, value, `${h} header is not supported for this operation.`);
    case 'InvalidStorageClass':
      return new S3Error(
        'InvalidStorageClass',
        `The storage class you specified is not valid: ${h} ${value} is not offered by this server, which stores every object as STANDARD.`,
        { StorageClassRequested: value },
      );
    case 'UploadMismatch':
      return new S3Error(
        'InvalidRequest',
        `${h}: ${value} is not the checksum type of this multipart upload (${(subject as UploadInfo | undefined)?.checksumType ?? 'none'}).`,
      );
  }
}

/** The error for a value S3 does not define. */
function invalidValue(rule: RefusedHeader, value: string): S3Error {
  if (rule.refusal === 'InvalidStorageClass') {
    return new S3Error('InvalidStorageClass', `The storage class you specified is not valid: ${rule.header} ${value}.`, { StorageClassRequested: value });
  }
  return invalidArgument(rule.header, value, `${rule.header}: ${value} is not a valid value.`);
}

async function lookUp(ctx: OpContext, op: S3Op, subject: Subject): Promise<ObjectVersion | UploadInfo> {
  if (subject === 'upload' && 'uploadId' in op) return ctx.multipart.getUpload(op.bucket, op.key, op.uploadId);
  if (subject === 'copy-source' && 'srcKey' in op) {
    try {
      return await ctx.store.headObject(op.srcBucket, op.srcKey);
    } catch (err) {
      if (err instanceof CoreError && err.code === 'NoSuchKey') throw new S3Error('NoSuchKey', undefined, { Key: op.srcKey }, { cause: err });
      throw err;
    }
  }
  if (subject === 'object' && (op.op === 'GetObject' || op.op === 'HeadObject')) return ctx.store.headObject(op.bucket, op.key);
  throw new Error(`no ${subject} for ${op.op}`);
}

/**
 * `x-amz-*` query parameters, by lower-case name: presigners move x-amz-* headers into the query string
 * (the AWS SDK's getSignedUrl does so for x-amz-storage-class, x-amz-acl, x-amz-object-lock-*, ...), and S3
 * reads them as headers, so a refused header is refused there too.
 */
function hoistedHeaders(rawQuery: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!rawQuery.toLowerCase().includes('x-amz-')) return out;
  for (const [k, v] of parseQuery(rawQuery)) {
    const name = k.toLowerCase();
    if (name.startsWith('x-amz-') && !out.has(name)) out.set(name, v);
  }
  return out;
}

/**
 * The request head a presigned request is handled with: user metadata (`x-amz-meta-*`) and tags
 * (`x-amz-tagging`) that a presigner moved into the (signed) query string count as headers, as S3 reads
 * them — before, they were silently dropped. Headers sent as headers win. Checksum parameters are not
 * taken from the query: presigners put the checksum of an empty body there, which no uploaded body matches.
 */
export function presignedHead(head: RequestHead): RequestHead {
  const hoisted = hoistedHeaders(head.rawQuery);
  const extra: Record<string, string> = {};
  for (const [name, value] of hoisted) {
    if ((name.startsWith('x-amz-meta-') || name === 'x-amz-tagging') && head.headers[name] === undefined) extra[name] = value;
  }
  return Object.keys(extra).length === 0 ? head : { ...head, headers: { ...head.headers, ...extra } };
}

/** 403 unless `header` (when sent) names the owner id this credential is shown. */
function checkOwner(ctx: OpContext, header: string, hoisted: Map<string, string>): void {
  const want = ctx.head.headers[header] ?? hoisted.get(header);
  if (want !== undefined && want.trim() !== ownerId(ctx)) {
    throw new S3Error('AccessDenied', `Access Denied: ${header} does not name the owner of the bucket.`);
  }
}

/**
 * The hook: throws the S3Error for the first refused header of the request, before its handler runs.
 * Rules that need no lookup are checked first; a subject (object, copy source, upload) is read at most
 * once. Also checks x-amz-expected-bucket-owner and x-amz-source-expected-bucket-owner.
 */
export async function checkRequestHeaders(ctx: OpContext, op: S3Op): Promise<void> {
  const hoisted = hoistedHeaders(ctx.head.rawQuery);
  if ('bucket' in op) checkOwner(ctx, 'x-amz-expected-bucket-owner', hoisted);
  if (op.op === 'CopyObject' || op.op === 'UploadPartCopy') checkOwner(ctx, 'x-amz-source-expected-bucket-owner', hoisted);
  const pending: { rule: RefusedHeader; value: string }[] = [];
  for (const rule of REFUSED) {
    const value = ctx.head.headers[rule.header] ?? hoisted.get(rule.header);
    if (value === undefined || !rule.ops.includes(op.op)) continue;
    if (rule.valid && !rule.valid.some((v) => lower(v) === lower(value))) throw invalidValue(rule, value);
    if (rule.honoured?.some((v) => lower(v) === lower(value))) continue;
    if (rule.subject === undefined) throw refusalError(rule, rule.secret ? '' : value);
    pending.push({ rule, value });
  }
  const seen = new Map<Subject, ObjectVersion | UploadInfo>();
  for (const { rule, value } of pending) {
    const kind = rule.subject!;
    let subject = seen.get(kind);
    if (subject === undefined) seen.set(kind, (subject = await lookUp(ctx, op, kind)));
    if (rule.honouredBy?.(value, subject)) continue;
    throw refusalError(rule, rule.secret ? '' : value, subject);
  }
}
