/**
 * Graceful stop (SIGTERM → Orchestrator.stop): the S3 listener stops accepting, an upload in flight
 * finishes and is committed, one still running at the deadline is aborted through the normal write-abort
 * path (its reservation released at once, nothing left pending), and only then does the database close.
 * Before the fix the database closed under in-flight uploads: they failed with 500 InternalError and
 * kept their reservations until the stale-write timeout.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { openDatabase } from '../../../src/meta/open.js';
import { patternBytes, signRequest } from '../s3/helpers.js';
import { eventually, startFixture, type OperatorFixture } from './fixture.js';

/** A PUT whose body the test writes piece by piece; `response` settles when the server answers or the socket dies. */
interface SlowPut {
  write(b: Buffer): void;
  end(b?: Buffer): void;
  response: Promise<{ status: number; text: string } | { error: string }>;
}

async function slowPut(endpoint: string, key: string, size: number): Promise<SlowPut> {
  const url = new URL(endpoint);
  const path = `/data/${key}`;
  const headers = await signRequest(endpoint, { method: 'PUT', path, payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(size) } });
  const req = http.request({ host: url.hostname, port: url.port, method: 'PUT', path, headers, agent: false });
  const response = new Promise<{ status: number; text: string } | { error: string }>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
  });
  req.flushHeaders();
  return { write: (b) => void req.write(b), end: (b) => void req.end(b), response };
}

async function reserved(f: OperatorFixture): Promise<number> {
  const { rows } = await f.orch.db.query<{ n: string }>(`SELECT coalesce(sum(reserved_bytes), 0)::text AS n FROM backends`);
  return Number(rows[0]!.n);
}

/** Whether a new TCP connection to the S3 port is refused (the listener closed). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** After stop(): the database as the next start would find it. */
async function afterStop(f: OperatorFixture): Promise<{ reserved: number; pending: number; live: string[] }> {
  const { db } = await openDatabase(f.config.database);
  try {
    const r = await db.query<{ n: string }>(`SELECT coalesce(sum(reserved_bytes), 0)::text AS n FROM backends`);
    const p = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM object_versions WHERE state <> 'live'`);
    const l = await db.query<{ key: string }>(`SELECT key FROM object_versions WHERE state = 'live' ORDER BY key`);
    return { reserved: Number(r.rows[0]!.n), pending: Number(p.rows[0]!.n), live: l.rows.map((x) => x.key) };
  } finally {
    await db.close();
  }
}

const SIZE = 64 * 1024;
const fsOnly = (dir: string) => [{ type: 'fs' as const, name: 'fs-1', path: `${dir}/fs-1`, quotaBytes: 0 }];

describe('graceful shutdown', () => {
  const fixtures: OperatorFixture[] = [];
  after(async () => {
    for (const f of fixtures) await f.close();
  });

  it('Stop_lets_an_upload_in_flight_finish_and_aborts_the_late_one_releasing_its_reservation', async () => {
    const f = await startFixture(fsOnly, { shutdownTimeoutMs: 120_000 });
    fixtures.push(f);
    const body = patternBytes(SIZE, 7);
    const finishes = await slowPut(f.endpoint, 'finishes', SIZE);
    finishes.write(body.subarray(0, SIZE / 2));
    await eventually('the first upload holds its reservation', async () => (await reserved(f)) === SIZE);
    const late = await slowPut(f.endpoint, 'late', SIZE);
    late.write(body.subarray(0, SIZE / 4));
    await eventually('both uploads hold their reservations', async () => (await reserved(f)) === 2 * SIZE);

    const stopped = f.orch.stop();
    await eventually('the S3 listener stops accepting', () => refused(f.orch.s3Port));
    finishes.end(body.subarray(SIZE / 2));
    const ok = await finishes.response;
    assert.deepEqual('status' in ok ? ok.status : ok, 200, `the upload in flight completes: ${JSON.stringify(ok)}`);

    // The deadline (cut short, as a second SIGTERM does) aborts the upload that is still running.
    void f.orch.stop({ deadlineMs: 0 });
    await stopped;
    const res = await late.response;
    assert.ok(!('status' in res) || res.status === 503, `the late upload is refused or cut, never acknowledged: ${JSON.stringify(res)}`);
    if ('status' in res) assert.match(res.text, /<Code>ServiceUnavailable<\/Code>/);

    const state = await afterStop(f);
    assert.equal(state.reserved, 0, 'no reservation is left for the stale-write janitor');
    assert.equal(state.pending, 0, 'no pending version is left');
    assert.deepEqual(state.live, ['finishes']);
    assert.ok(f.log.some((l) => /^info stopped .*"inFlightAtStart":2,"aborted":1,"unsettled":0/.test(l)), f.log.join('\n'));
  });

  it('Stop_aborts_uploads_still_running_at_the_configured_deadline', async () => {
    const f = await startFixture(fsOnly, { shutdownTimeoutMs: 200 });
    fixtures.push(f);
    const late = await slowPut(f.endpoint, 'never-finished', SIZE);
    late.write(patternBytes(1024, 3));
    await eventually('the upload holds its reservation', async () => (await reserved(f)) === SIZE);
    await f.orch.stop();
    const res = await late.response;
    assert.ok(!('status' in res) || res.status === 503, JSON.stringify(res));
    const state = await afterStop(f);
    assert.deepEqual(state, { reserved: 0, pending: 0, live: [] });
    assert.ok(f.log.some((l) => /aborting requests still in flight: the shutdown deadline \(200 ms\) passed .*"aborted":1/.test(l)), f.log.join('\n'));
    // The database closed last: nothing failed because it was gone.
    assert.ok(!f.log.some((l) => /^error /.test(l)), f.log.filter((l) => l.startsWith('error')).join('\n'));
  });
});
