import type { CorsRule } from './cors.js';
import type { Readable } from 'node:stream';

/** Checksum algorithms S3 defines for `x-amz-checksum-*`. */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

/** A checksum stored with an object version and returned with `x-amz-checksum-mode: ENABLED`. */
export interface StoredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64 of the digest, as S3 sends it. */
  value: string;
  /** FULL_OBJECT for single PUTs; COMPOSITE for multipart checksums-of-checksums. */
  type: 'FULL_OBJECT' | 'COMPOSITE';
}

/** The system headers S3 stores with an object and returns on GET/HEAD. */
export interface SystemHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  /** Stored verbatim as sent (S3 returns the Expires header as given). */
  expires?: string;
}

/** One live logical object version, as HEAD and LIST see it (from the database alone). */
export interface ObjectVersion extends SystemHeaders {
  bucket: string;
  key: string;
  /** Generation id: unique per write, part of every physical key of this version. */
  versionId: string;
  size: number;
  /** Hex MD5 for single-part objects; `hex-N` for multipart. Without quotes. */
  etag: string;
  /** `x-amz-meta-*` with the prefix removed, names lower-cased. */
  userMeta: Record<string, string>;
  checksum?: StoredChecksum;
  /** Number of tags (x-amz-tagging-count); the tags are read with {@link ObjectStore.getTagging}. */
  tagCount: number;
  /** Number of parts for a multipart object. */
  partsCount?: number;
  lastModified: Date;
}

/** Where one physical copy of a version lives. */
export interface CopyLocation {
  backend: string;
  physicalKey: string;
  size: number;
  state: 'pending' | 'live';
}

/** Digests of a body, known only once the body stream has ended and passed verification. */
export interface BodyDigests {
  /** Hex MD5 of the bytes (becomes the ETag). */
  md5: string;
  /** The checksum to store, when the client sent or asked for one. */
  checksum?: StoredChecksum;
}

/** Conditions on a write (conditional PUT). */
export interface WriteConditions {
  /** `If-None-Match: *`: create only if no live version exists. */
  ifNoneMatchStar?: boolean;
  /** `If-Match: "etag"`: overwrite only if the live version has this ETag (without quotes; `*` = exists). */
  ifMatch?: string;
}

/** Conditions on a read (conditional GET/HEAD), as in RFC 9110 with S3's precedence rules. */
export interface ReadConditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: Date;
  ifUnmodifiedSince?: Date;
}

/** Input of {@link ObjectStore.putObject}. */
export interface PutObjectInput {
  bucket: string;
  key: string;
  /** Exact number of body bytes (Content-Length or x-amz-decoded-content-length). */
  size: number;
  /** The decoded, verified-on-the-fly body. It errors (and the write aborts) if verification fails. */
  body: Readable;
  /** Called after `body` ended cleanly; returns the digests to store. */
  digests: () => BodyDigests;
  headers: SystemHeaders;
  userMeta: Record<string, string>;
  /** Object tags (x-amz-tagging), already validated against S3's limits. */
  tags?: Record<string, string>;
  conditions?: WriteConditions;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
}

/** Input of {@link ObjectStore.copyObject}. */
export interface CopyObjectInput {
  srcBucket: string;
  srcKey: string;
  dstBucket: string;
  dstKey: string;
  /** COPY keeps source headers and metadata; REPLACE takes `headers`/`userMeta`. */
  metadataDirective: 'COPY' | 'REPLACE';
  headers: SystemHeaders;
  userMeta: Record<string, string>;
  /** x-amz-tagging-directive: COPY (default) keeps the source's tags; REPLACE takes `tags`. */
  taggingDirective?: 'COPY' | 'REPLACE';
  tags?: Record<string, string>;
  /** x-amz-copy-source-if-* conditions, evaluated against the source. */
  sourceConditions?: ReadConditions;
  conditions?: WriteConditions;
  signal?: AbortSignal;
}

/** Options of {@link ObjectStore.listObjects}. */
export interface ListInput {
  bucket: string;
  prefix: string;
  delimiter?: string;
  /** Exclusive lower bound on keys (start-after, marker or decoded continuation token). */
  after?: string;
  maxKeys: number;
}

/** What a listing shows of a key (ListObjects' Contents): no headers, no user metadata. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
  checksumAlgorithm?: StoredChecksum['algorithm'];
  checksumType?: StoredChecksum['type'];
}

/** Result of {@link ObjectStore.listObjects}: keys and common prefixes interleaved in key order. */
export interface ListResult {
  objects: ListedObject[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned; the next page starts after it. */
  nextAfter?: string;
}

/** Result of {@link ObjectStore.getObject}. */
export interface GetObjectResult {
  version: ObjectVersion;
  /** The range served (inclusive), or undefined for the whole object. */
  range?: { start: number; end: number };
  /** Object bytes; destroy it to stop the backend read. Absent for zero-length bodies. */
  body: Readable;
}

/** Result of one key in {@link ObjectStore.deleteObjects}. */
export interface DeleteOutcome {
  key: string;
  /** Set when the key could not be deleted. */
  error?: { code: string; message: string };
}

/**
 * The object operations of core/, used by the S3 layer and the admin layer. Implemented by
 * core/objects.ts. Errors are {@link import('./errors.js').CoreError}.
 */
export interface ObjectStore {
  headObject(bucket: string, key: string, cond?: ReadConditions): Promise<ObjectVersion>;
  /** `range` is the parsed Range header; suffix ranges carry `suffix`. */
  getObject(
    bucket: string,
    key: string,
    /** `stallMs`: a copy silent this long while bytes are wanted is abandoned for the next copy. */
    opts?: { range?: RangeSpec; conditions?: ReadConditions; signal?: AbortSignal; stallMs?: number },
  ): Promise<GetObjectResult>;
  putObject(input: PutObjectInput): Promise<ObjectVersion>;
  copyObject(input: CopyObjectInput): Promise<ObjectVersion>;
  /** Deleting an absent key succeeds (S3 semantics). */
  deleteObject(bucket: string, key: string): Promise<void>;
  deleteObjects(bucket: string, keys: string[]): Promise<DeleteOutcome[]>;
  listObjects(input: ListInput): Promise<ListResult>;
  /** The inclusive byte range of part `partNumber` of a version (InvalidPartNumber when it has no such part). */
  partRange(version: ObjectVersion, partNumber: number): Promise<{ start: number; end: number }>;
  /** Tags of the live version. */
  getTagging(bucket: string, key: string): Promise<Record<string, string>>;
  /** Replaces the tags of the live version (validated by the caller). */
  putTagging(bucket: string, key: string, tags: Record<string, string>): Promise<void>;
  deleteTagging(bucket: string, key: string): Promise<void>;
  /** Physical copies of the live version (admin locate). */
  locate(bucket: string, key: string): Promise<{ version: ObjectVersion; copies: CopyLocation[] }>;
}

/** A parsed Range header: `bytes=a-b`, `bytes=a-` or `bytes=-n`. */
export type RangeSpec = { start: number; end?: number } | { suffix: number };

/** A bucket and its creation time. */
export interface BucketInfo {
  name: string;
  createdAt: Date;
  /** The bucket's CORS rules, when it has a configuration. */
  cors?: CorsRule[];
}

/** What a grant allows on its bucket: reading only, or reading and writing (deleting, multipart, tags). */
export type GrantPermission = 'read' | 'read_write';

/** A credential's right on one bucket, optionally confined to keys starting with `prefix` ('' = all keys). */
export interface Grant {
  bucket: string;
  permission: GrantPermission;
  prefix: string;
}

/** A credential and the buckets it may use. */
export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** The granted buckets (any permission), sorted. */
  buckets: readonly string[];
  /**
   * One grant per bucket in `buckets`, same order. Absent (hand-built credentials, e.g. in tests): read-write
   * on every bucket in `buckets`, no prefix.
   */
  grants?: readonly Grant[];
  /** May create buckets through S3 (it then owns them and gets a read-write grant). Absent: false. */
  canCreateBuckets?: boolean;
}

/** Buckets and credentials (virtual buckets with independent credentials). Implemented by core/tenants.ts. */
export interface TenantDirectory {
  /** The credential with this access key id, or undefined. */
  lookupCredential(accessKeyId: string): Promise<Credential | undefined>;
  /** The bucket, or undefined when it does not exist. */
  getBucket(name: string): Promise<BucketInfo | undefined>;
  /** All buckets (admin), or those named (a credential's buckets), sorted by name. */
  listBuckets(names?: readonly string[]): Promise<BucketInfo[]>;
  /** Replaces the bucket's CORS rules (validated by the caller); undefined removes the configuration. */
  setBucketCors(name: string, rules: readonly CorsRule[] | undefined): Promise<void>;
  /**
   * S3 CreateBucket by `credential`: creates the bucket owned by it with a read-write grant. Throws
   * CoreError BucketAlreadyOwnedByYou / BucketAlreadyExists when the name is taken, AccessDenied when the
   * credential may not create buckets.
   */
  createBucketFor(credential: Credential, name: string): Promise<void>;
  /**
   * S3 DeleteBucket by `credential`: deletes the bucket when it owns it (or holds an unconfined read-write
   * grant on an API bucket) and it is empty. Throws CoreError NoSuchBucket, AccessDenied, BucketNotEmpty.
   */
  deleteBucketFor(credential: Credential, name: string): Promise<void>;
}

/** An in-progress multipart upload, as ListMultipartUploads and ListParts describe it. */
export interface UploadInfo {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: Date;
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
}

/** One stored part. */
export interface PartInfo {
  partNumber: number;
  size: number;
  /** Hex MD5 of the part, without quotes. */
  etag: string;
  lastModified: Date;
  /** Base64 checksum in the upload's algorithm, when it has one. */
  checksum?: string;
}

/** Input of {@link MultipartStore.createMultipartUpload}. */
export interface CreateMultipartInput {
  bucket: string;
  key: string;
  headers: SystemHeaders;
  userMeta: Record<string, string>;
  tags?: Record<string, string>;
  checksumAlgorithm?: ChecksumAlgorithm;
  /** COMPOSITE (default for SHA*, CRC32, CRC32C) or FULL_OBJECT (CRC64NVME, or CRC32/CRC32C when asked). */
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
}

/** Input of {@link MultipartStore.uploadPart}. */
export interface UploadPartInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  size: number;
  body: Readable;
  digests: () => BodyDigests;
  signal?: AbortSignal;
}

/** Input of {@link MultipartStore.uploadPartCopy}. */
export interface UploadPartCopyInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  srcBucket: string;
  srcKey: string;
  /** x-amz-copy-source-range (inclusive); absent = whole source. */
  range?: { start: number; end: number };
  sourceConditions?: ReadConditions;
  signal?: AbortSignal;
}

/** Input of {@link MultipartStore.completeMultipartUpload}. */
export interface CompleteMultipartInput {
  bucket: string;
  key: string;
  uploadId: string;
  /** As the client listed them: must ascend, exist and match. ETags without quotes. */
  parts: readonly { partNumber: number; etag: string; checksum?: string }[];
  conditions?: WriteConditions;
}

/** Result of {@link MultipartStore.listMultipartUploads}. */
export interface ListUploadsResult {
  uploads: UploadInfo[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
}

/**
 * Native multipart uploads: parts go straight to one backend's native multipart upload; completing asks the
 * backend to assemble them, so no byte passes through the orchestrator twice. Implemented by core/multipart.ts.
 * Every method checks that the upload id belongs to `bucket` and `key` (NoSuchUpload otherwise).
 */
export interface MultipartStore {
  createMultipartUpload(input: CreateMultipartInput): Promise<UploadInfo>;
  uploadPart(input: UploadPartInput): Promise<PartInfo>;
  uploadPartCopy(input: UploadPartCopyInput): Promise<PartInfo>;
  completeMultipartUpload(input: CompleteMultipartInput): Promise<ObjectVersion>;
  abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void>;
  listParts(
    bucket: string,
    key: string,
    uploadId: string,
    opts: { maxParts: number; partNumberMarker?: number },
  ): Promise<{ upload: UploadInfo; parts: PartInfo[]; isTruncated: boolean; nextPartNumberMarker?: number }>;
  listMultipartUploads(
    bucket: string,
    opts: { prefix: string; delimiter?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads: number },
  ): Promise<ListUploadsResult>;
}
