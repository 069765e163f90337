import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { AdminServer } from '../../../src/admin/server.js';
import { startFixture, type FixtureState } from './fixture.js';

interface Reply {
  status: number;
  type: string;
  body: string;
}

async function getH1(url: string): Promise<Reply> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** One GET over an h2c prior-knowledge session. */
function getH2(session: http2.ClientHttp2Session, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path });
    let status = 0;
    let type = '';
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
      type = String(h['content-type'] ?? '');
    });
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, type, body }));
    req.on('error', reject);
    req.end();
  });
}

let server: AdminServer;
let url: string;
let state: FixtureState;
let session: http2.ClientHttp2Session;

before(async () => {
  ({ server, url, state } = await startFixture());
  session = http2.connect(url);
});
after(async () => {
  session.destroy();
  await server.close();
});

const VERSIONS: Record<string, (path: string) => Promise<Reply>> = {
  'HTTP/1.1': (path) => getH1(url + path),
  'HTTP/2': (path) => getH2(session, path),
};

for (const [name, get] of Object.entries(VERSIONS)) {
  describe(name, () => {
    test('healthz_is_ok', async () => {
      const r = await get('/healthz');
      assert.equal(r.status, 200);
      assert.equal(r.body.trim(), 'ok');
    });

    test('readyz_follows_deps_ready', async () => {
      try {
        assert.equal((await get('/readyz')).status, 200);
        state.ready = false;
        const r = await get('/readyz');
        assert.equal(r.status, 503);
        assert.match(r.body, /not ready/);
        // The liveness probe does not depend on the database.
        assert.equal((await get('/healthz')).status, 200);
        state.ready = 'throw';
        assert.equal((await get('/readyz')).status, 503);
        state.ready = true;
        assert.equal((await get('/readyz')).status, 200);
      } finally {
        state.ready = true;
      }
    });

    test('metrics_serves_the_registry_in_prometheus_format', async () => {
      const r = await get('/metrics');
      assert.equal(r.status, 200);
      assert.match(r.type, /^text\/plain; version=0\.0\.4/);
      assert.match(r.body, /^# TYPE s3o_test_admin_total counter$/m);
      assert.match(r.body, /^s3o_test_admin_total 7$/m);
    });

    test('unknown_path_is_404', async () => {
      assert.equal((await get('/nope')).status, 404);
    });
  });
}

test('h2_preface_split_across_packets_is_still_http2', async () => {
  const sock = net.connect(server.port, '127.0.0.1');
  await once(sock, 'connect');
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  sock.write(preface.subarray(0, 5));
  // Gives the server a chance to read the first bytes alone; correctness does not depend on it.
  await delay(30);
  sock.write(Buffer.concat([preface.subarray(5), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
  const [first] = (await once(sock, 'data')) as [Buffer];
  // The server's first HTTP/2 frame is SETTINGS (type 4) on stream 0; an HTTP/1 server would answer "HTTP/1.1 400".
  assert.equal(first[3], 4);
  sock.destroy();
});

test('close_is_idempotent_and_drops_open_connections', async () => {
  const f = await startFixture();
  const s = http2.connect(f.url);
  assert.equal((await getH2(s, '/healthz')).status, 200);
  const h1 = net.connect(f.server.port, '127.0.0.1');
  await once(h1, 'connect');
  h1.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  await once(h1, 'data');
  const closed = Promise.all([once(s, 'close'), once(h1, 'close')]);
  const first = f.server.close();
  const second = f.server.close();
  assert.equal(first, second);
  await first;
  await closed;
  const probe = net.connect(f.server.port, '127.0.0.1');
  const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});
