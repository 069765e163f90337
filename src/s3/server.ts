/**
 * The S3 data plane: the request pipeline ({@link createS3Handler}) served by the uWS adapter, plus the
 * in-flight tracking that a graceful shutdown needs ({@link S3Server.drain}).
 *
 * In-flight tracking lives here, around the handler, not in the adapter: a request is in flight from the
 * moment the handler is called until its response is finished (the result's `onDone`, which the adapter
 * calls exactly once, whether the response completed or the client went away) or the handler rejected.
 * Aborting a request at shutdown uses the same paths as a client that goes away: the request body is
 * destroyed (so a write in progress fails, and the write path aborts it and releases its reservation at
 * once), and a response still streaming has its source destroyed (the adapter then closes the connection).
 */
import { formatHostPort, listenError, probeListen } from '../listen.js';
import { S3Error } from './errors.js';
import { createS3Handler, type S3Deps } from './request.js';
import { errorResult, newRequestId, type S3Result } from './result.js';
import { startUws, type HttpHandler, type HttpRequestIn } from './uws-adapter.js';

export type { S3Deps } from './request.js';

/** What {@link S3Server.drain} did. */
export interface DrainOutcome {
  /** Requests that were in flight when the drain started. */
  inFlightAtStart: number;
  /** Requests aborted because the deadline passed (their writes were aborted through the normal path). */
  aborted: number;
  /** Requests still not settled after the abort grace period (their handlers ignored the abort). */
  unsettled: number;
}

/** A running S3 server. */
export interface S3Server {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Requests whose response is not finished yet. */
  readonly inFlight: number;
  /**
   * Graceful stop: closes the listening socket, answers requests that still arrive on open keep-alive
   * connections with 503 ServiceUnavailable, lets requests in flight finish for up to `deadlineMs`, then
   * aborts the rest and waits up to `graceMs` for their handlers to settle (abort their writes).
   * Idempotent: a second call returns the first call's promise, and a call with `deadlineMs` 0 while a
   * drain waits cuts its wait short.
   */
  drain(deadlineMs: number, graceMs?: number): Promise<DrainOutcome>;
  /** Stops accepting connections (no drain). */
  close(): Promise<void>;
}

/** One request in flight. */
interface Flight {
  req: HttpRequestIn;
  result?: S3Result;
  /** Aborted by the shutdown. */
  aborted: boolean;
}

/** The error that a request aborted by the shutdown fails with (and that its client is answered with). */
function shuttingDown(): S3Error {
  return new S3Error('ServiceUnavailable', 'The server is shutting down; retry the request.');
}

/** Tracks requests from handler call to finished response; aborts them on demand. */
class InFlight {
  readonly #flights = new Set<Flight>();
  #idle: (() => void)[] = [];
  draining = false;

  get size(): number {
    return this.#flights.size;
  }

  wrap(inner: HttpHandler): HttpHandler {
    return async (req) => {
      if (this.draining) {
        // A request on a kept-alive connection after the listener closed: a retryable answer, no work.
        return errorResult(shuttingDown(), newRequestId(), req.rawPath, req.method === 'HEAD');
      }
      const f: Flight = { req, aborted: false };
      this.#flights.add(f);
      let result: S3Result;
      try {
        result = await inner(req);
      } catch (err) {
        this.#end(f);
        throw err;
      }
      if (f.aborted && result.status >= 400) {
        // The failure is ours (the shutdown), not the client's: tell it to retry elsewhere or later.
        destroyBody(result);
        const requestId = result.headers['x-amz-request-id'] ?? newRequestId();
        const replaced = errorResult(shuttingDown(), requestId, req.rawPath, req.method === 'HEAD');
        for (const [k, v] of Object.entries(result.headers)) {
          if (/^(x-amz-request-id|x-amz-id-2|server|access-control-.*)$/i.test(k)) replaced.headers[k] = v;
        }
        result = { ...replaced, ...(result.onDone ? { onDone: result.onDone } : {}) };
      }
      f.result = result;
      const onDone = result.onDone;
      result.onDone = (outcome) => {
        this.#end(f);
        onDone?.(outcome);
      };
      if (f.aborted) destroyBody(result);
      return result;
    };
  }

  #end(f: Flight): void {
    if (!this.#flights.delete(f)) return;
    if (this.#flights.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#flights.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Aborts every request in flight; returns how many. */
  abortAll(): number {
    let n = 0;
    for (const f of this.#flights) {
      if (f.aborted) continue;
      f.aborted = true;
      n++;
      if (!f.req.body.destroyed && !f.req.body.readableEnded) f.req.body.destroy(shuttingDown());
      if (f.result) destroyBody(f.result);
    }
    return n;
  }
}

function destroyBody(result: S3Result): void {
  const body = result.body as { destroy?: (err?: Error) => void; destroyed?: boolean } | undefined;
  if (body && typeof body.destroy === 'function' && !body.destroyed) body.destroy(shuttingDown());
}

/** Resolves after `ms`, or when `cut` is called; the timer never keeps the process alive. */
function waitUpTo(ms: number): { promise: Promise<void>; cut: () => void } {
  let cut = () => {};
  const promise = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    cut = () => {
      clearTimeout(t);
      resolve();
    };
  });
  return { promise, cut };
}

/**
 * Starts the S3 server on config.host/config.port (0 = a free port). The port is bound exclusively: a port
 * in use fails the start with a message saying why.
 */
export async function startS3Server(deps: S3Deps): Promise<S3Server> {
  const { host, port } = deps.config;
  const flights = new InFlight();
  let server;
  try {
    server = await startUws(flights.wrap(createS3Handler(deps)), {
      host,
      port,
      idleTimeoutMs: deps.config.idleTimeoutMs,
      idleError: () => new S3Error('RequestTimeout'),
    });
  } catch (err) {
    // uWS says only that it failed: a probe with Node's net learns why (in use, permission, address).
    await probeListen('server.s3.listen', host, port);
    throw listenError('server.s3.listen', host, port, err);
  }
  deps.log.info('s3 server listening', { host, port: server.port, address: formatHostPort(host, server.port) });
  let draining: Promise<DrainOutcome> | undefined;
  let hurry = () => {};
  let hurried = false;
  const uws = server;
  return {
    port: uws.port,
    get inFlight() {
      return flights.size;
    },
    close: () => uws.close(),
    drain(deadlineMs, graceMs = 5_000) {
      if (draining) {
        if (deadlineMs === 0) hurry();
        return draining;
      }
      draining = (async () => {
        flights.draining = true;
        await uws.close();
        const inFlightAtStart = flights.size;
        const wait = waitUpTo(deadlineMs);
        hurry = () => {
          hurried = true;
          wait.cut();
        };
        await Promise.race([flights.idle(), wait.promise]);
        wait.cut();
        const aborted = flights.abortAll();
        if (aborted > 0) {
          const why = hurried ? 'stop was hurried (second signal)' : `the shutdown deadline (${deadlineMs} ms) passed`;
          deps.log.warn(`aborting requests still in flight: ${why}`, { aborted, deadlineMs });
          const grace = waitUpTo(graceMs);
          await Promise.race([flights.idle(), grace.promise]);
          grace.cut();
        }
        return { inFlightAtStart, aborted, unsettled: flights.size };
      })();
      return draining;
    },
  };
}
