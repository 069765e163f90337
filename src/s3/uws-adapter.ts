/**
 * The only file that touches uWebSockets.js. It turns a uWS request into {@link HttpRequestIn} (head
 * read synchronously, body as a Readable with real backpressure, an AbortSignal for client aborts) and
 * writes an {@link S3Result} back: buffered bodies with end(), streams with tryEnd()/onWritable()
 * backpressure. Every write to `res` is corked; nothing touches `res` after it ended or was aborted.
 */
import { Readable } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import uWS from 'uWebSockets.js';
import type { S3Result } from './result.js';

/** A request as handlers see it. */
export interface HttpRequestIn {
  /** Upper-case method. */
  method: string;
  /** Path exactly as on the wire (percent-encoded), without the query. */
  rawPath: string;
  /** Query string without '?', '' when none. */
  rawQuery: string;
  /** Lower-cased names; repeated headers joined with ','. */
  headers: Record<string, string>;
  /** The request body. Errors with the `idleError` on idle timeout and with an AbortError on client abort. */
  body: Readable;
  /** Fires when the client goes away. */
  signal: AbortSignal;
}

/** A request handler; it must not throw (errors become results), but a rejection is answered with 500. */
export type HttpHandler = (req: HttpRequestIn) => Promise<S3Result>;

/** Options of {@link startUws}. */
export interface UwsOptions {
  host: string;
  port: number;
  /** A request body or response that makes no progress for this long is ended. */
  idleTimeoutMs: number;
  /** Builds the error the body stream fails with on idle timeout (S3: RequestTimeout). */
  idleError?: () => Error;
}

/** A listening server. */
export interface UwsServer {
  port: number;
  close(): Promise<void>;
}

/** Per-request state shared by the body reader and the response writer. */
interface Exchange {
  res: uWS.HttpResponse;
  /** The client went away (or we force-closed): `res` is dead. */
  aborted: boolean;
  /** The response was ended: `res` is dead. */
  ended: boolean;
  bodyComplete: boolean;
  bytesIn: number;
  bytesOut: number;
  timer?: NodeJS.Timeout;
  /** What an idle timeout does right now. */
  onIdle?: () => void;
  onAbort: (() => void)[];
}

function arm(x: Exchange, ms: number, onIdle: () => void): void {
  x.onIdle = onIdle;
  if (x.timer) x.timer.refresh();
  else x.timer = setTimeout(() => x.onIdle?.(), ms);
}

function disarm(x: Exchange): void {
  if (x.timer) clearTimeout(x.timer);
  x.timer = undefined;
  x.onIdle = undefined;
}

/** The body Readable: uWS pushes chunks in; when the consumer lags we pause the socket. */
class UwsBody extends Readable {
  paused = false;
  constructor(private readonly x: Exchange, private readonly touch: () => void) {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _read(): void {
    this.touch();
    if (this.paused && !this.x.aborted && !this.x.ended) {
      this.paused = false;
      this.x.res.resume();
    }
  }
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** Headers uWS writes itself (or that would corrupt framing if duplicated). */
const SKIP_HEADERS = new Set(['content-length', 'transfer-encoding', 'date', 'connection']);

function writeHead(res: uWS.HttpResponse, r: S3Result): void {
  res.writeStatus(statusLine(r.status));
  for (const [k, v] of Object.entries(r.headers)) {
    if (!SKIP_HEADERS.has(k.toLowerCase())) res.writeHeader(k, v);
  }
}

function abortError(): Error {
  const e = new Error('The client closed the connection');
  e.name = 'AbortError';
  return e;
}

/** Starts a uWS HTTP server that hands every request to `handler`. */
export function startUws(handler: HttpHandler, opts: UwsOptions): Promise<UwsServer> {
  const app = uWS.App();
  app.any('/*', (res, req) => {
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const rawPath = req.getUrl();
    const rawQuery = req.getQuery() ?? '';
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
    });
    const controller = new AbortController();
    const x: Exchange = { res, aborted: false, ended: false, bodyComplete: false, bytesIn: 0, bytesOut: 0, onAbort: [] };
    const body = new UwsBody(x, () => {
      if (!x.bodyComplete && x.timer) x.timer.refresh();
    });
    res.onAborted(() => {
      if (x.ended) return;
      x.aborted = true;
      disarm(x);
      controller.abort(abortError());
      if (!x.bodyComplete) body.destroy(abortError());
      for (const f of x.onAbort) f();
    });
    arm(x, opts.idleTimeoutMs, () => {
      body.destroy(opts.idleError?.() ?? new Error('request body idle timeout'));
    });
    // A request without a body is complete now: uWS reports its (empty) last chunk only after the handler
    // may already have answered, and an answer before the body is complete closes the connection.
    if (headers['transfer-encoding'] === undefined && (headers['content-length'] ?? '0') === '0') {
      x.bodyComplete = true;
      disarm(x);
      body.push(null);
    }
    res.onData((ab, isLast) => {
      if (x.aborted || x.ended || x.bodyComplete || body.destroyed) return;
      if (x.timer) x.timer.refresh();
      if (ab.byteLength > 0) {
        x.bytesIn += ab.byteLength;
        // The ArrayBuffer is neutered when this callback returns: copy before anything async.
        if (!body.push(Buffer.copyBytesFrom(new Uint8Array(ab))) && !isLast) {
          body.paused = true;
          res.pause();
        }
      }
      if (isLast) {
        x.bodyComplete = true;
        disarm(x);
        body.push(null);
      }
    });
    const request: HttpRequestIn = { method, rawPath, rawQuery, headers, body, signal: controller.signal };
    handler(request).then(
      (result) => send(x, result, method === 'HEAD', opts.idleTimeoutMs, body),
      () => send(x, { status: 500, headers: {} }, method === 'HEAD', opts.idleTimeoutMs, body),
    );
  });
  return new Promise((resolve, reject) => {
    app.listen(opts.host, opts.port, (ls) => {
      if (!ls) {
        reject(new Error(`cannot listen on ${opts.host}:${opts.port}`));
        return;
      }
      let closed = false;
      resolve({
        port: uWS.us_socket_local_port(ls as unknown as uWS.us_socket),
        close: async () => {
          if (closed) return;
          closed = true;
          uWS.us_listen_socket_close(ls);
        },
      });
    });
  });
}

function finish(x: Exchange, result: S3Result, aborted: boolean): void {
  disarm(x);
  result.onDone?.({ bytesIn: x.bytesIn, bytesOut: x.bytesOut, aborted });
}

/** Writes a result. A request body still unread when we answer makes us close the connection. */
function send(x: Exchange, result: S3Result, isHead: boolean, idleMs: number, reqBody: Readable): void {
  const src = result.body;
  if (x.aborted) {
    if (src instanceof Readable) src.destroy();
    finish(x, result, true);
    return;
  }
  const closeAfter = !x.bodyComplete;
  if (!x.bodyComplete) reqBody.destroy();
  const noBody = isHead || result.status === 204 || result.status === 304;
  if (noBody || !(src instanceof Readable)) {
    if (src instanceof Readable) src.destroy();
    const fixed = src instanceof Readable ? undefined : src;
    x.res.cork(() => {
      writeHead(x.res, result);
      if (noBody) {
        const len = result.status === 204 || result.status === 304 ? undefined : result.bodyLength ?? bufferLength(fixed);
        // This uWS build closes the connection after endWithoutBody(length), and an explicit `undefined`
        // length reaches it as a huge number: a kept-alive HEAD writes its Content-Length itself and ends
        // without arguments.
        if (closeAfter) {
          if (len !== undefined) x.res.endWithoutBody(len, true);
          else x.res.end('', true);
        } else {
          if (len !== undefined) x.res.writeHeader('Content-Length', String(len));
          x.res.endWithoutBody();
        }
      } else {
        const buf = fixed ?? '';
        x.bytesOut += bufferLength(buf);
        x.res.end(buf, closeAfter);
      }
    });
    x.ended = true;
    finish(x, result, false);
    return;
  }
  streamBody(x, result, src, idleMs);
}

function bufferLength(b: Buffer | string | undefined): number {
  if (b === undefined) return 0;
  return typeof b === 'string' ? Buffer.byteLength(b) : b.length;
}

/** Streams a Readable of known length with tryEnd/onWritable backpressure. */
function streamBody(x: Exchange, result: S3Result, src: Readable, idleMs: number): void {
  const total = result.bodyLength;
  if (total === undefined) throw new Error('a streamed body needs bodyLength');
  const res = x.res;
  let pending: { chunk: Buffer; offset: number } | undefined;
  let done = false;
  let srcEnded = false;
  const stop = (abortedNow: boolean): void => {
    if (done) return;
    done = true;
    src.removeAllListeners('data');
    if (abortedNow || srcEnded) src.destroy();
    // Every byte was sent but the source has not emitted 'end' yet (a backend HTTP response): let it reach
    // its end instead of destroying it, so the backend's keep-alive socket goes back to the pool.
    else src.once('error', () => {}).resume();
    finish(x, result, abortedNow);
  };
  const cut = (): void => {
    // The body cannot be completed: closing the connection tells the client it is truncated.
    if (!x.aborted && !x.ended) {
      x.aborted = true;
      res.close();
    }
    stop(true);
  };
  x.onAbort.push(() => stop(true));
  res.cork(() => writeHead(res, result));
  if (total === 0) {
    res.cork(() => res.end());
    x.ended = true;
    stop(false);
    return;
  }
  const touch = (): void => arm(x, idleMs, cut);
  touch();
  const attempt = (chunk: Buffer): void => {
    let ok = false;
    let responded = false;
    const offset = res.getWriteOffset();
    res.cork(() => {
      [ok, responded] = res.tryEnd(chunk, total);
    });
    if (responded) {
      x.bytesOut = total;
      x.ended = true;
      stop(false);
    } else if (!ok) {
      pending = { chunk, offset };
      src.pause();
    } else {
      x.bytesOut += chunk.length;
    }
  };
  res.onWritable((offset) => {
    if (!pending || x.ended || x.aborted) return true;
    touch();
    const { chunk, offset: start } = pending;
    let ok = false;
    let responded = false;
    [ok, responded] = res.tryEnd(chunk.subarray(offset - start), total);
    if (responded) {
      x.bytesOut = total;
      x.ended = true;
      pending = undefined;
      stop(false);
    } else if (ok) {
      x.bytesOut += chunk.length;
      pending = undefined;
      if (srcEnded) cut();
      else src.resume();
    }
    return ok;
  });
  src.on('data', (chunk: Buffer) => {
    if (done || x.aborted || x.ended) return;
    touch();
    const sent = res.getWriteOffset();
    if (sent + chunk.length > total) chunk = chunk.subarray(0, Math.max(0, total - sent));
    attempt(chunk);
  });
  src.on('end', () => {
    srcEnded = true;
    // A source shorter than bodyLength: nothing will complete the response.
    if (!done && !x.ended && !pending) cut();
  });
  src.on('error', () => cut());
}
