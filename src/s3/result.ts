/**
 * What handlers return ({@link S3Result}), the S3 XML error body, request ids, and the one mapping of
 * core errors to S3 errors.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CoreError, isDbBusy, isDbUnavailable } from '../core/errors.js';
import { S3Error, type S3ErrorCode } from './errors.js';
import { el } from './xml.js';

/** How a response ended, reported by the adapter once the last byte is out (or the client left). */
export interface SendOutcome {
  /** The status actually sent (a result's `fallback` may have replaced it). */
  status: number;
  /** Request body bytes received from the client. */
  bytesIn: number;
  /** Response body bytes handed to the socket. */
  bytesOut: number;
  /** The client went away or the response was cut short. */
  aborted: boolean;
}

/**
 * A response as data: handlers return it, only the uWS adapter writes it. `bodyLength` is required for
 * Readable bodies (Content-Length; S3 never answers chunked) and, without a body, is the Content-Length
 * a HEAD response reports.
 */
export interface S3Result {
  status: number;
  headers: Record<string, string>;
  body?: Buffer | string | Readable;
  bodyLength?: number;
  /** Called exactly once when the response is finished or abandoned (metrics). */
  onDone?: (outcome: SendOutcome) => void;
  /**
   * For a Readable body: the response to send instead when the body fails, stays idle or ends before its
   * first byte. Nothing has been written then, so the client gets a clean error rather than a committed
   * status with a missing body.
   */
  fallback?: (err: unknown) => S3Result;
}

/** A request id as S3 shapes it: 16 upper-case hex characters. */
export function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** A random x-amz-id-2 (S3's extended request id). */
export function newHostId(): string {
  return randomBytes(24).toString('base64');
}

/** An XML response. */
export function xmlResult(status: number, xml: string, headers: Record<string, string> = {}): S3Result {
  return { status, headers: { 'Content-Type': 'application/xml', ...headers }, body: xml };
}

/**
 * The S3 error response. HEAD responses carry no body (the status and headers say it all).
 * `resource` is the request path as the client sent it.
 */
export function errorResult(err: S3Error, requestId: string, resource: string, head: boolean): S3Result {
  const headers: Record<string, string> = { ...err.headers };
  if (head) return { status: err.status, headers };
  const fields = Object.entries(err.fields).map(([k, v]) => el(k, v));
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    el('Error', [el('Code', err.code), el('Message', err.message), ...fields, el('Resource', resource), el('RequestId', requestId)]).xml;
  return { status: err.status, headers: { 'Content-Type': 'application/xml', ...headers }, body: xml };
}

/**
 * Maps anything thrown below the S3 layer to the S3Error the client sees: S3Errors pass through,
 * CoreErrors become the S3 error of the same name (the assignment below fails to compile if core
 * gains a code S3 does not have), an unreachable metadata database is 503 ServiceUnavailable (transient:
 * clients retry), everything else is InternalError with the cause kept for the log.
 */
export function toClientError(err: unknown, context: { bucket?: string; key?: string } = {}): S3Error {
  if (err instanceof S3Error) return err;
  if (isDbUnavailable(err)) return new S3Error('ServiceUnavailable', 'The metadata database is unavailable. Please retry the request.', {}, { cause: err });
  if (isDbBusy(err)) return new S3Error('ServiceUnavailable', 'The metadata database is too busy to answer in time. Please retry the request.', {}, { cause: err });
  if (err instanceof CoreError) {
    const code: S3ErrorCode = err.code;
    const fields: Record<string, string> = {};
    if (code === 'NoSuchKey' && context.key !== undefined) fields['Key'] = context.key;
    if (code === 'NoSuchBucket' && context.bucket !== undefined) fields['BucketName'] = context.bucket;
    // Only these codes carry a message meant for the client; others keep S3's standard wording.
    const passMessage = (code === 'InvalidArgument' || code === 'InvalidRequest') && err.message !== err.code;
    return new S3Error(code, passMessage ? err.message : undefined, fields, { cause: err });
  }
  return new S3Error('InternalError', undefined, {}, { cause: err });
}

