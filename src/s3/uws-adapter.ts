/**
 * The only file that touches uWebSockets.js. It turns a uWS request into {@link HttpRequestIn} (head
 * read synchronously, body as a Readable with real backpressure, an AbortSignal for client aborts) and
 * writes an {@link S3Result} back: buffered bodies with end(), streams with tryEnd()/onWritable()
 * backpressure. Every write to `res` is corked; nothing touches `res` after it ended or was aborted, and no
 * failure on any path (client abort, idle timeout, a failing source, a throwing handler) escapes as an
 * unhandled error: the worst outcome is a closed connection.
 *
 * Framing: a response's header block never goes out without its framing. A buffered body is written with
 * its status line, headers, Content-Length and the blank line in one cork. A streamed body waits for its
 * first chunk, then writes status line, headers, Content-Length, blank line and that chunk in one cork; a
 * source that fails or ends before its first chunk is answered with the result's `fallback` (a clean error
 * response) instead, and one that fails later is cut: the connection closes before Content-Length bytes
 * were sent, which every client detects as a truncated body.
 *
 * Timeouts: this uWS build has its own fixed 10 s timer (a request body slower than 16 KiB/s, a response
 * the client does not read) that JS cannot configure. Pausing and resuming a response re-arms it, so a
 * ticker does that for every exchange in progress, and the configured idle timeout is the one that applies.
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
  /** onDone was reported. */
  finished: boolean;
  bodyComplete: boolean;
  /** The socket is paused because the body's consumer lags (uWS's own timer is off meanwhile). */
  paused: boolean;
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

/**
 * Exchanges in progress. uWS closes a socket on its own 10 s timer (4 s granularity) when a request body
 * arrives slower than 16 KiB/s or a response waits for the client; pause()+resume() re-arms that timer, and
 * a paused socket has none. Re-arming every exchange every 2 s leaves the configured idle timeout in charge.
 */
const inProgress = new Set<Exchange>();
const UWS_REARM_MS = 2_000;
let ticker: NodeJS.Timeout | undefined;

function track(x: Exchange): void {
  inProgress.add(x);
  if (!ticker) {
    ticker = setInterval(rearmAll, UWS_REARM_MS);
    ticker.unref();
  }
}

function untrack(x: Exchange): void {
  inProgress.delete(x);
  if (inProgress.size === 0 && ticker) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

function rearmAll(): void {
  for (const x of inProgress) {
    if (x.aborted || x.ended) untrack(x);
    else if (!x.paused) {
      try {
        x.res.pause();
        x.res.resume();
      } catch {
        // The response died between the checks and the call (cannot happen on one thread, but never throw here).
        untrack(x);
      }
    }
  }
}

/** The body Readable: uWS pushes chunks in; when the consumer lags we pause the socket. */
class UwsBody extends Readable {
  constructor(private readonly x: Exchange, private readonly onResume: () => void) {
    super({ highWaterMark: 1024 * 1024 });
    // Destroying the body (client abort, idle timeout, an answer before the body was read) must never be an
    // unhandled 'error' event that kills the process; consumers attach their own listeners.
    this.on('error', () => {});
  }
  override _read(): void {
    if (this.x.paused && !this.x.aborted && !this.x.ended) {
      this.x.paused = false;
      this.x.res.resume();
      this.onResume();
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

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT listen option. */
const LISTEN_EXCLUSIVE_PORT = 1;

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
    const x: Exchange = {
      res,
      aborted: false,
      ended: false,
      finished: false,
      bodyComplete: false,
      paused: false,
      bytesIn: 0,
      bytesOut: 0,
      onAbort: [],
    };
    // The request timer runs while we wait for the client's bytes, not while we hold the socket paused.
    const idle = (): void => {
      body.destroy(opts.idleError?.() ?? new Error('request body idle timeout'));
    };
    const body = new UwsBody(x, () => {
      if (!x.bodyComplete) arm(x, opts.idleTimeoutMs, idle);
    });
    track(x);
    res.onAborted(() => {
      untrack(x);
      if (x.ended) return;
      x.aborted = true;
      disarm(x);
      controller.abort(abortError());
      if (!x.bodyComplete) body.destroy(abortError());
      for (const f of x.onAbort) f();
    });
    arm(x, opts.idleTimeoutMs, idle);
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
          x.paused = true;
          disarm(x);
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
    let pending: Promise<S3Result>;
    try {
      pending = handler(request);
    } catch (err) {
      pending = Promise.reject(err);
    }
    const isHead = method === 'HEAD';
    pending.then(
      (result) => respond(x, result, isHead, opts.idleTimeoutMs, body),
      () => respond(x, { status: 500, headers: {} }, isHead, opts.idleTimeoutMs, body),
    );
  });
  return new Promise((resolve, reject) => {
    // Exclusive (no SO_REUSEPORT): a second instance must fail to bind, not silently share the port. The
    // typings lack the (host, port, options, cb) overload that the native build has; 1 = LIBUS_LISTEN_EXCLUSIVE_PORT.
    const listen = app.listen.bind(app) as unknown as (h: string, p: number, o: number, cb: (ls: uWS.us_listen_socket | false) => void) => void;
    listen(opts.host, opts.port, LISTEN_EXCLUSIVE_PORT, (ls) => {
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

function finish(x: Exchange, result: S3Result, aborted: boolean, status = result.status): void {
  disarm(x);
  untrack(x);
  if (x.finished) return;
  x.finished = true;
  result.onDone?.({ status, bytesIn: x.bytesIn, bytesOut: x.bytesOut, aborted });
}

/** Closes the connection (the client sees a truncated or missing response); idempotent. */
function kill(x: Exchange): void {
  if (x.aborted || x.ended) return;
  x.aborted = true;
  try {
    x.res.close();
  } catch {
    // Already gone.
  }
}

/** Writes a result; anything that throws on the way closes the connection instead of escaping. */
function respond(x: Exchange, result: S3Result, isHead: boolean, idleMs: number, reqBody: Readable): void {
  try {
    send(x, result, isHead, idleMs, reqBody);
  } catch {
    if (result.body instanceof Readable) result.body.destroy();
    kill(x);
    finish(x, result, true);
  }
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
  if (x.paused) {
    // A socket paused for the body's consumer would never flush the answer; the unread rest is discarded.
    x.paused = false;
    x.res.resume();
  }
  const noBody = isHead || result.status === 204 || result.status === 304;
  if (noBody || !(src instanceof Readable)) {
    if (src instanceof Readable) src.destroy();
    writeWhole(x, result, noBody, closeAfter);
    return;
  }
  streamBody(x, result, src, idleMs);
}

/**
 * Writes a response whose body (if any) is in hand: status line, headers, Content-Length, the blank line
 * and the body in one cork.
 */
function writeWhole(x: Exchange, result: S3Result, noBody: boolean, closeAfter: boolean, status = result.status): void {
  const fixed = result.body instanceof Readable ? undefined : result.body;
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
  finish(x, result, false, status);
}

function bufferLength(b: Buffer | string | undefined): number {
  if (b === undefined) return 0;
  return typeof b === 'string' ? Buffer.byteLength(b) : b.length;
}

/** The error a source that makes no progress before its first byte fails with. */
function sourceIdle(ms: number): Error {
  return new Error(`the response body produced no byte within ${ms} ms`);
}

/**
 * Streams a Readable of known length with tryEnd/onWritable backpressure. Nothing is written before the
 * source's first chunk: that chunk goes out in the same cork as the status line, the headers and the
 * Content-Length, so the header block is never seen without its framing. A source that fails (or stays
 * idle, or ends) before that chunk gets the result's fallback response; after it, the connection is cut.
 */
function streamBody(x: Exchange, result: S3Result, src: Readable, idleMs: number): void {
  const total = result.bodyLength;
  if (total === undefined) throw new Error('a streamed body needs bodyLength');
  if (total === 0) {
    src.destroy();
    writeWhole(x, { ...result, body: '' }, false, false);
    return;
  }
  const res = x.res;
  let pending: { chunk: Buffer; offset: number } | undefined;
  let started = false;
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
    kill(x);
    stop(true);
  };
  /** The source failed before anything was written: answer with a clean error instead. */
  const fail = (err: unknown): void => {
    if (started) return cut();
    if (done) return;
    done = true;
    src.removeAllListeners('data');
    src.destroy();
    if (x.aborted || x.ended) return finish(x, result, true);
    const alt = result.fallback?.(err) ?? { status: 500, headers: {} };
    try {
      writeWhole(x, { ...alt, ...(result.onDone ? { onDone: result.onDone } : {}) }, false, false);
    } catch {
      kill(x);
      finish(x, result, true);
    }
  };
  x.onAbort.push(() => stop(true));
  const touch = (): void => arm(x, idleMs, () => (started ? cut() : fail(sourceIdle(idleMs))));
  touch();
  const settle = (ok: boolean, responded: boolean, chunk: Buffer, offset: number): void => {
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
  const attempt = (chunk: Buffer): void => {
    let ok = false;
    let responded = false;
    const first = !started;
    started = true;
    const offset = first ? 0 : res.getWriteOffset();
    res.cork(() => {
      if (first) writeHead(res, result);
      [ok, responded] = res.tryEnd(chunk, total);
    });
    settle(ok, responded, chunk, offset);
  };
  res.onWritable((offset) => {
    if (!pending || x.ended || x.aborted) return true;
    try {
      touch();
      const { chunk, offset: start } = pending;
      const [ok, responded] = res.tryEnd(chunk.subarray(offset - start), total);
      if (responded) {
        pending = undefined;
        settle(true, true, chunk, start);
      } else if (ok) {
        x.bytesOut += chunk.length;
        pending = undefined;
        if (srcEnded) cut();
        else src.resume();
      }
      return ok;
    } catch {
      cut();
      return true;
    }
  });
  src.on('data', (chunk: Buffer) => {
    if (done || x.aborted || x.ended || (!started && chunk.length === 0)) return;
    try {
      touch();
      const sent = started ? res.getWriteOffset() : 0;
      if (sent + chunk.length > total) chunk = chunk.subarray(0, Math.max(0, total - sent));
      attempt(chunk);
    } catch {
      cut();
    }
  });
  src.on('end', () => {
    srcEnded = true;
    // A source shorter than bodyLength: nothing will complete the response.
    if (!done && !x.ended && !pending) fail(new Error(`the response body ended before ${total} bytes`));
  });
  src.on('error', (err) => fail(err));
}
