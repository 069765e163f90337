/**
 * Parsing of the two SigV4 forms S3 accepts: the `Authorization: AWS4-HMAC-SHA256 ...` header and the
 * presigned query (`X-Amz-Algorithm`, `X-Amz-Credential`, ...). Syntax only; sigv4.ts checks meaning.
 */
import { S3Error } from '../errors.js';
import { ALGORITHM, type QueryParam } from './canonical.js';

/** The authentication fields of a request, whichever form carried them. */
export interface ParsedAuth {
  presigned: boolean;
  accessKeyId: string;
  /** Scope date `YYYYMMDD`. */
  date: string;
  region: string;
  service: string;
  terminal: string;
  /** `date/region/service/terminal`. */
  scope: string;
  /** The Credential value as sent (for error messages). */
  credentialText: string;
  /** Lower-case header names in the order signed. */
  signedHeaders: string[];
  signature: string;
  /** Request timestamp, ISO 8601 basic (`YYYYMMDDTHHMMSSZ`), as it appears in the string to sign. */
  amzDate: string;
  timestampMs: number;
  /** X-Amz-Expires in seconds (presigned only). */
  expiresSec?: number;
}

/** Longest presigned URL lifetime S3 allows: 7 days. */
export const MAX_PRESIGN_EXPIRES_SEC = 604800;

const ISO_BASIC = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses `YYYYMMDDTHHMMSSZ` strictly (no rollover of out-of-range fields); undefined if invalid. */
export function parseIsoBasic(s: string): number | undefined {
  const m = ISO_BASIC.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  if (h > 23 || mi > 59 || se > 59) return undefined;
  return ms;
}

/** Formats ms as `YYYYMMDDTHHMMSSZ`. */
export function formatIsoBasic(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

interface CredentialParts {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminal: string;
}

function splitCredential(text: string): CredentialParts | undefined {
  const parts = text.split('/');
  if (parts.length !== 5 || parts.some((p) => p === '')) return undefined;
  const [accessKeyId, date, region, service, terminal] = parts as [string, string, string, string, string];
  if (!/^\d{8}$/.test(date)) return undefined;
  return { accessKeyId, date, region, service, terminal };
}

function splitSignedHeaders(text: string): string[] | undefined {
  const names = text.split(';').map((n) => n.trim().toLowerCase());
  return names.some((n) => n === '') ? undefined : names;
}

function headerMalformed(detail: string): S3Error {
  return new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${detail}`);
}

const CREDENTIAL_SHAPE = 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".';

/** Parses an Authorization header value; the timestamp comes from x-amz-date, else Date. */
export function parseAuthorizationHeader(value: string, headers: Readonly<Record<string, string>>): ParsedAuth {
  const text = value.trim();
  const sp = text.indexOf(' ');
  const algorithm = sp < 0 ? text : text.slice(0, sp);
  if (algorithm !== ALGORITHM) {
    throw new S3Error(
      'InvalidRequest',
      'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.',
    );
  }
  const fields = new Map<string, string>();
  for (const raw of text.slice(sp + 1).split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw headerMalformed(`the authorization component "${item}" is malformed.`);
    const k = item.slice(0, eq).trim();
    if (fields.has(k)) throw headerMalformed(`the authorization component "${k}" is repeated.`);
    fields.set(k, item.slice(eq + 1).trim());
  }
  const credentialText = fields.get('Credential');
  const signedText = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credentialText === undefined || signedText === undefined || signature === undefined) {
    throw headerMalformed(
      'the authorization header requires three components: Credential, SignedHeaders, and Signature.',
    );
  }
  const cred = splitCredential(credentialText);
  if (cred === undefined) throw headerMalformed(CREDENTIAL_SHAPE);
  const signedHeaders = splitSignedHeaders(signedText);
  if (signedHeaders === undefined) throw headerMalformed('the SignedHeaders component is malformed.');

  let amzDate: string | undefined;
  let timestampMs: number | undefined;
  const xAmzDate = headers['x-amz-date'];
  if (xAmzDate !== undefined) {
    amzDate = xAmzDate.trim();
    timestampMs = parseIsoBasic(amzDate);
  } else if (headers['date'] !== undefined) {
    // The Date header is RFC 1123; the string to sign still carries the ISO basic form.
    const ms = Date.parse(headers['date']);
    if (Number.isFinite(ms)) {
      timestampMs = ms;
      amzDate = formatIsoBasic(ms);
    }
  }
  if (amzDate === undefined || timestampMs === undefined) {
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  }
  return {
    presigned: false,
    ...cred,
    scope: `${cred.date}/${cred.region}/${cred.service}/${cred.terminal}`,
    credentialText,
    signedHeaders,
    signature,
    amzDate,
    timestampMs,
  };
}

const REQUIRED_QUERY = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Signature',
  'X-Amz-Date',
  'X-Amz-SignedHeaders',
  'X-Amz-Expires',
] as const;

/** Parses the presigned-URL query parameters (names are case-sensitive, as in S3). */
/** S3's answer to presigned-URL query parameters that are missing, repeated, malformed or out of range. */
export function queryParamError(message: string): S3Error {
  return new S3Error('AuthorizationQueryParametersError', message);
}

export function parsePresignedQuery(query: readonly QueryParam[]): ParsedAuth {
  const got = new Map<string, string>();
  for (const p of query) {
    if (!(REQUIRED_QUERY as readonly string[]).includes(p.name)) continue;
    if (got.has(p.name)) throw queryParamError(`${p.name} must be specified only once`);
    got.set(p.name, p.value);
  }
  const algorithm = got.get('X-Amz-Algorithm');
  if (algorithm !== undefined && algorithm !== ALGORITHM) {
    throw queryParamError(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
  }
  if (REQUIRED_QUERY.some((n) => got.get(n) === undefined)) {
    throw queryParamError(
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  const credentialText = got.get('X-Amz-Credential')!;
  const cred = splitCredential(credentialText);
  if (cred === undefined) {
    throw queryParamError(`Error parsing the X-Amz-Credential parameter; ${CREDENTIAL_SHAPE}`);
  }
  const amzDate = got.get('X-Amz-Date')!;
  const timestampMs = parseIsoBasic(amzDate);
  if (timestampMs === undefined) {
    throw queryParamError('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  }
  const expiresText = got.get('X-Amz-Expires')!;
  if (/^-\d+$/.test(expiresText)) {
    throw queryParamError('X-Amz-Expires must be non-negative');
  }
  if (!/^\d{1,12}$/.test(expiresText)) {
    throw queryParamError('X-Amz-Expires should be a number');
  }
  const expiresSec = Number(expiresText);
  if (expiresSec > MAX_PRESIGN_EXPIRES_SEC) {
    throw queryParamError('X-Amz-Expires must be less than a week (in seconds) that is; 604800 seconds');
  }
  const signedText = got.get('X-Amz-SignedHeaders')!;
  const signedHeaders = splitSignedHeaders(signedText);
  if (signedHeaders === undefined) {
    throw queryParamError('X-Amz-SignedHeaders is malformed');
  }
  return {
    presigned: true,
    ...cred,
    scope: `${cred.date}/${cred.region}/${cred.service}/${cred.terminal}`,
    credentialText,
    signedHeaders,
    signature: got.get('X-Amz-Signature')!,
    amzDate,
    timestampMs,
    expiresSec,
  };
}
