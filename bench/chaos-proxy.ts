/**
 * A TCP proxy in front of a backend that can turn into a black hole: while it is one, it accepts
 * connections and reads what they send but never answers, and connections already open stop carrying
 * anything in either direction — a provider that hangs, or a network path that silently drops. Restoring
 * it resets the connections it held (as a middlebox timing them out would) and passes traffic again.
 */
import net from 'node:net';

export interface BlackholeProxy {
  endpoint: string;
  port: number;
  readonly holding: boolean;
  blackhole(): void;
  /** Resets every held connection and passes traffic again. Returns how many were held. */
  restore(): number;
  close(): Promise<void>;
}

interface Conn {
  client: net.Socket;
  upstream?: net.Socket;
  held: boolean;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  let holding = false;
  const conns = new Set<Conn>();
  const server = net.createServer((client) => {
    const c: Conn = { client, held: holding };
    conns.add(c);
    const drop = () => {
      conns.delete(c);
      client.destroy();
      c.upstream?.destroy();
    };
    client.on('error', drop).on('close', drop);
    client.on('data', (d: Buffer) => {
      if (c.held) return; // swallowed
      c.upstream!.write(d);
    });
    if (c.held) return;
    const up = net.connect(target.port, target.host);
    c.upstream = up;
    up.on('data', (d: Buffer) => {
      if (!c.held) client.write(d);
    });
    up.on('error', drop).on('close', () => {
      if (!c.held) drop();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    get holding() {
      return holding;
    },
    blackhole() {
      holding = true;
      for (const c of conns) c.held = true;
    },
    restore() {
      holding = false;
      let n = 0;
      for (const c of [...conns]) {
        if (!c.held) continue;
        n++;
        c.client.resetAndDestroy();
        c.upstream?.destroy();
        conns.delete(c);
      }
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) {
          c.client.destroy();
          c.upstream?.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
