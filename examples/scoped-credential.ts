/**
 * Creates a bucket and a credential confined to one key prefix in it with the generated Connect clients,
 * uses the credential through the AWS SDK (a write under the prefix succeeds, one outside is AccessDenied),
 * then revokes the credential and deletes the bucket (with --keep, leaves both). Exits 0 on success, 5 when
 * the server refused (the bucket exists and is config-owned, …: the reason is printed), 1 when a call
 * failed otherwise, 2 on a usage error.
 *
 *   node --import tsx examples/scoped-credential.ts [--server http://127.0.0.1:9001] [--token T]
 *        --s3 http://127.0.0.1:9000 [--keep] BUCKET PREFIX
 *
 * The token defaults to the S3O_ADMIN_TOKEN environment variable. See docs/admin-api.md ("CredentialService").
 */
import { parseArgs } from 'node:util';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ConfigOwnedSchema, FieldViolationSchema } from '../gen/s3o/admin/v1/backends_pb.js';
import { BucketService } from '../gen/s3o/admin/v1/buckets_pb.js';
import { CredentialService, Permission } from '../gen/s3o/admin/v1/credentials_pb.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: 'http://127.0.0.1:9001' },
    token: { type: 'string' },
    s3: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const [bucket, prefix] = positionals;
if (!bucket || prefix === undefined || !values.s3) {
  process.stderr.write('usage: scoped-credential.ts [--server URL] [--token T] --s3 URL [--keep] BUCKET PREFIX\n');
  process.exit(2);
}
const token = values.token ?? process.env.S3O_ADMIN_TOKEN;
const headers = new Headers(token ? { authorization: `Bearer ${token}` } : {});
const transport = createConnectTransport({ baseUrl: values.server, httpVersion: '1.1' });
const buckets = createClient(BucketService, transport);
const credentials = createClient(CredentialService, transport);

try {
  await buckets.createBucket({ name: bucket }, { headers });
  console.log(`created bucket ${bucket}`);
  const { credential, secretAccessKey } = await credentials.createCredential(
    { description: 'examples/scoped-credential.ts', grants: [{ bucket, permission: Permission.READ_WRITE, prefix }] },
    { headers },
  );
  const accessKeyId = credential!.accessKeyId;
  console.log(`created credential ${accessKeyId}, read-write on ${bucket} under "${prefix}" (secret shown once)`);

  const s3 = new S3Client({ endpoint: values.s3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}hello.txt`, Body: 'hello' }));
  console.log(`PUT ${prefix}hello.txt: ok`);
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'outside.txt', Body: 'nope' }));
    console.log('PUT outside.txt: ok (unexpected)');
  } catch (err) {
    console.log(`PUT outside.txt: ${err instanceof S3ServiceException ? err.name : String(err)}`);
  }
  s3.destroy();

  if (!values.keep) {
    await credentials.revokeCredential({ accessKeyId }, { headers });
    console.log(`revoked ${accessKeyId}`);
    const { deleted, jobId } = await buckets.deleteBucket({ name: bucket, force: true }, { headers });
    console.log(deleted ? `deleted bucket ${bucket}` : `purging bucket ${bucket} (job ${jobId})`);
  }
} catch (err) {
  const e = ConnectError.from(err);
  console.error(`${Code[e.code]}: ${e.rawMessage}`);
  for (const d of e.findDetails(ConfigOwnedSchema)) console.error(`  config-owned: edit ${d.file}: ${d.keyPath}`);
  for (const d of e.findDetails(FieldViolationSchema)) console.error(`  ${d.field}: ${d.description}`);
  process.exit(e.code === Code.FailedPrecondition ? 5 : e.code === Code.InvalidArgument ? 2 : 1);
}
