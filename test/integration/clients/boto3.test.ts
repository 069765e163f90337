/**
 * boto3 against a real orchestrator, through py/boto3_ops.py: upload_file/download_file with a 5 MiB
 * multipart threshold (12 MiB file, 3 parts), put_object/get_object, presigned GETs, the
 * list_objects_v2 paginator, and delete_objects. Runs under Debian's /usr/bin/python3 (python3-boto3) and, when
 * the python3 first on PATH is another interpreter with boto3 (pyenv), under that one too: newer botocore
 * signs differently (CRC32 checksums, aws-chunked bodies with trailers), so both generations must pass.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createSandbox, describeFailure, hasBoto3, hashFile, newerPython, objectSha256, runTool, writePatternFile, type ToolSandbox } from '../../harness/clients.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py', 'boto3_ops.py');
const MiB = 1024 * 1024;
/**
 * Keys for the paginator: 1100 (beyond the 1000-key page) took 25-30 s to upload here (about 40 small
 * PUTs/s through the orchestrator on s3rver), so 250 keys paged with MaxKeys=100 keep the file fast.
 */
const MANY = 250;

const pythons: { label: string; python: string; skip: string | false }[] = [
  {
    label: 'debian',
    python: '/usr/bin/python3',
    skip: hasBoto3('/usr/bin/python3') ? false : '/usr/bin/python3 cannot import boto3 (Debian package python3-boto3; .ci/run installs it)',
  },
];
const newer = newerPython();
pythons.push({ label: 'newer', python: newer ?? 'python3', skip: newer ? false : 'no python3 other than /usr/bin/python3 with boto3 on PATH' });

let t: TestOrchestrator | undefined;
let box: ToolSandbox;

before(async () => {
  if (pythons.every((p) => p.skip)) return;
  t = await startTestOrchestrator();
  box = await createSandbox('boto3');
});
after(async () => {
  await t?.stop();
  await box?.cleanup();
});

for (const { label, python, skip } of pythons) {
  describe(`boto3 (${label} python)`, { skip }, () => {
    const prefix = `boto3-${label}/`;

    async function op<T>(args: string[]): Promise<T> {
      const env = box.env({
        S3O_ENDPOINT: t!.endpoint,
        S3O_BUCKET: 'data',
        AWS_ACCESS_KEY_ID: TEST_CREDS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDS.secretAccessKey,
        AWS_CONFIG_FILE: path.join(box.dir, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(box.dir, 'no-aws-credentials'),
      });
      const r = await runTool(python, [SCRIPT, ...args], { env, timeoutMs: 50_000 });
      assert.equal(r.code, 0, describeFailure(`${python} boto3_ops.py`, args, r));
      return JSON.parse(r.stdout) as T;
    }

    it('reports_its_versions', async (tc) => {
      const v = await op<{ boto3: string; botocore: string }>(['versions']);
      tc.diagnostic(`${python}: boto3 ${v.boto3}, botocore ${v.botocore}`);
      assert.match(v.botocore, /^\d+\.\d+\.\d+/);
    });

    it('put_object_get_object_roundtrip', async () => {
      const got = await op<{ body: string }>(['put-get', `${prefix}small.txt`, 'hello from boto3 é']);
      assert.equal(got.body, 'hello from boto3 é');
    });

    it('presigned_get_needs_signature_version_s3v4', async () => {
      await t!.client.send(new PutObjectCommand({ Bucket: 'data', Key: `${prefix}presigned.txt`, Body: 'hello from boto3 é' }));
      const { url } = await op<{ url: string }>(['presign', `${prefix}presigned.txt`, 's3v4']);
      assert.match(url, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'hello from boto3 é');
      // Without it botocore presigns with SigV2, which the orchestrator refuses with a clear error.
      const v2 = await op<{ url: string }>(['presign', `${prefix}presigned.txt`, 'default']);
      assert.match(v2.url, /AWSAccessKeyId=/);
      const refused = await fetch(v2.url);
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /<Code>InvalidRequest<\/Code>.*AWS4-HMAC-SHA256/s);
    });

    it('upload_file_below_threshold_is_one_put', async () => {
      const file = path.join(box.dir, `${label}-small.bin`);
      const hash = await writePatternFile(file, 3 * MiB + 5, 31);
      const up = await op<{ etag: string; size: number }>(['upload', file, `${prefix}small.bin`]);
      assert.equal(up.size, 3 * MiB + 5);
      assert.doesNotMatch(up.etag, /-/);
      assert.equal(await objectSha256(t!.client, 'data', `${prefix}small.bin`), hash);
    });

    it('upload_file_12MiB_multipart_and_download_file_match', async () => {
      const file = path.join(box.dir, `${label}-big.bin`);
      const hash = await writePatternFile(file, 12 * MiB, 12);
      const key = `${prefix}dir with space/big+file.bin`;
      const up = await op<{ etag: string; size: number }>(['upload', file, key]);
      assert.equal(up.size, 12 * MiB);
      assert.match(up.etag, /-3"$/, 'three 5 MiB-or-less parts');
      assert.equal(await objectSha256(t!.client, 'data', key), hash);
      const back = path.join(box.dir, `${label}-big.back`);
      // download_file above the threshold fetches ranges in parallel.
      await op(['download', key, back]);
      assert.equal(await hashFile(back), hash);
    });

    it('list_objects_v2_paginator_over_250_keys_in_pages_of_100', async () => {
      await op(['put-many', `${prefix}many/`, String(MANY)]);
      const expected = Array.from({ length: MANY }, (_, i) => `${prefix}many/${String(i).padStart(5, '0')}`);
      const paged = await op<{ keys: string[]; pages: number[] }>(['list', `${prefix}many/`, '100']);
      assert.deepEqual(paged.pages, [100, 100, 50]);
      assert.deepEqual(paged.keys, expected);
      const whole = await op<{ keys: string[]; pages: number[] }>(['list', `${prefix}many/`, '1000']);
      assert.deepEqual(whole.pages, [MANY]);
      assert.deepEqual(whole.keys, expected);
    });

    it('delete_objects_removes_every_key', async () => {
      // Its own keys: more than one page of 250 plus an odd one, under a prefix no other test uses.
      const mine = `${prefix}to-delete/`;
      await op(['put-many', `${mine}many/`, String(MANY)]);
      await op(['put-get', `${mine}dir with space/odd+key.txt`, 'delete me']);
      const before = await op<{ keys: string[] }>(['list', mine, '1000']);
      assert.equal(before.keys.length, MANY + 1, 'the keys to delete are there');
      const res = await op<{ deleted: number; errors: unknown[] }>(['delete-prefix', mine]);
      assert.deepEqual(res.errors, []);
      assert.equal(res.deleted, before.keys.length);
      const left = await t!.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: mine }));
      assert.equal(left.KeyCount, 0);
      await assert.rejects(t!.client.send(new HeadObjectCommand({ Bucket: 'data', Key: `${mine}dir with space/odd+key.txt` })));
    });
  });
}
