/**
 * SigV4 verification of an S3 request head (Authorization header or presigned query), producing the
 * {@link AuthenticatedRequest} proof that handlers require. Body verification is in body.ts.
 */
import { S3Error, invalidArgument } from '../errors.js';
import type { AuthenticatedRequest, CredentialLookup, PayloadMode, RequestHead, SigningContext } from './types.js';
import {
  canonicalQuery,
  canonicalRequest,
  constantTimeEqual,
  parseQuery,
  signHex,
  signingKey,
  stringToSign,
} from './canonical.js';
import { parseAuthorizationHeader, parsePresignedQuery, queryParamError, type ParsedAuth } from './parse.js';

/** Largest clock difference S3 accepts between the request timestamp and the server clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;

const proofs = new WeakSet<object>();

/** True when `x` was produced by {@link verifyRequest} in this process (a runtime check of the brand). */
export function isAuthenticatedRequest(x: unknown): x is AuthenticatedRequest {
  return typeof x === 'object' && x !== null && proofs.has(x);
}

/** Options of {@link verifyRequest}. */
export interface VerifyOptions {
  /** The region this endpoint answers for; the credential scope must name it. */
  region: string;
  /** Current time in ms (tests); defaults to Date.now(). */
  now?: number;
}

const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature'];

/**
 * Verifies the SigV4 signature of a request head. Resolves to the proof on success; rejects with an
 * S3Error (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, AuthorizationHeaderMalformed,
 * RequestTimeTooSkewed, AuthorizationQueryParametersError, InvalidArgument, InvalidRequest) otherwise. The body is not read here: the
 * returned {@link PayloadMode} says how {@link import('./body.js').createBodyVerifier} must check it.
 */
export async function verifyRequest(
  head: RequestHead,
  lookup: CredentialLookup,
  opts: VerifyOptions,
): Promise<AuthenticatedRequest> {
  const now = opts.now ?? Date.now();
  const query = parseQuery(head.rawQuery);
  const authz = head.headers['authorization'];
  const queryAuth = query.some((p) => PRESIGN_PARAMS.includes(p.name));

  let parsed: ParsedAuth;
  if (authz !== undefined && queryAuth) {
    throw invalidArgument(
      'Authorization',
      authz,
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
    );
  } else if (authz !== undefined) {
    parsed = parseAuthorizationHeader(authz, head.headers);
  } else if (queryAuth) {
    parsed = parsePresignedQuery(query);
  } else if (query.some((p) => p.name === 'AWSAccessKeyId' || p.name === 'Signature')) {
    throw unsupportedMechanism();
  } else {
    throw new S3Error('AccessDenied');
  }

  checkScope(parsed, opts.region);
  checkTime(parsed, now);
  checkSignedHeaders(parsed, head);

  const credential = await lookup(parsed.accessKeyId);
  if (credential === undefined) {
    throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: parsed.accessKeyId });
  }

  const payloadHash = payloadHashOf(parsed, head, query);
  const payload = payloadModeOf(payloadHash, parsed.presigned);

  const canonQuery = canonicalQuery(head.rawQuery, parsed.presigned ? 'X-Amz-Signature' : undefined);
  const creq = canonicalRequest(head.method, head.rawPath, canonQuery, head.headers, parsed.signedHeaders, payloadHash);
  const toSign = stringToSign(parsed.amzDate, parsed.scope, creq);
  const key = signingKey(credential.secretAccessKey, parsed.date, parsed.region, parsed.service);
  const expected = signHex(key, toSign);
  if (!constantTimeEqual(expected, parsed.signature)) {
    throw new S3Error('SignatureDoesNotMatch', undefined, {
      AWSAccessKeyId: parsed.accessKeyId,
      StringToSign: toSign,
      SignatureProvided: parsed.signature,
      CanonicalRequest: creq,
    });
  }

  const signing: SigningContext = Object.freeze({
    signingKey: key,
    seedSignature: expected,
    scope: parsed.scope,
    amzDate: parsed.amzDate,
  });
  const proof = Object.freeze({
    credential,
    payload,
    presigned: parsed.presigned,
    signedHeaders: Object.freeze([...parsed.signedHeaders]),
    signing,
  }) as unknown as AuthenticatedRequest;
  proofs.add(proof);
  return proof;
}

function unsupportedMechanism(): S3Error {
  return new S3Error(
    'InvalidRequest',
    'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.',
  );
}

/** The malformed-auth error of the form in use: S3 answers header and query problems differently. */
function malformed(parsed: ParsedAuth, detail: string, fields: Record<string, string> = {}): S3Error {
  if (parsed.presigned) return queryParamError(`Error parsing the X-Amz-Credential parameter; ${detail}`);
  return new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${detail}`, fields);
}

function checkScope(parsed: ParsedAuth, region: string): void {
  if (parsed.region !== region) {
    throw malformed(parsed, `the region '${parsed.region}' is wrong; expecting '${region}'`, { Region: region });
  }
  if (parsed.service !== 's3') {
    throw malformed(parsed, `incorrect service "${parsed.service}". This endpoint belongs to "s3".`);
  }
  if (parsed.terminal !== 'aws4_request') {
    throw malformed(parsed, `incorrect terminal "${parsed.terminal}". This endpoint uses "aws4_request".`);
  }
  if (parsed.date !== parsed.amzDate.slice(0, 8)) {
    throw malformed(parsed, 'Invalid credential date. Date is not the same as X-Amz-Date.');
  }
}

function checkTime(parsed: ParsedAuth, now: number): void {
  const t = parsed.timestampMs;
  if (!parsed.presigned) {
    if (Math.abs(t - now) > MAX_SKEW_MS) {
      throw new S3Error('RequestTimeTooSkewed', undefined, {
        RequestTime: parsed.amzDate,
        ServerTime: new Date(now).toISOString(),
        MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
      });
    }
    return;
  }
  if (t - now > MAX_SKEW_MS) {
    throw new S3Error('AccessDenied', 'Request is not valid yet', {
      'X-Amz-Date': parsed.amzDate,
      ServerTime: new Date(now).toISOString(),
    });
  }
  const expiresAt = t + (parsed.expiresSec ?? 0) * 1000;
  if (now > expiresAt) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': String(parsed.expiresSec ?? 0),
      Expires: new Date(expiresAt).toISOString(),
      ServerTime: new Date(now).toISOString(),
    });
  }
}

/**
 * `host` must be signed, and so must every x-amz-* header present: an unsigned one could be added by
 * anyone replaying the request (S3 answers AccessDenied with HeadersNotSigned).
 */
function checkSignedHeaders(parsed: ParsedAuth, head: RequestHead): void {
  const signed = new Set(parsed.signedHeaders);
  if (!signed.has('host')) {
    if (parsed.presigned) throw invalidArgument('X-Amz-SignedHeaders', parsed.signedHeaders.join(';'), 'Host must be signed');
    throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; Host must be signed');
  }
  const unsigned = Object.keys(head.headers).filter(
    (h) => h.startsWith('x-amz-') && !signed.has(h) && h !== 'authorization',
  );
  if (unsigned.length > 0) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: unsigned.sort().join(', '),
    });
  }
}

const STREAMING_VALUES = new Set([
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
]);

/** The payload hash line of the canonical request, exactly as the client put it. */
function payloadHashOf(parsed: ParsedAuth, head: RequestHead, query: ReturnType<typeof parseQuery>): string {
  const header = head.headers['x-amz-content-sha256'];
  if (parsed.presigned) {
    const q = query.find((p) => p.name.toLowerCase() === 'x-amz-content-sha256');
    return q?.value ?? header ?? 'UNSIGNED-PAYLOAD';
  }
  if (header === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  return header;
}

function payloadModeOf(value: string, presigned: boolean): PayloadMode {
  if (value === 'UNSIGNED-PAYLOAD') return { kind: 'unsigned' };
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'sha256', hex: value.toLowerCase() };
  if (STREAMING_VALUES.has(value) && !presigned) {
    if (value === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') return { kind: 'streaming-unsigned-trailer' };
    return { kind: 'streaming-signed', trailer: value.endsWith('-TRAILER') };
  }
  if (value.startsWith('STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD')) {
    throw new S3Error('NotImplemented', 'SigV4a (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) is not supported.');
  }
  throw invalidArgument(
    'x-amz-content-sha256',
    value,
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.',
  );
}
