/**
 * Domain errors raised by core/. The codes are a subset of S3's error codes so the S3 layer maps them
 * one-to-one (checked at compile time in s3/), and the admin layer maps them to Connect codes.
 */
export type CoreErrorCode =
  /** The bucket is not known. */
  | 'NoSuchBucket'
  /** The key has no live version. */
  | 'NoSuchKey'
  /** The multipart upload does not exist or belongs to another bucket/key. */
  | 'NoSuchUpload'
  /** If-Match / If-None-Match / If-(Un)Modified-Since failed on a write or a read. */
  | 'PreconditionFailed'
  /** A conditional read found the object unchanged. */
  | 'NotModified'
  /** A conditional write raced with another write of the same key. */
  | 'ConditionalRequestConflict'
  /** No backend has room for the object. */
  | 'InsufficientStorage'
  /** The requested range does not overlap the object. */
  | 'InvalidRange'
  /** The body did not match a declared digest. */
  | 'BadDigest'
  /** The body ended before its declared length. */
  | 'IncompleteBody'
  /** A value supplied by the caller is not acceptable. */
  | 'InvalidArgument'
  /** The request is not valid in the current state. */
  | 'InvalidRequest'
  /** A backend or the metadata store is unavailable. */
  | 'ServiceUnavailable'
  /** CompleteMultipartUpload names a part that was not uploaded or whose ETag/checksum differs. */
  | 'InvalidPart'
  /** CompleteMultipartUpload lists parts out of ascending order. */
  | 'InvalidPartOrder'
  /** A part other than the last is smaller than 5 MiB. */
  | 'EntityTooSmall'
  /** GET/HEAD ?partNumber names a part the object does not have. */
  | 'InvalidPartNumber'
  /** A conflicting operation on the same resource is in progress (e.g. a Complete of the same upload). */
  | 'OperationAborted'
  /** The credential may not do this (create or delete a bucket, reach a key outside its grant). */
  | 'AccessDenied'
  /** CreateBucket: the name is taken by a bucket the credential does not own. */
  | 'BucketAlreadyExists'
  /** CreateBucket: the credential already owns a bucket of this name. */
  | 'BucketAlreadyOwnedByYou'
  /** DeleteBucket: the bucket still holds objects, writes in progress or multipart uploads. */
  | 'BucketNotEmpty';

/** The metadata database is unreachable (raised by meta/, re-exported for the S3 and admin layers to map). */
export { DbUnavailableError, isDbBusy, isDbUnavailable } from '../meta/db.js';

/** An error core/ raises on purpose; anything else reaching a caller is internal. */
export class CoreError extends Error {
  readonly code: CoreErrorCode;
  constructor(code: CoreErrorCode, message?: string, opts?: { cause?: unknown }) {
    super(message ?? code, opts);
    this.name = 'CoreError';
    this.code = code;
  }
}
