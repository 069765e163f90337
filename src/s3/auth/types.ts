/**
 * Types shared by SigV4 request verification ({@link import('./sigv4.js').verifyRequest}) and body
 * verification ({@link import('./body.js').createBodyVerifier}). Pure types: no runtime code.
 */
import type { Credential } from '../../core/types.js';

/** The request line and headers, before any body byte is read. */
export interface RequestHead {
  /** Upper-case HTTP method. */
  method: string;
  /** Exactly as on the wire, percent-encoded, without the query. */
  rawPath: string;
  /** As on the wire without '?', '' when none. */
  rawQuery: string;
  /** Lower-cased names; repeated headers joined with ','. */
  headers: Readonly<Record<string, string>>;
}

/** Resolves an access key id to its credential, or undefined when the key is unknown. */
export type CredentialLookup = (accessKeyId: string) => Promise<Credential | undefined>;

/** How the request body is protected, from `x-amz-content-sha256` (or its absence on presigned URLs). */
export type PayloadMode =
  /** `x-amz-content-sha256` is a hex digest: the body must hash to it. */
  | { kind: 'sha256'; hex: string }
  /** UNSIGNED-PAYLOAD (also presigned URLs without x-amz-content-sha256). */
  | { kind: 'unsigned' }
  /** STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: aws-chunked body with chained chunk signatures. */
  | { kind: 'streaming-signed'; trailer: boolean }
  /** STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked body without chunk signatures, checksum trailer. */
  | { kind: 'streaming-unsigned-trailer' };

/**
 * What chunk and trailer signature verification needs from the verified request: the derived signing
 * key, the request's own signature (the seed of the chunk chain), the credential scope and the timestamp.
 */
export interface SigningContext {
  readonly signingKey: Buffer;
  /** Hex signature of the request itself; the first chunk signature chains from it. */
  readonly seedSignature: string;
  /** `YYYYMMDD/region/s3/aws4_request`. */
  readonly scope: string;
  /** The request timestamp in ISO 8601 basic form (`YYYYMMDDTHHMMSSZ`). */
  readonly amzDate: string;
}

/** Unforgeable brand: only sigv4.ts produces values of {@link AuthenticatedRequest}. */
declare const brand: unique symbol;

/** Proof that a request's signature was verified; handlers accept only this type. */
export interface AuthenticatedRequest {
  readonly [brand]: true;
  /** The credential that signed the request. */
  readonly credential: Credential;
  /** How the body must be verified. */
  readonly payload: PayloadMode;
  /** True for query-string (presigned URL) authentication. */
  readonly presigned: boolean;
  /** Lower-case names of the headers covered by the signature. */
  readonly signedHeaders: readonly string[];
  /** Needed to verify aws-chunked chunk and trailer signatures. */
  readonly signing: SigningContext;
}
