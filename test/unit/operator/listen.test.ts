/**
 * Listener pre-flight (src/listen.ts) and the S3 listener's exclusive bind (src/s3/server.ts over the uWS
 * adapter), with real sockets: a port held by a Node listener, and two S3 servers on one port.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { ListenError, probeListen } from '../../../src/listen.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { startS3Server, type S3Deps, type S3Server } from '../../../src/s3/server.js';

function hold(host = '127.0.0.1'): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => resolve(s));
  });
}

const port = (s: net.Server) => (s.address() as net.AddressInfo).port;

/** The S3 server's dependencies; no request reaches a handler in these tests. */
function deps(listenPort: number): S3Deps {
  return {
    store: {} as S3Deps['store'],
    multipart: {} as S3Deps['multipart'],
    tenants: {} as S3Deps['tenants'],
    config: { host: '127.0.0.1', port: listenPort, region: 'us-east-1', virtualHostDomains: [], idleTimeoutMs: 60_000 },
    metrics: createMetrics(),
    log: createLogger({}, 'error'),
  };
}

describe('listeners', () => {
  const servers: S3Server[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('probe_of_a_port_in_use_says_so_and_names_the_key', async () => {
    const held = await hold();
    try {
      const err = await probeListen('server.s3.listen', '127.0.0.1', port(held)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ListenError, String(err));
      assert.equal(err.code, 'EADDRINUSE');
      assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port(held)} \\(server\\.s3\\.listen\\): port ${port(held)} is already in use`));
    } finally {
      held.close();
    }
  });

  it('probe_of_an_address_not_on_this_machine_says_so', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
    const err = (await probeListen('server.admin.listen', '192.0.2.1', 0).catch((e: unknown) => e)) as ListenError;
    assert.equal(err.code, 'EADDRNOTAVAIL');
    assert.match(err.message, /192\.0\.2\.1:0 \(server\.admin\.listen\): the address is not one of this machine's addresses/);
  });

  it('probe_of_a_free_port_resolves_and_releases_it', async () => {
    const held = await hold();
    const p = port(held);
    await new Promise<void>((r) => held.close(() => r()));
    await probeListen('server.s3.listen', '127.0.0.1', p);
    const again = await hold();
    again.close();
  });

  it('a_second_S3_server_on_the_same_port_fails_instead_of_sharing_it', async () => {
    // A fixed port (as in a configuration): uWS only shares ports that were bound by number.
    const free = await hold();
    const fixed = port(free);
    await new Promise<void>((r) => free.close(() => r()));
    const first = await startS3Server(deps(fixed));
    servers.push(first);
    const err = await startS3Server(deps(first.port)).then(
      (s) => {
        servers.push(s);
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof ListenError, 'the second bind must fail (uWS would otherwise share the port)');
    assert.match(err.message, /already in use/);
  });

  it('an_S3_server_cannot_bind_over_a_node_listener', async () => {
    const held = await hold();
    try {
      const err = await startS3Server(deps(port(held))).catch((e: unknown) => e);
      assert.ok(err instanceof ListenError);
      assert.equal(err.code, 'EADDRINUSE');
    } finally {
      held.close();
    }
  });
});
