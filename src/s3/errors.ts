/**
 * The one table of S3 errors. Every error a client can see is a member of {@link S3_ERRORS}; anything
 * else that escapes a handler becomes InternalError (logged with the request id, never sent).
 */

/** One S3 error: its HTTP status and the default message S3 sends. */
export interface S3ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const S3_ERRORS = {
  /** Signature or credential problem not covered by a more specific code. */
  AccessDenied: { status: 403, message: 'Access Denied' },
  /** A CORS preflight that the bucket's CORS configuration does not allow (or a bucket without one). */
  AccessForbidden: { status: 403, message: 'CORSResponse: This CORS request is not allowed.' },
  /** Presigned-URL query parameters that are missing, repeated, malformed or out of range (expiry over 7 days). */
  AuthorizationQueryParametersError: { status: 400, message: 'Query-string authentication parameters are invalid.' },
  /** A CORS preflight without Origin or Access-Control-Request-Method. */
  BadRequest: { status: 400, message: 'Bad Request' },
  /** CreateBucket with a LocationConstraint naming a region other than this endpoint's. */
  IllegalLocationConstraintException: { status: 400, message: 'The location constraint is incompatible for the region specific endpoint this request was sent to.' },
  /** CreateBucket with a LocationConstraint that is not a valid region name. */
  InvalidLocationConstraint: { status: 400, message: 'The specified location-constraint is not valid' },
  /** The multipart or bucket operation is not allowed in the object's current state. */
  AuthorizationHeaderMalformed: { status: 400, message: 'The authorization header is malformed.' },
  /** The Content-MD5 or x-amz-checksum-* value did not match the bytes received. */
  BadDigest: { status: 400, message: 'The Content-MD5 or checksum value that you specified did not match what was received.' },
  /** CreateBucket on a name that exists but is owned by someone else. */
  BucketAlreadyExists: { status: 409, message: 'The requested bucket name is not available.' },
  /** CreateBucket on a bucket the caller already owns (only outside us-east-1 semantics). */
  BucketAlreadyOwnedByYou: { status: 409, message: 'Your previous request to create the named bucket succeeded and you already own it.' },
  /** DeleteBucket on a bucket that still holds objects. */
  BucketNotEmpty: { status: 409, message: 'The bucket you tried to delete is not empty.' },
  /** A conditional write lost a race with another writer of the same key. */
  ConditionalRequestConflict: { status: 409, message: 'A conflicting operation occurred. If using PutObject you can retry the request.' },
  OperationAborted: { status: 409, message: 'A conflicting conditional operation is currently in progress against this resource. Please try again.' },
  /** A part is smaller than the 5 MiB minimum. */
  EntityTooSmall: { status: 400, message: 'Your proposed upload is smaller than the minimum allowed object size.' },
  /** The object or part is larger than S3 allows. */
  EntityTooLarge: { status: 400, message: 'Your proposed upload exceeds the maximum allowed object size.' },
  /** The request was signed more than 15 minutes away from the server's clock. */
  RequestTimeTooSkewed: { status: 403, message: 'The difference between the request time and the current time is too large.' },
  /** A presigned URL used after its expiry. */
  ExpiredToken: { status: 400, message: 'The provided token has expired.' },
  /** The body was shorter than its declared length. */
  IncompleteBody: { status: 400, message: 'You did not provide the number of bytes specified by the Content-Length HTTP header.' },
  /** The backends together have no room for the object (our extension; S3 uses 507 the same way). */
  InsufficientStorage: { status: 507, message: 'No backend has room for this object.' },
  /** Internal failure; details are logged under the request id. */
  InternalError: { status: 500, message: 'We encountered an internal error. Please try again.' },
  /** The access key id is not known. */
  InvalidAccessKeyId: { status: 403, message: 'The AWS access key Id you provided does not exist in our records.' },
  /** A parameter has an invalid value. */
  InvalidArgument: { status: 400, message: 'Invalid Argument' },
  /** The bucket name is not a valid S3 bucket name. */
  InvalidBucketName: { status: 400, message: 'The specified bucket is not valid.' },
  /** Content-MD5 is not valid base64 of 16 bytes. */
  InvalidDigest: { status: 400, message: 'The Content-MD5 you specified is not valid.' },
  /** A part named in CompleteMultipartUpload was not found or its ETag differs. */
  InvalidPart: { status: 400, message: 'One or more of the specified parts could not be found.' },
  /** Parts in CompleteMultipartUpload are not in ascending order. */
  InvalidPartOrder: { status: 400, message: 'The list of parts was not in ascending order.' },
  /** GET/HEAD ?partNumber names a part the object does not have. */
  InvalidPartNumber: { status: 416, message: 'The requested partnumber is not satisfiable' },
  /** The Range header does not overlap the object. */
  InvalidRange: { status: 416, message: 'The requested range is not satisfiable' },
  /** x-amz-storage-class names a class that is not valid here (only STANDARD is stored). */
  InvalidStorageClass: { status: 400, message: 'The storage class you specified is not valid' },
  /** The request is not valid for reasons not covered by another code. */
  InvalidRequest: { status: 400, message: 'Invalid Request' },
  /** The key is longer than 1024 bytes. */
  KeyTooLongError: { status: 400, message: 'Your key is too long' },
  /** The XML body is not well-formed or does not match the schema. */
  MalformedXML: { status: 400, message: 'The XML you provided was not well-formed or did not validate against our published schema.' },
  /** The method is not allowed on this resource. */
  MethodNotAllowed: { status: 405, message: 'The specified method is not allowed against this resource.' },
  /** A PUT without Content-Length (or x-amz-decoded-content-length for aws-chunked bodies). */
  MissingContentLength: { status: 411, message: 'You must provide the Content-Length HTTP header.' },
  /** A required header or body is missing. */
  MissingRequestBodyError: { status: 400, message: 'Request Body is empty.' },
  /** A required security header (x-amz-content-sha256 and friends) is missing. */
  MissingSecurityHeader: { status: 400, message: 'Your request was missing a required header.' },
  /** The bucket does not exist. */
  NoSuchBucket: { status: 404, message: 'The specified bucket does not exist.' },
  /** The key does not exist. */
  NoSuchKey: { status: 404, message: 'The specified key does not exist.' },
  /** The multipart upload does not exist (or belongs to another bucket or key). */
  NoSuchUpload: { status: 404, message: 'The specified multipart upload does not exist.' },
  /** The bucket has no CORS configuration. */
  NoSuchCORSConfiguration: { status: 404, message: 'The CORS configuration does not exist.' },
  /** The object has no tag set (never sent: S3 answers an empty set). */
  NoSuchTagSet: { status: 404, message: 'The TagSet does not exist.' },
  /** The operation or subresource is not implemented. */
  NotImplemented: { status: 501, message: 'A header or query you provided implies functionality that is not implemented.' },
  /** A conditional GET/HEAD (If-None-Match / If-Modified-Since) found the object unchanged. */
  NotModified: { status: 304, message: 'Not Modified' },
  /** A precondition (If-Match, If-Unmodified-Since, If-None-Match on write) failed. */
  PreconditionFailed: { status: 412, message: 'At least one of the pre-conditions you specified did not hold' },
  /** The client did not send bytes for longer than the idle timeout. */
  RequestTimeout: { status: 400, message: 'Your socket connection to the server was not read from or written to within the timeout period.' },
  /**
   * A backend is unavailable (S3's wording for SlowDown, "Please reduce your request rate.", would send
   * clients looking for a throttling problem that does not exist). Other causes pass their own message.
   */
  ServiceUnavailable: { status: 503, message: 'A storage provider needed for this request is unavailable. Please try again later.' },
  /** The signature does not match the request. */
  SignatureDoesNotMatch: { status: 403, message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' },
  /** A copy whose source and destination are the same object without any change. */
  InvalidObjectState: { status: 403, message: 'The operation is not valid for the current state of the object.' },
  /** x-amz-content-sha256 does not match the body. */
  XAmzContentSHA256Mismatch: { status: 400, message: 'The provided \'x-amz-content-sha256\' header does not match what was computed.' },
  /** The request body is larger than allowed for this operation. */
  MaxMessageLengthExceeded: { status: 400, message: 'Your request was too big.' },
  /** User metadata (x-amz-meta-* names and values) is larger than 2 KB. */
  MetadataTooLarge: { status: 400, message: 'Your metadata headers exceed the maximum allowed metadata size.' },
  /** The request URI could not be parsed (bad percent-encoding or invalid UTF-8). */
  InvalidURI: { status: 400, message: "Couldn't parse the specified URI." },
  /** DeleteObjects with more than 1000 keys, tagging with too many tags, and similar. */
  InvalidTag: { status: 400, message: 'The tag provided was not a valid tag.' },
} as const satisfies Record<string, S3ErrorSpec>;

/** The message of a 503 whose cause is a storage provider (backend) that cannot be reached. */
export const PROVIDER_UNAVAILABLE = S3_ERRORS.ServiceUnavailable.message;

/** Every S3 error code this server can send. */
export type S3ErrorCode = keyof typeof S3_ERRORS;

/** An error that is meant to reach the client as S3 XML. */
export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  /** Extra XML elements S3 sends for some errors (e.g. BucketName, Key, ExpectedDigest). */
  readonly fields: Readonly<Record<string, string>>;
  /** Extra response headers (e.g. x-amz-checksum-* on BadDigest, Allow on 405). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: S3ErrorCode,
    message?: string,
    fields: Record<string, string> = {},
    opts: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message ?? S3_ERRORS[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'S3Error';
    this.code = code;
    this.status = S3_ERRORS[code].status;
    this.fields = fields;
    this.headers = opts.headers ?? {};
  }
}

/** Shorthand constructor: `s3err('NoSuchKey', undefined, { Key: key })`. */
export function s3err(code: S3ErrorCode, message?: string, fields?: Record<string, string>): S3Error {
  return new S3Error(code, message, fields);
}

/** InvalidArgument naming the offending argument, as S3 does. */
export function invalidArgument(name: string, value: string, message: string): S3Error {
  return new S3Error('InvalidArgument', message, { ArgumentName: name, ArgumentValue: value });
}

/** Turns anything into an S3Error; non-S3 errors become InternalError with the cause kept for logs. */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  return new S3Error('InternalError', undefined, {}, { cause: err });
}
