/**
 * Black-holed providers for timeout tests, on loopback:
 *
 * - {@link startBlackHole}: a TCP server that accepts connections and never answers nor reads (a hung
 *   provider: the connection is up, the request goes nowhere). It counts connections, so a test can tell
 *   one attempt from the SDK's retries.
 * - {@link startFullBacklog}: a listening socket that never accepts, its accept queue filled, so the next
 *   connection attempt is never completed (a provider that drops SYNs). A python3 child holds it, since
 *   Node accepts every connection by itself.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

export interface BlackHole {
  endpoint: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Starts answering every request with 503 (the provider came back, unhappy) — or stays silent. */
  setMode(mode: 'silent' | 'answer-503'): void;
  stop(): Promise<void>;
}

export async function startBlackHole(): Promise<BlackHole> {
  let connections = 0;
  let mode: 'silent' | 'answer-503' = 'silent';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (mode === 'silent') {
      s.pause();
      return;
    }
    s.once('data', () => s.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get connections() {
      return connections;
    },
    setMode(m) {
      mode = m;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface FullBacklog {
  endpoint: string;
  stop(): Promise<void>;
}

/** See the module comment; rejects when python3 is missing (tests skip then). */
export async function startFullBacklog(): Promise<FullBacklog> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", s.getsockname()[1]))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print("full", flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 exited with ${code}`)));
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      if (lines.includes('full')) resolve();
    });
  });
  child.removeAllListeners('exit');
  return {
    endpoint: `http://127.0.0.1:${lines[0]}`,
    stop: async () => {
      child.stdin.end();
      child.kill();
    },
  };
}

/** A TCP proxy to a real provider that can turn into a black hole and back (see {@link startSwitchableProxy}). */
export interface SwitchableProxy {
  endpoint: string;
  /** `forward`: pass bytes both ways; `silent`: accept and never answer (connections open before are cut). */
  setMode(mode: 'forward' | 'silent'): void;
  /** Connections accepted while silent. */
  readonly silentConnections: number;
  stop(): Promise<void>;
}

/** A proxy on loopback in front of `targetPort` (forwarding at first). */
export async function startSwitchableProxy(targetPort: number): Promise<SwitchableProxy> {
  let mode: 'forward' | 'silent' = 'forward';
  let silentConnections = 0;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = net.createServer((client) => {
    track(client);
    if (mode === 'silent') {
      silentConnections++;
      client.pause();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get silentConnections() {
      return silentConnections;
    },
    setMode(m) {
      mode = m;
      // Keep-alive connections made while forwarding would otherwise still reach the provider.
      if (m === 'silent') for (const s of sockets) s.destroy();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
