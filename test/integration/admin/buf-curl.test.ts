import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { AdminServer } from '../../../src/admin/server.js';
import { TOKEN, startFixture } from './fixture.js';

/** The buf CLI from node_modules: a gRPC/Connect client that discovers the schema by server reflection. */
const BUF = fileURLToPath(new URL('../../../node_modules/.bin/buf', import.meta.url));

function buf(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const GRPC = ['--protocol', 'grpc', '--http2-prior-knowledge'];

let server: AdminServer;
let url: string;

before(async () => {
  ({ server, url } = await startFixture(TOKEN));
});
after(async () => {
  await server.close();
});

test('buf_curl_list_methods_through_reflection', async () => {
  const r = await buf([...GRPC, '--list-methods', url]);
  assert.equal(r.code, 0, r.stderr);
  const methods = r.stdout.trim().split('\n');
  for (const m of ['GetStatus', 'ListBackends', 'ListBuckets', 'LocateObject']) {
    assert.ok(methods.includes(`s3o.admin.v1.AdminService/${m}`), `${m} missing from ${r.stdout}`);
  }
});

test('buf_curl_call_with_token_through_reflection', async () => {
  const r = await buf([...GRPC, '-H', `Authorization: Bearer ${TOKEN}`, '-d', '{}', `${url}/s3o.admin.v1.AdminService/ListBuckets`]);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { buckets: { name: string; accessKeyIds?: string[] }[] };
  assert.deepEqual(body.buckets.map((b) => b.name), ['backups', 'photos']);
  assert.deepEqual(body.buckets[1]!.accessKeyIds, ['AKAAA', 'AKZZZ']);
});

test('buf_curl_connect_protocol_over_h2_locate', async () => {
  const r = await buf([
    '--protocol', 'connect', '--http2-prior-knowledge',
    '-H', `Authorization: Bearer ${TOKEN}`,
    '-d', '{"bucket":"photos","key":"2024/cat picture.jpg"}',
    `${url}/s3o.admin.v1.AdminService/LocateObject`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout) as { versionId: string; copies: { state: string }[] };
  assert.equal(body.versionId, 'v-0001');
  assert.deepEqual(body.copies.map((c) => c.state), ['COPY_STATE_LIVE', 'COPY_STATE_PENDING']);
});

test('buf_curl_without_token_is_unauthenticated', async () => {
  const r = await buf([...GRPC, '-d', '{}', `${url}/s3o.admin.v1.AdminService/GetStatus`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /unauthenticated/i);
});

test('buf_curl_wrong_token_is_unauthenticated_and_missing_key_not_found', async () => {
  const wrong = await buf([...GRPC, '-H', 'Authorization: Bearer nope', '-d', '{}', `${url}/s3o.admin.v1.AdminService/GetStatus`]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout + wrong.stderr, /unauthenticated/i);
  const missing = await buf([
    ...GRPC, '-H', `Authorization: Bearer ${TOKEN}`, '-d', '{"bucket":"photos","key":"nope"}',
    `${url}/s3o.admin.v1.AdminService/LocateObject`,
  ]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stdout + missing.stderr, /not_found/i);
});
