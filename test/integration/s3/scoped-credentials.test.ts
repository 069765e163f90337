/**
 * Scoped credentials through @aws-sdk/client-s3, created through the generated Connect client of
 * CredentialService: a read-only grant cannot write, delete or upload; a prefix-confined grant cannot
 * read, list, copy from or write outside its prefix (every S3 operation tried), and its listings show
 * only what lies under the prefix; CreateBucket/DeleteBucket/ListBuckets follow the credential's rights.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketCorsCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutBucketCorsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { CredentialService, Permission } from '../../../gen/s3o/admin/v1/credentials_pb.js';
import { BOTH_CREDS, clientFor, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';
import { bytesOf, expectS3Error, sdkFailure } from './helpers.js';

let t: TestOrchestrator;
let admin: Client<typeof CredentialService>;
let both: S3Client;
/** Read-only on `data`. */
let ro: S3Client;
/** Read-write on `data` under `team/a/`, read-only on `other` under `shared/`. */
let pre: S3Client;
/** No grants; may create buckets. */
let creator: S3Client;
let creatorKey: string;
const clients: S3Client[] = [];

async function credential(grants: { bucket: string; permission: Permission; prefix?: string }[], canCreateBuckets = false) {
  const r = await admin.createCredential({ grants: grants.map((g) => ({ prefix: '', ...g })), canCreateBuckets, description: 'scoped test' });
  const c = clientFor(t.endpoint, { accessKeyId: r.credential!.accessKeyId, secretAccessKey: r.secretAccessKey });
  clients.push(c);
  return { client: c, key: r.credential!.accessKeyId };
}

const put = (c: S3Client, bucket: string, key: string, body = `body of ${key}`) => c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const read = async (c: S3Client, bucket: string, key: string) => (await bytesOf((await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toString();
const denied = (p: Promise<unknown>) => expectS3Error(p, 'AccessDenied', 403);

/** HEAD answers have no body: the SDK names the error after the status. */
async function deniedHead(p: Promise<unknown>): Promise<void> {
  const f = await sdkFailure(p);
  assert.equal(f.status, 403);
}

let upB: string; // an upload under team/b/ (outside pre's prefix), started by the config credential
let upA: string; // an upload under team/a/

before(async () => {
  t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1 });
  const auth: Interceptor = (next) => (req) => {
    req.header.set('authorization', 'Bearer admin-test-token');
    return next(req);
  };
  admin = createClient(CredentialService, createConnectTransport({ baseUrl: t.adminUrl, httpVersion: '1.1', interceptors: [auth] }));
  both = clientFor(t.endpoint, BOTH_CREDS);
  clients.push(both);
  for (const k of ['team/a/one', 'team/a/sub/two', 'team/b/secret', 'top']) await put(t.client, 'data', k);
  for (const k of ['shared/x', 'private/y']) await put(both, 'other', k);
  await t.client.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: 'team/b/secret', Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }));
  upB = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/up' }))).UploadId!;
  upA = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'team/a/up' }))).UploadId!;
  ro = (await credential([{ bucket: 'data', permission: Permission.READ }])).client;
  pre = (
    await credential([
      { bucket: 'data', permission: Permission.READ_WRITE, prefix: 'team/a/' },
      { bucket: 'other', permission: Permission.READ, prefix: 'shared/' },
    ])
  ).client;
  ({ client: creator, key: creatorKey } = await credential([], true));
});

after(async () => {
  for (const c of clients) c.destroy();
  await t?.stop();
});

describe('read-only credential', () => {
  it('reads, lists and heads', async () => {
    assert.equal(await read(ro, 'data', 'top'), 'body of top');
    await ro.send(new HeadObjectCommand({ Bucket: 'data', Key: 'top' }));
    await ro.send(new HeadBucketCommand({ Bucket: 'data' }));
    const l = await ro.send(new ListObjectsV2Command({ Bucket: 'data' }));
    assert.deepEqual(l.Contents?.map((o) => o.Key), ['team/a/one', 'team/a/sub/two', 'team/b/secret', 'top']);
    const tags = await ro.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'team/b/secret' }));
    assert.deepEqual(tags.TagSet, [{ Key: 'k', Value: 'v' }]);
    const ups = await ro.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    assert.deepEqual(ups.Uploads?.map((u) => u.Key), ['team/a/up', 'team/b/up']);
    await ro.send(new ListPartsCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB }));
  });

  it('cannot write, delete, copy into, tag, upload or change the bucket', async () => {
    await denied(put(ro, 'data', 'new'));
    await denied(put(ro, 'data', 'top', 'overwritten'));
    await denied(ro.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'top' })));
    await denied(ro.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'top' }] } })));
    await denied(ro.send(new CopyObjectCommand({ Bucket: 'data', Key: 'copy', CopySource: 'data/top' })));
    await denied(ro.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: 'top', Tagging: { TagSet: [] } })));
    await denied(ro.send(new DeleteObjectTaggingCommand({ Bucket: 'data', Key: 'team/b/secret' })));
    await denied(ro.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'mp' })));
    await denied(ro.send(new UploadPartCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, PartNumber: 1, Body: 'x' })));
    await denied(ro.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, PartNumber: 1, CopySource: 'data/top' })));
    await denied(ro.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, MultipartUpload: { Parts: [] } })));
    await denied(ro.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB })));
    await denied(ro.send(new PutBucketCorsCommand({ Bucket: 'data', CORSConfiguration: { CORSRules: [{ AllowedMethods: ['GET'], AllowedOrigins: ['*'] }] } })));
    await denied(ro.send(new DeleteBucketCorsCommand({ Bucket: 'data' })));
    await denied(ro.send(new CreateBucketCommand({ Bucket: 'ro-new-bucket' })));
    await denied(ro.send(new DeleteBucketCommand({ Bucket: 'data' })));
    // Nothing changed.
    assert.equal(await read(t.client, 'data', 'top'), 'body of top');
    const tags = await t.client.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'team/b/secret' }));
    assert.equal(tags.TagSet?.length, 1);
    const ups = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    assert.equal(ups.Uploads?.length, 2);
    assert.equal((await sdkFailure(t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'new' })))).status, 404);
  });

  it('ListBuckets shows only the granted bucket', async () => {
    const r = await ro.send(new ListBucketsCommand({}));
    assert.deepEqual(r.Buckets?.map((b) => b.Name), ['data']);
  });
});

describe('prefix-confined credential', () => {
  it('reads and writes under its prefix', async () => {
    assert.equal(await read(pre, 'data', 'team/a/one'), 'body of team/a/one');
    await pre.send(new HeadObjectCommand({ Bucket: 'data', Key: 'team/a/sub/two' }));
    await put(pre, 'data', 'team/a/new', 'fresh');
    assert.equal(await read(t.client, 'data', 'team/a/new'), 'fresh');
    await pre.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: 'team/a/new', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }));
    await pre.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'team/a/new' }));
    await pre.send(new DeleteObjectTaggingCommand({ Bucket: 'data', Key: 'team/a/new' }));
    await pre.send(new CopyObjectCommand({ Bucket: 'data', Key: 'team/a/copy', CopySource: 'data/team/a/one' }));
    await pre.send(new CopyObjectCommand({ Bucket: 'data', Key: 'team/a/from-other', CopySource: 'other/shared/x' }));
    assert.equal(await read(pre, 'data', 'team/a/from-other'), 'body of shared/x');
    assert.equal(await read(pre, 'other', 'shared/x'), 'body of shared/x');
    await pre.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'team/a/copy' }));
    await pre.send(new HeadBucketCommand({ Bucket: 'data' }));
  });

  it('cannot read, head or tag outside its prefix', async () => {
    for (const key of ['team/b/secret', 'top', 'team/a', 'team/']) {
      await denied(pre.send(new GetObjectCommand({ Bucket: 'data', Key: key })));
      await deniedHead(pre.send(new HeadObjectCommand({ Bucket: 'data', Key: key })));
      await denied(pre.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: key })));
    }
    await denied(pre.send(new GetObjectCommand({ Bucket: 'other', Key: 'private/y' })));
  });

  it('cannot write, delete or tag outside its prefix, nor write in its read-only bucket', async () => {
    await denied(put(pre, 'data', 'team/b/secret', 'overwritten'));
    await denied(put(pre, 'data', 'outside'));
    await denied(pre.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'top' })));
    await denied(pre.send(new PutObjectTaggingCommand({ Bucket: 'data', Key: 'top', Tagging: { TagSet: [] } })));
    await denied(pre.send(new DeleteObjectTaggingCommand({ Bucket: 'data', Key: 'team/b/secret' })));
    await denied(put(pre, 'other', 'shared/new'));
    await denied(pre.send(new PutBucketCorsCommand({ Bucket: 'data', CORSConfiguration: { CORSRules: [{ AllowedMethods: ['GET'], AllowedOrigins: ['*'] }] } })));
    await denied(pre.send(new DeleteBucketCorsCommand({ Bucket: 'data' })));
    await pre.send(new GetBucketCorsCommand({ Bucket: 'data' })).catch((e: Error) => assert.equal(e.name, 'NoSuchCORSConfiguration'));
    assert.equal(await read(t.client, 'data', 'team/b/secret'), 'body of team/b/secret');
    assert.equal(await read(t.client, 'data', 'top'), 'body of top');
  });

  it('cannot copy from or into keys outside its prefix', async () => {
    await denied(pre.send(new CopyObjectCommand({ Bucket: 'data', Key: 'team/a/stolen', CopySource: 'data/team/b/secret' })));
    await denied(pre.send(new CopyObjectCommand({ Bucket: 'data', Key: 'team/a/stolen', CopySource: 'other/private/y' })));
    await denied(pre.send(new CopyObjectCommand({ Bucket: 'data', Key: 'team/b/planted', CopySource: 'data/team/a/one' })));
    await denied(pre.send(new CopyObjectCommand({ Bucket: 'other', Key: 'shared/copy', CopySource: 'other/shared/x' })));
    for (const [bucket, key] of [['data', 'team/a/stolen'], ['data', 'team/b/planted'], ['other', 'shared/copy']] as const) {
      assert.equal((await sdkFailure(both.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).status, 404, `${bucket}/${key} must not exist`);
    }
  });

  it('multipart uploads only under its prefix', async () => {
    await denied(pre.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/mp' })));
    await denied(pre.send(new UploadPartCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, PartNumber: 1, Body: 'x' })));
    await denied(pre.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, PartNumber: 1, CopySource: 'data/team/a/one' })));
    await denied(pre.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'team/a/up', UploadId: upA, PartNumber: 1, CopySource: 'data/team/b/secret' })));
    await denied(pre.send(new ListPartsCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB })));
    await denied(pre.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] } })));
    await denied(pre.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'team/b/up', UploadId: upB })));
    // Inside: the whole cycle works.
    const up = await pre.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'team/a/mp' }));
    const p1 = await pre.send(new UploadPartCopyCommand({ Bucket: 'data', Key: 'team/a/mp', UploadId: up.UploadId!, PartNumber: 1, CopySource: 'data/team/a/one' }));
    await pre.send(new ListPartsCommand({ Bucket: 'data', Key: 'team/a/mp', UploadId: up.UploadId! }));
    await pre.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'data',
        Key: 'team/a/mp',
        UploadId: up.UploadId!,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.CopyPartResult!.ETag! }] },
      }),
    );
    assert.equal(await read(pre, 'data', 'team/a/mp'), 'body of team/a/one');
    await pre.send(new AbortMultipartUploadCommand({ Bucket: 'data', Key: 'team/a/up', UploadId: upA }));
    upA = (await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'team/a/up' }))).UploadId!;
  });

  it('DeleteObjects deletes its keys and refuses each key outside its prefix', async () => {
    await put(pre, 'data', 'team/a/gone');
    const r = await pre.send(new DeleteObjectsCommand({ Bucket: 'data', Delete: { Objects: [{ Key: 'team/a/gone' }, { Key: 'top' }, { Key: 'team/b/secret' }] } }));
    assert.deepEqual(r.Deleted?.map((d) => d.Key), ['team/a/gone']);
    assert.deepEqual(r.Errors?.map((e) => [e.Key, e.Code]).sort(), [['team/b/secret', 'AccessDenied'], ['top', 'AccessDenied']]);
    assert.equal(await read(t.client, 'data', 'top'), 'body of top');
    assert.equal(await read(t.client, 'data', 'team/b/secret'), 'body of team/b/secret');
  });

  it('listings show only what lies under its prefix', async () => {
    const root = await pre.send(new ListObjectsV2Command({ Bucket: 'data', Delimiter: '/' }));
    assert.deepEqual(root.CommonPrefixes?.map((p) => p.Prefix), ['team/']);
    assert.equal(root.Contents, undefined);
    assert.equal(root.KeyCount, 1);
    const team = await pre.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'team/', Delimiter: '/' }));
    assert.deepEqual(team.CommonPrefixes?.map((p) => p.Prefix), ['team/a/']);
    const a = await pre.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'team/a/', Delimiter: '/' }));
    assert.deepEqual(a.Contents?.map((o) => o.Key), ['team/a/from-other', 'team/a/mp', 'team/a/new', 'team/a/one']);
    assert.deepEqual(a.CommonPrefixes?.map((p) => p.Prefix), ['team/a/sub/']);
    const flat = await pre.send(new ListObjectsV2Command({ Bucket: 'data' }));
    assert.deepEqual(flat.Contents?.map((o) => o.Key), ['team/a/from-other', 'team/a/mp', 'team/a/new', 'team/a/one', 'team/a/sub/two']);
    // Pages of two keep to the prefix too.
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await pre.send(new ListObjectsV2Command({ Bucket: 'data', MaxKeys: 2, ...(token ? { ContinuationToken: token } : {}) }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    assert.deepEqual(keys, flat.Contents?.map((o) => o.Key));
    const v1 = await pre.send(new ListObjectsCommand({ Bucket: 'data', Prefix: 'te' }));
    assert.deepEqual(v1.Contents?.map((o) => o.Key), flat.Contents?.map((o) => o.Key));
    const v1root = await pre.send(new ListObjectsCommand({ Bucket: 'data', Delimiter: '/' }));
    assert.deepEqual(v1root.CommonPrefixes?.map((p) => p.Prefix), ['team/']);
    // Past the one common prefix: nothing more.
    const after = await pre.send(new ListObjectsV2Command({ Bucket: 'data', Delimiter: '/', StartAfter: 'team/' }));
    assert.equal(after.KeyCount, 0);
    const other = await pre.send(new ListObjectsV2Command({ Bucket: 'other' }));
    assert.deepEqual(other.Contents?.map((o) => o.Key), ['shared/x']);
  });

  it('listings with a prefix outside its own are refused', async () => {
    await denied(pre.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'team/b/' })));
    await denied(pre.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'top' })));
    await denied(pre.send(new ListObjectsCommand({ Bucket: 'data', Prefix: 'x' })));
    await denied(pre.send(new ListObjectsV2Command({ Bucket: 'other', Prefix: 'private/' })));
    await denied(pre.send(new ListMultipartUploadsCommand({ Bucket: 'data', Prefix: 'team/b/' })));
  });

  it('ListMultipartUploads shows only uploads under its prefix', async () => {
    const all = await pre.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    assert.deepEqual(all.Uploads?.map((u) => u.Key), ['team/a/up']);
    const root = await pre.send(new ListMultipartUploadsCommand({ Bucket: 'data', Delimiter: '/' }));
    assert.deepEqual(root.CommonPrefixes?.map((p) => p.Prefix), ['team/']);
    assert.equal(root.Uploads, undefined);
  });

  it('ListBuckets shows its two buckets', async () => {
    const r = await pre.send(new ListBucketsCommand({}));
    assert.deepEqual(r.Buckets?.map((b) => b.Name), ['data', 'other']);
  });
});

describe('buckets through S3', () => {
  it('a credential allowed to create buckets owns what it creates and may delete it once empty', async () => {
    assert.deepEqual((await creator.send(new ListBucketsCommand({}))).Buckets ?? [], []);
    await creator.send(new CreateBucketCommand({ Bucket: 'made-by-s3' }));
    assert.deepEqual((await creator.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['made-by-s3']);
    // Creating it again: the us-east-1 "you already own it" success.
    await creator.send(new CreateBucketCommand({ Bucket: 'made-by-s3' }));
    await put(creator, 'made-by-s3', 'k');
    assert.equal(await read(creator, 'made-by-s3', 'k'), 'body of k');
    // Other credentials do not see it.
    assert.deepEqual((await t.client.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['data']);
    await denied(t.client.send(new GetObjectCommand({ Bucket: 'made-by-s3', Key: 'k' })));
    await denied(t.client.send(new DeleteBucketCommand({ Bucket: 'made-by-s3' })));
    await expectS3Error(creator.send(new DeleteBucketCommand({ Bucket: 'made-by-s3' })), 'BucketNotEmpty', 409);
    await creator.send(new DeleteObjectCommand({ Bucket: 'made-by-s3', Key: 'k' }));
    await creator.send(new DeleteBucketCommand({ Bucket: 'made-by-s3' }));
    assert.deepEqual((await creator.send(new ListBucketsCommand({}))).Buckets ?? [], []);
    await deniedHead(creator.send(new HeadBucketCommand({ Bucket: 'made-by-s3' })));
    await denied(put(creator, 'made-by-s3', 'k'));
  });

  it('a bucket with pending multipart uploads is not empty', async () => {
    await creator.send(new CreateBucketCommand({ Bucket: 'with-upload' }));
    const up = await creator.send(new CreateMultipartUploadCommand({ Bucket: 'with-upload', Key: 'u' }));
    await expectS3Error(creator.send(new DeleteBucketCommand({ Bucket: 'with-upload' })), 'BucketNotEmpty', 409);
    await creator.send(new AbortMultipartUploadCommand({ Bucket: 'with-upload', Key: 'u', UploadId: up.UploadId! }));
    await creator.send(new DeleteBucketCommand({ Bucket: 'with-upload' }));
  });

  it('names taken by others, credentials without the right, and buckets not created through S3 are refused', async () => {
    await expectS3Error(creator.send(new CreateBucketCommand({ Bucket: 'data' })), 'BucketAlreadyExists', 409);
    await denied(ro.send(new CreateBucketCommand({ Bucket: 'ro-bucket' })));
    await denied(t.client.send(new CreateBucketCommand({ Bucket: 'config-cred-bucket' })));
    // The config credential re-creating its own bucket: the "already own it" success.
    await t.client.send(new CreateBucketCommand({ Bucket: 'data' }));
    // A config bucket cannot be deleted through S3, not even by its read-write credential.
    await denied(t.client.send(new DeleteBucketCommand({ Bucket: 'data' })));
    await denied(creator.send(new DeleteBucketCommand({ Bucket: 'other' })));
    await denied(creator.send(new DeleteBucketCommand({ Bucket: 'no-such-bucket-here' })));
    assert.ok(creatorKey.startsWith('S3O'));
  });
});
