/**
 * The Debian aws cli (/usr/bin/aws, awscli 2.9) against a real orchestrator: s3 cp (a 64 MiB object as
 * one streamed PUT, and what happens above the multipart threshold today), s3 ls, s3 rm, s3 sync,
 * s3 presign, s3api put-object / get-object / head-object / copy-object / delete-objects /
 * list-objects-v2, and a wrong secret. Skipped with a message when /usr/bin/aws is absent.
 */
import { writePatternFile } from '../../harness/clients.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const AWS = '/usr/bin/aws';
const skip = existsSync(AWS) ? false : `${AWS} not installed (Debian package awscli; .ci/run installs it)`;

let t: TestOrchestrator;
let dir: string;
/** AWS_CONFIG_FILE with multipart_threshold 1GB (single PUTs) and one with the defaults (8 MiB). */
let singlePutConfig: string;
let defaultConfig: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs /usr/bin/aws with a clean environment: only our credentials, region and config file. */
function aws(args: string[], opts: { config?: string; creds?: { accessKeyId: string; secretAccessKey: string } } = {}): Promise<CliResult> {
  const creds = opts.creds ?? TEST_CREDS;
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: opts.config ?? singlePutConfig,
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
  };
  return new Promise((resolve) => {
    execFile(AWS, ['--endpoint-url', t.endpoint, ...args], { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(args: string[], opts?: Parameters<typeof aws>[1]): Promise<string> {
  const r = await aws(args, opts);
  assert.equal(r.code, 0, `aws ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function objectBytes(key: string): Promise<Buffer> {
  const got = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

async function exists(key: string): Promise<boolean> {
  try {
    await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

describe('aws cli', { skip }, () => {
  before(async () => {
    t = await startTestOrchestrator();
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-awscli-'));
    singlePutConfig = path.join(dir, 'config-single');
    defaultConfig = path.join(dir, 'config-default');
    await writeFile(singlePutConfig, '[default]\nregion = us-east-1\ns3 =\n    multipart_threshold = 1GB\n    multipart_chunksize = 1GB\n');
    await writeFile(defaultConfig, '[default]\nregion = us-east-1\n');
  });
  after(async () => {
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('s3_cp_upload_and_download_roundtrip', async () => {
    const src = path.join(dir, 'small.txt');
    await writeFile(src, 'hello from the aws cli\n');
    await ok(['s3', 'cp', src, 's3://data/cli/small.txt']);
    assert.equal((await objectBytes('cli/small.txt')).toString(), 'hello from the aws cli\n');
    const dst = path.join(dir, 'small.back');
    await ok(['s3', 'cp', 's3://data/cli/small.txt', dst]);
    assert.equal(await readFile(dst, 'utf8'), 'hello from the aws cli\n');
  });

  it('s3_cp_64MiB_single_put', async () => {
    const src = path.join(dir, 'big.bin');
    const size = 64 * 1024 * 1024;
    const hash = await writePatternFile(src, size);
    await ok(['s3', 'cp', src, 's3://data/cli/big.bin']);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cli/big.bin' }));
    assert.equal(head.ContentLength, size);
    assert.doesNotMatch(head.ETag ?? '', /-/, 'a single PUT, not a multipart upload');
    const dst = path.join(dir, 'big.back');
    await ok(['s3', 'cp', 's3://data/cli/big.bin', dst]);
    assert.equal(sha256(await readFile(dst)), hash);
    await rm(dst);
  });

  it('s3_cp_above_multipart_threshold', async () => {
    // With the cli's default 8 MiB threshold it uses a multipart upload.
    const src = path.join(dir, 'mp.bin');
    const size = 9 * 1024 * 1024;
    const hash = await writePatternFile(src, size);
    await ok(['s3', 'cp', src, 's3://data/cli/multipart.bin'], { config: defaultConfig });
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cli/multipart.bin' }));
    assert.equal(head.ContentLength, size);
    assert.match(head.ETag ?? '', /^"[0-9a-f]{32}-2"$/, 'two 8 MiB parts');
    assert.equal(sha256(await objectBytes('cli/multipart.bin')), hash);
  });

  it('s3api_multipart_by_hand', async () => {
    const parts = [path.join(dir, 'p1.bin'), path.join(dir, 'p2.bin')];
    const h1 = await writePatternFile(parts[0]!, 5 * 1024 * 1024, 11);
    await writePatternFile(parts[1]!, 1000, 12);
    const created = JSON.parse(await ok(['s3api', 'create-multipart-upload', '--bucket', 'data', '--key', 'cli/by-hand.bin'])) as { UploadId: string };
    const etags: string[] = [];
    for (const [i, file] of parts.entries()) {
      const r = JSON.parse(
        await ok(['s3api', 'upload-part', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId, '--part-number', String(i + 1), '--body', file]),
      ) as { ETag: string };
      etags.push(r.ETag);
    }
    const listed = JSON.parse(await ok(['s3api', 'list-parts', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId])) as {
      Parts: { PartNumber: number; ETag: string; Size: number }[];
    };
    assert.deepEqual(listed.Parts.map((p) => [p.PartNumber, p.ETag, p.Size]), [[1, etags[0], 5 * 1024 * 1024], [2, etags[1], 1000]]);
    const uploads = JSON.parse(await ok(['s3api', 'list-multipart-uploads', '--bucket', 'data', '--prefix', 'cli/by-hand'])) as { Uploads?: { UploadId: string }[] };
    assert.deepEqual(uploads.Uploads?.map((u) => u.UploadId), [created.UploadId]);
    const spec = path.join(dir, 'complete.json');
    await writeFile(spec, JSON.stringify({ Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) }));
    const done = JSON.parse(
      await ok(['s3api', 'complete-multipart-upload', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId, '--multipart-upload', `file://${spec}`]),
    ) as { ETag: string };
    assert.match(done.ETag, /^"[0-9a-f]{32}-2"$/);
    const bytes = await objectBytes('cli/by-hand.bin');
    assert.equal(bytes.length, 5 * 1024 * 1024 + 1000);
    assert.equal(sha256(bytes.subarray(0, 5 * 1024 * 1024)), h1);
    // An abandoned upload can be aborted by hand and disappears from the listing.
    const second = JSON.parse(await ok(['s3api', 'create-multipart-upload', '--bucket', 'data', '--key', 'cli/aborted.bin'])) as { UploadId: string };
    await ok(['s3api', 'abort-multipart-upload', '--bucket', 'data', '--key', 'cli/aborted.bin', '--upload-id', second.UploadId]);
    const after = JSON.parse((await ok(['s3api', 'list-multipart-uploads', '--bucket', 'data', '--prefix', 'cli/aborted'])) || '{}') as { Uploads?: unknown[] };
    assert.equal(after.Uploads?.length ?? 0, 0);
  });

  it('s3_cp_from_stdin', async () => {
    const r = await new Promise<CliResult>((resolve) => {
      const child = execFile(
        AWS,
        ['--endpoint-url', t.endpoint, 's3', 'cp', '-', 's3://data/cli/stdin.txt'],
        {
          env: {
            PATH: '/usr/bin:/bin',
            HOME: dir,
            AWS_ACCESS_KEY_ID: TEST_CREDS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: TEST_CREDS.secretAccessKey,
            AWS_DEFAULT_REGION: 'us-east-1',
            AWS_CONFIG_FILE: singlePutConfig,
            AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
            AWS_EC2_METADATA_DISABLED: 'true',
          },
          encoding: 'utf8',
        },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
      child.stdin!.end('piped through stdin\n');
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await objectBytes('cli/stdin.txt')).toString(), 'piped through stdin\n');
  });

  it('s3_ls_buckets_prefixes_and_objects', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/a.txt', Body: 'aaaa' }));
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/sub/b.txt', Body: 'bb' }));
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/with space.txt', Body: 's' }));
    const buckets = await ok(['s3', 'ls']);
    assert.match(buckets, /\bdata$/m);
    assert.doesNotMatch(buckets, /\bother$/m, 'only the credential’s buckets');
    const top = await ok(['s3', 'ls', 's3://data/ls/']);
    assert.match(top, /PRE sub\/$/m);
    assert.match(top, /\s4 a\.txt$/m);
    assert.match(top, /\s1 with space\.txt$/m);
    const rec = await ok(['s3', 'ls', '--recursive', 's3://data/ls/']);
    assert.deepEqual(
      rec.trim().split('\n').map((l) => l.replace(/^\S+ \S+\s+\d+ /, '')),
      ['ls/a.txt', 'ls/sub/b.txt', 'ls/with space.txt'],
    );
  });

  it('s3_rm_single_and_recursive', async () => {
    for (const k of ['rm/one', 'rm/dir/two', 'rm/dir/three']) {
      await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: k, Body: k }));
    }
    await ok(['s3', 'rm', 's3://data/rm/one']);
    assert.equal(await exists('rm/one'), false);
    const out = await ok(['s3', 'rm', '--recursive', 's3://data/rm/dir/']);
    assert.match(out, /delete: s3:\/\/data\/rm\/dir\/two/);
    const left = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'rm/' }));
    assert.equal(left.KeyCount, 0);
  });

  it('s3_sync_directory', async () => {
    const src = path.join(dir, 'tree');
    await mkdir(path.join(src, 'nested', 'deeper'), { recursive: true });
    const files: Record<string, string> = {
      'top.txt': 'top',
      'nested/one.txt': 'one',
      'nested/deeper/two + three.txt': 'two',
      'nested/ünï.txt': 'unicode',
    };
    for (const [rel, body] of Object.entries(files)) await writeFile(path.join(src, rel), body);
    await ok(['s3', 'sync', src, 's3://data/sync/']);
    for (const [rel, body] of Object.entries(files)) assert.equal((await objectBytes(`sync/${rel}`)).toString(), body, rel);
    // A second sync has nothing to do.
    const again = await ok(['s3', 'sync', src, 's3://data/sync/']);
    assert.equal(again.trim(), '');
    const back = path.join(dir, 'tree-back');
    await ok(['s3', 'sync', 's3://data/sync/', back]);
    for (const [rel, body] of Object.entries(files)) assert.equal(await readFile(path.join(back, rel), 'utf8'), body);
  });

  it('s3_presign_url_is_fetchable', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cli/presign me.txt', Body: 'presigned by the cli' }));
    const url = (await ok(['s3', 'presign', 's3://data/cli/presign me.txt', '--expires-in', '300'])).trim();
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'presigned by the cli');
  });

  it('s3api_put_get_head_object', async () => {
    const src = path.join(dir, 'api.json');
    await writeFile(src, '{"a":1}');
    const put = JSON.parse(
      await ok([
        's3api', 'put-object', '--bucket', 'data', '--key', 'api/obj.json', '--body', src,
        '--content-type', 'application/json', '--metadata', 'owner=cli,purpose=test', '--cache-control', 'no-cache',
      ]),
    ) as { ETag: string };
    assert.equal(put.ETag, `"${createHash('md5').update('{"a":1}').digest('hex')}"`);
    const head = JSON.parse(await ok(['s3api', 'head-object', '--bucket', 'data', '--key', 'api/obj.json'])) as Record<string, unknown>;
    assert.equal(head['ContentLength'], 7);
    assert.equal(head['ContentType'], 'application/json');
    assert.equal(head['CacheControl'], 'no-cache');
    assert.equal(head['ETag'], put.ETag);
    assert.deepEqual(head['Metadata'], { owner: 'cli', purpose: 'test' });
    const out = path.join(dir, 'api.back');
    const get = JSON.parse(
      await ok(['s3api', 'get-object', '--bucket', 'data', '--key', 'api/obj.json', '--range', 'bytes=1-3', out]),
    ) as Record<string, unknown>;
    assert.equal(get['ContentRange'], 'bytes 1-3/7');
    assert.equal(await readFile(out, 'utf8'), '"a"');
  });

  it('s3api_head_object_missing_fails_with_404', async () => {
    const r = await aws(['s3api', 'head-object', '--bucket', 'data', '--key', 'api/missing']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /404|Not Found/);
  });

  it('s3api_copy_and_delete_objects', async () => {
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'api/src', Body: 'copy me' }));
    await ok(['s3api', 'copy-object', '--bucket', 'data', '--key', 'api/dst', '--copy-source', 'data/api/src']);
    assert.equal((await objectBytes('api/dst')).toString(), 'copy me');
    const del = JSON.parse(
      await ok(['s3api', 'delete-objects', '--bucket', 'data', '--delete', JSON.stringify({ Objects: [{ Key: 'api/src' }, { Key: 'api/dst' }] })]),
    ) as { Deleted: { Key: string }[] };
    assert.deepEqual(del.Deleted.map((d) => d.Key).sort(), ['api/dst', 'api/src']);
    assert.equal(await exists('api/src'), false);
  });

  it('s3api_list_objects_v2_paginates', async () => {
    for (let i = 0; i < 7; i++) await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: `pg/${i}`, Body: 'x' }));
    const r = JSON.parse(await ok(['s3api', 'list-objects-v2', '--bucket', 'data', '--prefix', 'pg/', '--page-size', '2'])) as {
      Contents: { Key: string }[];
    };
    assert.deepEqual(r.Contents.map((c) => c.Key), ['pg/0', 'pg/1', 'pg/2', 'pg/3', 'pg/4', 'pg/5', 'pg/6']);
  });

  it('s3_wrong_secret_is_SignatureDoesNotMatch', async () => {
    const src = path.join(dir, 'denied.txt');
    await writeFile(src, 'no');
    const r = await aws(['s3', 'cp', src, 's3://data/cli/denied.txt'], { creds: { accessKeyId: TEST_CREDS.accessKeyId, secretAccessKey: 'wrong' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SignatureDoesNotMatch/);
    assert.equal(await exists('cli/denied.txt'), false);
  });

  it('s3_foreign_bucket_is_AccessDenied', async () => {
    const r = await aws(['s3', 'ls', 's3://other/']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /AccessDenied/);
  });
});
