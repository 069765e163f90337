/**
 * Raw-socket exchanges with the orchestrator, for assertions about the bytes on the wire that no HTTP
 * client exposes: whether the header block was terminated, whether Content-Length came before any body
 * byte, whether the connection was closed short of the body, and what a request the SDKs would never send
 * (a 10^9-byte Content-Length, a body cut at a chosen point) gets back.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { signRequest, withQuery } from './helpers.js';

/** What came back on one connection. */
export interface WireResponse {
  /** Every byte received. */
  raw: Buffer;
  /** Offset of the blank line ending the header block (`\r\n\r\n`), or -1 when it never came. */
  headEnd: number;
  status?: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** The bytes after the header block. */
  body: Buffer;
  /** The server closed the connection (rather than us, after a complete response). */
  closedByServer: boolean;
  /** Nothing decided the exchange within the timeout. */
  timedOut: boolean;
  /** The socket error, if the exchange ended with one (a write into a connection the server reset). */
  error?: string;
}

function parse(raw: Buffer): Pick<WireResponse, 'headEnd' | 'status' | 'headers' | 'body'> {
  const headEnd = raw.indexOf('\r\n\r\n');
  const headText = raw.subarray(0, headEnd < 0 ? raw.length : headEnd).toString('latin1');
  const lines = headText.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  return {
    headEnd,
    ...(m ? { status: Number(m[1]) } : {}),
    headers,
    body: headEnd < 0 ? Buffer.alloc(0) : raw.subarray(headEnd + 4),
  };
}

/** Options of {@link wireExchange}. */
export interface WireOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Writes the request (default: `head` then `body`); gets the socket to write slowly or stop. When it
   * returns a promise, a complete response ends the exchange only once that promise resolved (a reset
   * before then is reported in `error`).
   */
  write?: (socket: net.Socket) => void | Promise<void>;
  /** Called once the response's header block is in (e.g. to stop reading, or to abort). */
  onHead?: (socket: net.Socket, res: WireResponse) => void;
}

/**
 * Sends `head` (+ `body`) on a fresh connection and collects the response until it is complete (per its
 * Content-Length), the server closes, or the timeout passes.
 */
export function wireExchange(port: number, head: string, body?: Buffer, opts: WireOptions = {}): Promise<WireResponse> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    let written: Promise<void> = Promise.resolve();
    let error: string | undefined;
    const finish = (closedByServer: boolean, timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ raw, ...parse(raw), closedByServer, timedOut, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false, true), opts.timeoutMs ?? 30_000);
    let total = 0;
    let parsed: ReturnType<typeof parse> | undefined;
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      if (!parsed) {
        // Parse until the header block is complete; after that only count (bodies may be large).
        const raw = Buffer.concat(chunks);
        const p = parse(raw);
        if (p.headEnd < 0) return;
        parsed = p;
        opts.onHead?.(socket, { raw, ...p, closedByServer: false, timedOut: false });
      }
      const cl = parsed.headers['content-length'];
      const noBody = parsed.status === 204 || parsed.status === 304 || head.startsWith('HEAD ');
      if (noBody || (cl !== undefined && total - parsed.headEnd - 4 >= Number(cl))) void written.then(() => finish(false, false));
    });
    socket.on('close', () => finish(true, false));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      finish(true, false);
    });
    socket.on('connect', () => {
      if (opts.write) written = Promise.resolve(opts.write(socket)).catch(() => {});
      else {
        socket.write(head);
        if (body) socket.write(body);
      }
    });
  });
}

/** A signed request head (SigV4 of the test credentials) for `method path?query`, ready for the wire. */
export async function signedHead(
  endpoint: string,
  req: { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer; payloadHash?: string },
): Promise<string> {
  const headers = await signRequest(endpoint, req);
  const lines = [`${req.method} ${withQuery(req.path, req.query)} HTTP/1.1`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * The framing every response must have: a terminated header block, and for a response with a body, a
 * Content-Length sent with the header block (so before any body byte).
 */
export function assertFramed(res: WireResponse, label: string): void {
  const shown = res.raw.subarray(0, Math.min(res.raw.length, 600)).toString('latin1');
  assert.ok(res.status !== undefined, `${label}: a status line (got ${JSON.stringify(shown)})`);
  assert.ok(res.headEnd >= 0, `${label}: the header block ends with a blank line (got ${JSON.stringify(shown)})`);
  if (res.status !== 204 && res.status !== 304) {
    assert.ok(res.headers['content-length'] !== undefined, `${label}: Content-Length in the header block (got ${JSON.stringify(shown)})`);
  }
}
