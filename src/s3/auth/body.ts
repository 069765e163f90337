/**
 * Verification of a request body against what its verified head promised: the x-amz-content-sha256
 * digest, aws-chunked chunk and trailer signatures, the declared length, Content-MD5 and the
 * x-amz-checksum-* value (header or trailer). Bytes flow through as they arrive; any failure errors the
 * stream before its end, so a consumer that sees a clean end has a verified body.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { BodyDigests, StoredChecksum } from '../../core/types.js';
import { S3Error, invalidArgument, toS3Error } from '../errors.js';
import { checksumPlan, createHasher, isValidDigestBase64, type ChecksumPlan, type Hasher } from '../checksums.js';
import { AwsChunkedDecoder } from './chunked.js';
import { isAuthenticatedRequest } from './sigv4.js';
import type { AuthenticatedRequest, RequestHead } from './types.js';

/** A body checker for one request. */
export interface BodyVerifier {
  /** Decoded body length: x-amz-decoded-content-length for aws-chunked bodies, else Content-Length. */
  readonly decodedLength: number;
  /**
   * Raw body in, decoded body out. Errors (with an S3Error) at the first bad chunk, on a short or long
   * body, or at the end when a digest does not match; never ends cleanly otherwise.
   */
  readonly stream: Transform;
  /** Valid after `stream` ended cleanly: hex MD5 of the decoded bytes, plus the checksum to store. */
  digests(): BodyDigests;
}

function parseLength(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!/^\d{1,15}$/.test(v)) throw invalidArgument(name, value, `${name} must be a non-negative integer`);
  return Number(v);
}

function algorithmMismatch(algorithm: string): S3Error {
  return new S3Error('BadDigest', `The ${algorithm} you specified did not match the calculated checksum.`);
}

/**
 * Prepares verification of the body of `head`, authenticated as `auth`. Throws S3Error for headers that
 * make the body unverifiable (bad Content-MD5, conflicting checksums, missing decoded length).
 */
export function createBodyVerifier(auth: AuthenticatedRequest, head: RequestHead): BodyVerifier {
  if (!isAuthenticatedRequest(auth)) throw new TypeError('createBodyVerifier needs a request proven by verifyRequest');
  const h = head.headers;
  const mode = auth.payload;
  const chunked = mode.kind === 'streaming-signed' || mode.kind === 'streaming-unsigned-trailer';
  const hasTrailer = mode.kind === 'streaming-unsigned-trailer' || (mode.kind === 'streaming-signed' && mode.trailer);

  const plan: ChecksumPlan = checksumPlan(h);
  if (plan.trailer !== undefined && !hasTrailer) {
    throw new S3Error(
      'InvalidRequest',
      'x-amz-trailer requires x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.',
    );
  }

  const md5Header = h['content-md5']?.trim();
  if (md5Header !== undefined && !isValidDigestBase64('MD5', md5Header)) throw new S3Error('InvalidDigest');

  let decodedLength: number;
  if (chunked) {
    const d = parseLength('x-amz-decoded-content-length', h['x-amz-decoded-content-length']);
    if (d === undefined) {
      throw new S3Error('MissingContentLength', 'You must provide the x-amz-decoded-content-length HTTP header.');
    }
    decodedLength = d;
  } else {
    const cl = parseLength('Content-Length', h['content-length']);
    if (cl === undefined && h['transfer-encoding'] !== undefined) throw new S3Error('MissingContentLength');
    decodedLength = cl ?? 0;
  }

  const md5 = createHash('md5');
  const sha256 = mode.kind === 'sha256' ? createHash('sha256') : undefined;
  const checksum: Hasher | undefined = plan.algorithm === undefined ? undefined : createHasher(plan.algorithm);
  let received = 0;
  let result: BodyDigests | undefined;

  let stream: Transform;
  const emit = (data: Buffer): void => {
    md5.update(data);
    sha256?.update(data);
    checksum?.update(data);
    stream.push(data);
  };
  const decoder = chunked
    ? new AwsChunkedDecoder({
        ...(mode.kind === 'streaming-signed' ? { signing: auth.signing } : {}),
        trailer: hasTrailer,
        decodedLength,
        onData: emit,
      })
    : undefined;

  const finish = async (): Promise<void> => {
    if (decoder !== undefined) decoder.end();
    else if (received < decodedLength) throw new S3Error('IncompleteBody');

    if (sha256 !== undefined && mode.kind === 'sha256') {
      const computed = sha256.digest('hex');
      if (computed !== mode.hex) {
        throw new S3Error('XAmzContentSHA256Mismatch', undefined, {
          ClientComputedContentSHA256: mode.hex,
          S3ComputedContentSHA256: computed,
        });
      }
    }
    const md5Bytes = md5.digest();
    if (md5Header !== undefined && md5Bytes.toString('base64') !== md5Header) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what was received.', {
        ExpectedDigest: md5Header,
        CalculatedDigest: md5Bytes.toString('base64'),
      });
    }

    let stored: StoredChecksum | undefined;
    if (plan.algorithm !== undefined && checksum !== undefined) {
      const value = (await checksum.digest()).toString('base64');
      const expected = plan.expected ?? expectedFromTrailer(plan, decoder);
      if (expected !== undefined && expected !== value) throw algorithmMismatch(plan.algorithm);
      stored = { algorithm: plan.algorithm, value, type: 'FULL_OBJECT' };
    } else if (decoder !== undefined && decoder.trailers.size > 0) {
      throw new S3Error('InvalidRequest', 'The body carried trailers that x-amz-trailer did not declare.');
    }
    result = stored === undefined ? { md5: md5Bytes.toString('hex') } : { md5: md5Bytes.toString('hex'), checksum: stored };
  };

  stream = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      try {
        if (decoder !== undefined) {
          decoder.write(chunk);
        } else {
          if (received + chunk.length > decodedLength) {
            throw new S3Error('InvalidRequest', 'The request body is longer than its Content-Length.');
          }
          received += chunk.length;
          emit(chunk);
        }
        cb();
      } catch (err) {
        cb(toS3Error(err));
      }
    },
    flush(cb: TransformCallback): void {
      finish().then(
        () => cb(),
        (err: unknown) => cb(toS3Error(err)),
      );
    },
  });

  return {
    decodedLength,
    stream,
    digests(): BodyDigests {
      if (result === undefined) throw new Error('digests() is only valid after the body stream ended cleanly');
      return result;
    },
  };
}

/** The trailer's checksum value, checked for presence, shape and that no other trailer came along. */
function expectedFromTrailer(plan: ChecksumPlan, decoder: AwsChunkedDecoder | undefined): string | undefined {
  if (plan.trailer === undefined || decoder === undefined || plan.algorithm === undefined) {
    if (decoder !== undefined && decoder.trailers.size > 0) {
      throw new S3Error('InvalidRequest', 'The body carried trailers that x-amz-trailer did not declare.');
    }
    return undefined;
  }
  for (const name of decoder.trailers.keys()) {
    if (name !== plan.trailer) throw new S3Error('InvalidRequest', `The body carried an undeclared trailer ${name}.`);
  }
  const value = decoder.trailers.get(plan.trailer);
  if (value === undefined) {
    throw new S3Error('InvalidRequest', `x-amz-trailer named ${plan.trailer} but the body carried no such trailer.`);
  }
  if (!isValidDigestBase64(plan.algorithm, value)) {
    throw new S3Error('InvalidRequest', `Value for ${plan.trailer} trailing header is invalid.`);
  }
  return value;
}
