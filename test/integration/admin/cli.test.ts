import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import type { AdminServer } from '../../../src/admin/server.js';
import { TOKEN, startFixture } from './fixture.js';

/** Runs the CLI in-process and captures what it prints. */
async function run(args: string[], env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const code = await runAdmin(args, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) }, env);
  return { code, out, err };
}

let server: AdminServer;
let url: string;

before(async () => {
  ({ server, url } = await startFixture(TOKEN));
});
after(async () => {
  await server.close();
});

test('status_prints_fields', async () => {
  const r = await run(['status', '--server', url, '--token', TOKEN]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^version +0\.1\.0-test$/m);
  assert.match(r.out, /^instance +inst-42$/m);
  assert.match(r.out, /^database +embedded \(schema 3\)$/m);
  assert.match(r.out, /^backends +2 \(1 healthy\)$/m);
  assert.match(r.out, /^objects +15 \(7\.0 GiB\)$/m);
  assert.match(r.out, /^uptime +\d+d \d+h \d+m \d+s$/m);
});

test('backends_prints_table_with_sizes', async () => {
  const r = await run(['backends', '--server', url], { S3O_ADMIN_TOKEN: TOKEN });
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME +TYPE +STATE +HEALTHY +BREAKER +USED +RESERVED +QUOTA +FULL +OBJECTS$/);
  assert.match(lines[1]!, /^disk-a +fs +active +yes +- +1\.5 GiB +2\.0 KiB +10\.0 GiB +15\.0% +12$/);
  assert.match(lines[2]!, /^cloud-b +s3 +draining +NO +- +5\.0 MiB +0 B +unlimited +- +3$/);
});

test('buckets_prints_table_without_secrets', async () => {
  const r = await run(['buckets', '--server', url, '--token', TOKEN]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^backups +2024-12-01T00:00:00\.000Z +0 +0 B +-$/m);
  assert.match(r.out, /^photos +2024-11-30T12:00:00\.000Z +15 +7\.0 GiB +AKAAA,AKZZZ$/m);
});

test('locate_prints_version_and_copies', async () => {
  const r = await run(['locate', 'photos', '2024/cat picture.jpg', '--server', url, '--token', TOKEN]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^version +v-0001$/m);
  assert.match(r.out, /^size +3\.0 MiB \(3145728 bytes\)$/m);
  assert.match(r.out, /^disk-a +live +3\.0 MiB +photos\/v-0001$/m);
  assert.match(r.out, /^cloud-b +pending +3\.0 MiB +photos\/v-0001$/m);
});

test('json_flag_prints_proto3_json', async () => {
  const r = await run(['locate', 'photos', '2024/cat picture.jpg', '--json', '--server', url, '--token', TOKEN]);
  assert.equal(r.code, 0, r.err);
  const body = JSON.parse(r.out) as { size: string; copies: { backend: string; state: string }[] };
  assert.equal(body.size, '3145728');
  assert.deepEqual(body.copies.map((c) => [c.backend, c.state]), [['disk-a', 'COPY_STATE_LIVE'], ['cloud-b', 'COPY_STATE_PENDING']]);
});

test('locate_missing_key_exits_1_naming_NotFound', async () => {
  const r = await run(['locate', 'photos', 'nope', '--server', url, '--token', TOKEN]);
  assert.equal(r.code, 1);
  assert.match(r.err, /NotFound/);
  assert.equal(r.out, '');
});

test('wrong_or_missing_token_exits_1_naming_Unauthenticated', async () => {
  const wrong = await run(['status', '--server', url, '--token', 'nope']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /Unauthenticated/);
  const missing = await run(['status', '--server', url]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /Unauthenticated/);
});

test('unreachable_server_exits_1', async () => {
  // A port that was just free: nothing listens there.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const r = await run(['status', '--server', `http://127.0.0.1:${port}`, '--token', TOKEN]);
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot reach admin server at http:\/\/127\.0\.0\.1:\d+: Unavailable/);
  assert.match(r.err, /ECONNREFUSED/);
});

test('usage_errors_exit_2', async () => {
  assert.equal((await run([])).code, 2);
  assert.equal((await run(['frobnicate'])).code, 2);
  assert.equal((await run(['locate', 'only-bucket'])).code, 2);
  assert.equal((await run(['status', '--bogus'])).code, 2);
  assert.equal((await run(['status', '--server', 'ftp://x'])).code, 2);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /locate BUCKET KEY/);
});
