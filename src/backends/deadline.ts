/**
 * Connect and first-byte deadlines for the S3 backend's HTTP calls (`backends[].connect_timeout` and
 * `first_byte_timeout`). The AWS SDK's own timers do not give "a silent provider costs one timeout":
 * its `requestTimeout` runs over the whole request (a large upload would hit it), and its timeouts are
 * retried (three attempts cost three timeouts). So the SDK's request handler is wrapped; each attempt gets:
 *
 * - the SDK's `connectionTimeout` for the TCP/TLS connection, turned into a {@link DeadlineError};
 * - a first-byte timer: the answer (the response's status line) must start within `firstByteMs` of the
 *   attempt's start; for an upload (an {@link ExactLength} body) the timer restarts whenever body bytes
 *   move, so it fires when the provider takes no byte of a body it is owed for `firstByteMs`, or stays
 *   silent `firstByteMs` after the body's last byte. A client that is slow to send its body never counts:
 *   the provider is only blamed while bytes wait for it.
 *
 * Server-side copies (CopyObject, UploadPartCopy) and CompleteMultipartUpload get no first-byte timer: a
 * provider may legitimately work on the bytes for as long as their size needs before it answers; the
 * socket idle timeout bounds them.
 *
 * A {@link DeadlineError} is not retried by the SDK (it is no error name or code its retry strategy knows,
 * and carries no cause), so the call fails once, and the backend reports it as `Unavailable`: it counts
 * against the backend's circuit breaker.
 */
import { ExactLength } from './stream-util.js';

/** A connect or first-byte deadline passed. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'S3oDeadlineError';
  }
}

/** The parts of smithy's HttpRequest looked at here. */
export interface HttpRequestLike {
  method?: string;
  headers?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
}

/** The part of the SDK's request handler this wrapper uses (smithy's HttpHandler). */
export interface RequestHandlerLike {
  handle(request: HttpRequestLike, options?: { abortSignal?: AbortSignal; [k: string]: unknown }): Promise<unknown>;
  destroy?(): void;
  updateHttpClientConfig?(key: never, value: never): void;
  httpHandlerConfigs?(): unknown;
}

/** The deadlines of one backend, ms. */
export interface Deadlines {
  connectMs: number;
  firstByteMs: number;
}

/** The SDK's node handler rejects a connection that is not up in time with this message. */
function isConnectTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === 'TimeoutError' && /establish a connection/.test(err.message);
}

/** True for requests whose answer may take as long as the provider needs to copy or assemble bytes. */
function workBeforeAnswer(r: HttpRequestLike): boolean {
  const copySource = Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'x-amz-copy-source');
  const complete = r.method === 'POST' && r.query?.uploadId !== undefined && r.query?.partNumber === undefined;
  return copySource || complete;
}

/**
 * Watches one attempt: calls `fire` with the reason once the provider owes an answer or takes no byte for
 * `ms` (see the module comment). Returns a function that stops watching.
 */
function watch(body: unknown, ms: number, fire: (why: string) => void): () => void {
  const upload = body instanceof ExactLength ? body : undefined;
  // A body already consumed (nothing more to send) leaves only the answer to wait for.
  let ended = upload?.readableEnded ?? false;
  let lastBytes = upload?.bytes ?? 0;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    timer = setTimeout(tick, ms);
  };
  const tick = (): void => {
    if (!upload || ended) return fire(`no answer within ${ms} ms (first_byte_timeout)`);
    const bytes = upload.bytes;
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      return arm();
    }
    // Bytes wait in the body's buffer: the connection does not take them.
    if (upload.readableLength > 0) return fire(`the provider took no byte of the body for ${ms} ms (first_byte_timeout)`);
    // Nothing to send: waiting for the caller's own source (a slow client), or for the connection.
    arm();
  };
  const onEnd = (): void => {
    ended = true;
    clearTimeout(timer);
    arm();
  };
  upload?.once('end', onEnd);
  arm();
  return () => {
    clearTimeout(timer);
    upload?.off('end', onEnd);
  };
}

/** Wraps the SDK's request handler so every attempt is held to `d` (see the module comment). */
export function withDeadlines(inner: RequestHandlerLike, d: Deadlines): RequestHandlerLike {
  return {
    async handle(request, options = {}) {
      const ac = new AbortController();
      const outer = options.abortSignal;
      let timedOut: DeadlineError | undefined;
      const forward = (): void => ac.abort(outer?.reason);
      if (outer?.aborted) forward();
      else outer?.addEventListener('abort', forward, { once: true });
      const stop = workBeforeAnswer(request)
        ? () => {}
        : watch(request.body, d.firstByteMs, (why) => {
            timedOut = new DeadlineError(why);
            ac.abort(timedOut);
          });
      try {
        // On success the caller's signal stays forwarded: aborting it later still ends the response body.
        return await inner.handle(request, { ...options, abortSignal: ac.signal });
      } catch (err) {
        outer?.removeEventListener('abort', forward);
        if (timedOut && !outer?.aborted) throw timedOut;
        if (isConnectTimeout(err)) throw new DeadlineError(`no connection within ${d.connectMs} ms (connect_timeout)`);
        throw err;
      } finally {
        stop();
      }
    },
    destroy: () => inner.destroy?.(),
    updateHttpClientConfig: (key, value) => inner.updateHttpClientConfig?.(key, value),
    httpHandlerConfigs: () => inner.httpHandlerConfigs?.(),
  };
}
