/**
 * s3cmd (Debian's /usr/bin/s3cmd 2.x, SigV4, path style through host_bucket = host_base) against a real
 * orchestrator: put, get, ls, del, sync (upload, modification, --delete-removed, download), a
 * multipart put (5 MiB chunks, 12 MiB file), cp/mv/modify/info, mb on the owned bucket, and
 * multipart/listmp/abortmp on an unfinished upload. Every download is compared by SHA-256.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import {
  createSandbox,
  describeFailure,
  generateTree,
  hashFile,
  hashTree,
  missingTool,
  objectSha256,
  runTool,
  s3cmdConfig,
  treeDiff,
  writePatternFile,
  type ToolResult,
  type ToolSandbox,
} from '../../harness/clients.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const S3CMD = '/usr/bin/s3cmd';
const skip = missingTool(S3CMD, 's3cmd');
const MiB = 1024 * 1024;

let t: TestOrchestrator;
let box: ToolSandbox;
let config: string;

function s3cmd(args: string[]): Promise<ToolResult> {
  return runTool(S3CMD, ['-c', config, '--no-progress', ...args], { env: box.env(), timeoutMs: 45_000 });
}

async function ok(args: string[]): Promise<string> {
  const r = await s3cmd(args);
  assert.equal(r.code, 0, describeFailure('s3cmd', args, r));
  return r.stdout;
}

async function remoteKeys(prefix: string): Promise<string[]> {
  const page = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

/** Stores `size` bytes under `key` with the SDK: what a test works on without relying on an earlier test's upload. */
async function putObject(key: string, size: number): Promise<void> {
  await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: Buffer.alloc(size, 7) }));
}

describe('s3cmd', { skip }, () => {
  before(async () => {
    t = await startTestOrchestrator();
    box = await createSandbox('s3cmd');
    config = await box.file('s3cfg', s3cmdConfig(t.endpoint, TEST_CREDS));
  });
  after(async () => {
    await t?.stop();
    await box?.cleanup();
  });

  it('put_get_roundtrip', async () => {
    const file = path.join(box.dir, 'one.bin');
    const hash = await writePatternFile(file, 300_001, 3);
    await ok(['put', file, 's3://data/s3cmd/one.bin']);
    assert.equal(await objectSha256(t.client, 'data', 's3cmd/one.bin'), hash);
    const back = path.join(box.dir, 'one.back');
    await ok(['get', '--force', 's3://data/s3cmd/one.bin', back]);
    assert.equal(await hashFile(back), hash);
  });

  it('put_odd_key_and_get_it_back', async () => {
    const file = path.join(box.dir, 'odd.txt');
    const hash = await writePatternFile(file, 777, 5);
    const key = 's3cmd/odd dir/plus+amp&é#.txt';
    await ok(['put', file, `s3://data/${key}`]);
    assert.equal(await objectSha256(t.client, 'data', key), hash);
    const back = path.join(box.dir, 'odd.back');
    await ok(['get', '--force', `s3://data/${key}`, back]);
    assert.equal(await hashFile(back), hash);
  });

  it('ls_shows_prefixes_and_objects', async () => {
    await putObject('s3cmd-ls/one.bin', 300_001);
    await putObject('s3cmd-ls/odd dir/plus+amp&é#.txt', 777);
    const top = await ok(['ls', 's3://data/']);
    assert.match(top, /DIR\s+s3:\/\/data\/s3cmd-ls\//);
    const flat = await ok(['ls', 's3://data/s3cmd-ls/']);
    assert.match(flat, /300001\s+s3:\/\/data\/s3cmd-ls\/one\.bin/);
    assert.match(flat, /DIR\s+s3:\/\/data\/s3cmd-ls\/odd dir\//);
    const rec = await ok(['ls', '-r', 's3://data/s3cmd-ls/']);
    assert.match(rec, /777\s+s3:\/\/data\/s3cmd-ls\/odd dir\/plus\+amp&é#\.txt/);
  });

  it('multipart_put_12MiB_in_5MiB_chunks', async () => {
    const file = path.join(box.dir, 'mp.bin');
    const hash = await writePatternFile(file, 12 * MiB, 12);
    await ok(['put', '--multipart-chunk-size-mb=5', file, 's3://data/s3cmd/mp.bin']);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 's3cmd/mp.bin' }));
    assert.equal(head.ContentLength, 12 * MiB);
    assert.match(head.ETag ?? '', /-3"$/, 'a 3-part multipart upload');
    assert.equal(await objectSha256(t.client, 'data', 's3cmd/mp.bin'), hash);
    const back = path.join(box.dir, 'mp.back');
    await ok(['get', '--force', 's3://data/s3cmd/mp.bin', back]);
    assert.equal(await hashFile(back), hash);
    await rm(back);
  });

  it('cp_mv_and_modify_are_server_side', async () => {
    await putObject('s3cmd/cp-src.bin', 300_001);
    const hash = await objectSha256(t.client, 'data', 's3cmd/cp-src.bin');
    await ok(['cp', 's3://data/s3cmd/cp-src.bin', 's3://data/s3cmd/copy.bin']);
    await ok(['mv', 's3://data/s3cmd/copy.bin', 's3://data/s3cmd/moved.bin']);
    assert.equal(await objectSha256(t.client, 'data', 's3cmd/moved.bin'), hash);
    assert.deepEqual((await remoteKeys('s3cmd/')).filter((k) => k === 'copy.bin'), []);
    // modify is a copy onto itself with REPLACE metadata.
    await ok(['modify', '--add-header=x-amz-meta-color:blue', 's3://data/s3cmd/moved.bin']);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 's3cmd/moved.bin' }));
    assert.equal(head.Metadata?.['color'], 'blue');
    assert.equal(await objectSha256(t.client, 'data', 's3cmd/moved.bin'), hash);
    assert.match(await ok(['info', 's3://data/s3cmd/moved.bin']), /x-amz-meta-color: blue/);
    await ok(['del', 's3://data/s3cmd/moved.bin']);
  });

  it('mb_on_the_owned_bucket_succeeds', async () => {
    await ok(['mb', 's3://data']);
    assert.match(await ok(['ls', 's3://']), /s3:\/\/data/);
  });

  it('multipart_listmp_and_abortmp_of_an_unfinished_upload', async () => {
    const key = 's3cmd/unfinished.bin';
    const created = await t.client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key }));
    const id = created.UploadId!;
    await t.client.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId: id, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 1) }));
    assert.match(await ok(['multipart', 's3://data']), new RegExp(`s3://data/${key}\\s+${id}`));
    assert.match(await ok(['listmp', `s3://data/${key}`, id]), new RegExp(`\\s1\\s+"[0-9a-f]{32}"\\s+${5 * MiB}`));
    await ok(['abortmp', `s3://data/${key}`, id]);
    assert.doesNotMatch(await ok(['multipart', 's3://data']), new RegExp(id));
    const left = await t.client.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
    assert.deepEqual(left.Uploads ?? [], []);
  });

  it('del_removes_the_object', async () => {
    await putObject('s3cmd/del.bin', 1000);
    assert.deepEqual((await remoteKeys('s3cmd/')).filter((k) => k === 'del.bin'), ['del.bin']);
    await ok(['del', 's3://data/s3cmd/del.bin']);
    assert.deepEqual((await remoteKeys('s3cmd/')).filter((k) => k === 'del.bin'), []);
    const r = await s3cmd(['get', '--force', 's3://data/s3cmd/del.bin', path.join(box.dir, 'gone')]);
    assert.notEqual(r.code, 0, 'getting a deleted object fails');
  });

  it('sync_up_modify_delete_removed_and_down', async () => {
    const src = path.join(box.dir, 'tree');
    const expected = await generateTree(src, { smallFiles: 25, oddNames: true });
    await ok(['sync', `${src}/`, 's3://data/sync/']);
    assert.deepEqual(await remoteKeys('sync/'), [...expected.keys()].sort());
    for (const [rel, hash] of expected) assert.equal(await objectSha256(t.client, 'data', `sync/${rel}`), hash, rel);

    const removed = 'd2/sub2/file-2.dat';
    const modified = 'd5/sub2/file-5.dat';
    await rm(path.join(src, removed));
    expected.delete(removed);
    expected.set(modified, await writePatternFile(path.join(src, modified), 4321, 999));
    await ok(['sync', '--delete-removed', `${src}/`, 's3://data/sync/']);
    assert.deepEqual(await remoteKeys('sync/'), [...expected.keys()].sort());
    assert.equal(await objectSha256(t.client, 'data', `sync/${modified}`), expected.get(modified));

    const down = path.join(box.dir, 'down');
    await ok(['sync', 's3://data/sync/', `${down}/`]);
    assert.deepEqual(treeDiff(expected, await hashTree(down)), []);
  });
});
