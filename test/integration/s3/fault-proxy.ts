/**
 * A TCP proxy in front of a real backend (s3rver) that breaks the responses to object GETs in chosen ways,
 * so that tests can see what the orchestrator's clients get when a provider misbehaves between its response
 * headers and its body:
 *
 * - `stall`: forwards the response headers and withholds the body (a stalled provider);
 * - `close-after-headers`: forwards the headers, then closes both connections;
 * - `kill-after-headers`: forwards the headers, then runs `onKill` (the test SIGKILLs the backend) and closes;
 * - `close-mid-body`: forwards the headers and the first `bodyBytes` bytes of the body, then closes;
 * - `strip-range`: removes the Range header from object GETs (a provider that ignores ranges).
 *
 * Only object GETs (no query string, or the SDK's `x-id=GetObject`) are broken; HEADs, PUTs and listings pass. Connections are
 * not pipelined by the SDK, so the bytes that follow a GET request on a connection are its response.
 */
import net from 'node:net';

export type Fault = 'pass' | 'stall' | 'close-after-headers' | 'kill-after-headers' | 'close-mid-body' | 'strip-range';

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** Applies `fault` to every object GET from now on. */
  set(fault: Fault, opts?: { bodyBytes?: number }): void;
  /** How many GET responses were broken so far. */
  readonly broken: number;
  close(): Promise<void>;
}

/** Starts a proxy to `target` on a free loopback port. */
export async function startFaultProxy(target: { host: string; port: number }, onKill?: () => Promise<void>): Promise<FaultProxy> {
  let fault: Fault = 'pass';
  let bodyBytes = 0;
  let broken = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let mode: Fault = 'pass';
    let head: Buffer | undefined;
    let forwardedBody = 0;
    /** A stalled response: the client connection stays open whatever the backend does. */
    let stalled = false;
    const closeBoth = (): void => {
      client.end();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      const line = d.subarray(0, Math.min(d.length, 2048)).toString('latin1');
      const m = /^([A-Z]+) (\S+) HTTP\//.exec(line);
      if (m) {
        const target = m[2]!;
        mode = m[1] === 'GET' && (!target.includes('?') || /[?&]x-id=GetObject(&|$)/.test(target)) ? fault : 'pass';
        if (mode === 'strip-range') {
          broken++;
          mode = 'pass';
          d = Buffer.from(d.toString('latin1').replace(/\r\nrange:[^\r]*/i, ''), 'latin1');
        }
        head = mode === 'pass' ? undefined : Buffer.alloc(0);
        forwardedBody = 0;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (mode === 'pass' || head === undefined) {
        if (mode === 'pass') client.write(d);
        else if (mode === 'close-mid-body') {
          const n = Math.max(0, Math.min(d.length, bodyBytes - forwardedBody));
          forwardedBody += n;
          if (n > 0) client.write(d.subarray(0, n));
          if (forwardedBody >= bodyBytes) closeBoth();
        }
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      broken++;
      client.write(head.subarray(0, end + 4));
      const rest = head.subarray(end + 4);
      head = undefined;
      switch (mode) {
        case 'stall':
          // Withhold everything from now on; the connection stays open until the orchestrator closes it.
          stalled = true;
          upstream.pause();
          return;
        case 'close-after-headers':
          closeBoth();
          return;
        case 'kill-after-headers':
          upstream.pause();
          void (onKill ?? (async () => {}))().finally(closeBoth);
          return;
        case 'close-mid-body': {
          const n = Math.min(rest.length, bodyBytes);
          forwardedBody = n;
          if (n > 0) client.write(rest.subarray(0, n));
          if (forwardedBody >= bodyBytes) closeBoth();
          return;
        }
      }
    });
    const drop = (): void => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop).on('error', drop);
    upstream.on('close', () => {
      if (!stalled) client.end();
    });
    upstream.on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    set(f, opts = {}) {
      fault = f;
      bodyBytes = opts.bodyBytes ?? 0;
    },
    get broken() {
      return broken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
