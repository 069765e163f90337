/**
 * Adds an fs backend through the admin API with the generated Connect client, gives it a weight and a
 * zone, lists the fleet, and (with --remove) removes it again. Exits 0 on success, 5 when the server
 * refused (the provider probe failed, the backend is config-owned or still holds data: the reason and
 * its details are printed), 1 when a call failed otherwise, 2 on a usage error.
 *
 *   node --import tsx examples/add-backend.ts [--server http://127.0.0.1:9001] [--token T] [--remove] NAME DIR
 *
 * The token defaults to the S3O_ADMIN_TOKEN environment variable. See docs/admin-api.md ("BackendService").
 */
import { parseArgs } from 'node:util';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { BackendService, ConfigOwnedSchema, FieldViolationSchema, ProbeFailureSchema } from '../gen/s3o/admin/v1/backends_pb.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: 'http://127.0.0.1:9001' },
    token: { type: 'string' },
    remove: { type: 'boolean', default: false },
  },
});
const [name, dir] = positionals;
if (!name || !dir) {
  process.stderr.write('usage: add-backend.ts [--server URL] [--token T] [--remove] NAME DIR\n');
  process.exit(2);
}
const token = values.token ?? process.env.S3O_ADMIN_TOKEN;
const headers = new Headers(token ? { authorization: `Bearer ${token}` } : {});
const backends = createClient(BackendService, createConnectTransport({ baseUrl: values.server, httpVersion: '1.1' }));

try {
  // The server writes, reads back and deletes a probe object in DIR before it stores anything.
  const { backend } = await backends.addBackend({ name, settings: { case: 'fs', value: { path: dir } }, quotaBytes: 1n << 30n }, { headers });
  console.log(`added ${backend!.name} (${backend!.source}), loaded on this instance: ${backend!.loaded}`);
  const { backend: updated } = await backends.updateBackend({ name, weight: 2, zone: 'example-zone' }, { headers });
  console.log(`weight ${updated!.weight}, zone ${updated!.zone}`);
  const { backends: all } = await backends.listBackends({}, { headers });
  for (const b of all) console.log(`  ${b.name}  ${b.source}  used ${b.usedBytes}/${b.quotaBytes === 0n ? 'unlimited' : b.quotaBytes}`);
  if (values.remove) {
    await backends.removeBackend({ name }, { headers });
    console.log(`removed ${name}`);
  }
} catch (err) {
  const e = ConnectError.from(err);
  console.error(`${Code[e.code]}: ${e.rawMessage}`);
  for (const d of e.findDetails(ProbeFailureSchema)) console.error(`  the provider refused the probe at ${d.step}: ${d.providerError}`);
  for (const d of e.findDetails(ConfigOwnedSchema)) console.error(`  config-owned: edit ${d.file}: ${d.keyPath}`);
  for (const d of e.findDetails(FieldViolationSchema)) console.error(`  ${d.field}: ${d.description}`);
  process.exit(e.code === Code.FailedPrecondition ? 5 : e.code === Code.InvalidArgument ? 2 : 1);
}
