/**
 * Reading of `x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm` and `x-amz-trailer` into what a body must
 * be checked against. The hashers themselves live in core/hashing.ts and are re-exported here.
 */
import type { ChecksumAlgorithm } from '../core/types.js';
import { algorithmOfHeader, CHECKSUM_ALGORITHMS, isValidDigestBase64 } from '../core/hashing.js';
import { S3Error } from './errors.js';

export {
  algorithmOfHeader,
  CHECKSUM_ALGORITHMS,
  checksumBase64,
  checksumHeaderName,
  createHasher,
  DIGEST_BYTES,
  isValidDigestBase64,
  type Hasher,
} from '../core/hashing.js';

/** What a request body's checksum must be checked against, read from the request headers. */
export interface ChecksumPlan {
  /** The algorithm to compute and store; undefined when the client neither sent nor asked for one. */
  algorithm?: ChecksumAlgorithm;
  /** The base64 value from an `x-amz-checksum-*` header, to verify at the end of the body. */
  expected?: string;
  /** The trailer name (`x-amz-checksum-crc32`) when the value arrives in an aws-chunked trailer. */
  trailer?: string;
}

function multipleChecksums(): S3Error {
  return new S3Error(
    'InvalidRequest',
    'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
  );
}

/**
 * Reads `x-amz-checksum-<algo>`, `x-amz-trailer` and `x-amz-sdk-checksum-algorithm` into a plan.
 * Throws InvalidRequest for more than one checksum, a malformed value, an unsupported trailer, or an
 * SDK algorithm that contradicts the checksum sent.
 */
export function checksumPlan(headers: Readonly<Record<string, string>>): ChecksumPlan {
  let fromHeader: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  for (const [name, value] of Object.entries(headers)) {
    const algorithm = algorithmOfHeader(name);
    if (algorithm === undefined) continue;
    if (fromHeader !== undefined) throw multipleChecksums();
    const v = value.trim();
    if (!isValidDigestBase64(algorithm, v)) {
      throw new S3Error('InvalidRequest', `Value for ${name} header is invalid.`);
    }
    fromHeader = { algorithm, value: v };
  }

  let trailer: { algorithm: ChecksumAlgorithm; name: string } | undefined;
  const trailerHeader = headers['x-amz-trailer'];
  if (trailerHeader !== undefined) {
    for (const raw of trailerHeader.split(',')) {
      const name = raw.trim().toLowerCase();
      if (name === '') continue;
      const algorithm = algorithmOfHeader(name);
      if (algorithm === undefined) {
        throw new S3Error('InvalidRequest', 'The value specified in the x-amz-trailer header is not supported');
      }
      if (trailer !== undefined || fromHeader !== undefined) throw multipleChecksums();
      trailer = { algorithm, name };
    }
  }

  const sdkHeader = headers['x-amz-sdk-checksum-algorithm'];
  let sdkAlgorithm: ChecksumAlgorithm | undefined;
  if (sdkHeader !== undefined) {
    const want = sdkHeader.trim().toUpperCase();
    sdkAlgorithm = CHECKSUM_ALGORITHMS.find((a) => a === want);
    if (sdkAlgorithm === undefined) {
      throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
  }

  const sent = fromHeader?.algorithm ?? trailer?.algorithm;
  if (sent !== undefined && sdkAlgorithm !== undefined && sent !== sdkAlgorithm) {
    throw new S3Error(
      'InvalidRequest',
      `Value for x-amz-sdk-checksum-algorithm header is invalid: it names ${sdkAlgorithm} but the checksum sent is ${sent}.`,
    );
  }
  const plan: ChecksumPlan = {};
  const algorithm = sent ?? sdkAlgorithm;
  if (algorithm !== undefined) plan.algorithm = algorithm;
  if (fromHeader !== undefined) plan.expected = fromHeader.value;
  if (trailer !== undefined) plan.trailer = trailer.name;
  return plan;
}
