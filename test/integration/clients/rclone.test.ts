/**
 * rclone (Debian's /usr/bin/rclone) against a real orchestrator through an `[orch]` S3 remote
 * (provider Other, path style): copy a tree with a file above the multipart cutoff, lsf, check, sync with
 * a modification, a deletion and an addition, delete, and copy back down. Every download is compared by
 * SHA-256 with the local original. Retries are off so a server error fails the test instead of hiding.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  createSandbox,
  describeFailure,
  generateTree,
  hashTree,
  missingTool,
  objectSha256,
  rcloneConfig,
  runTool,
  treeDiff,
  writePatternFile,
  type ToolResult,
  type ToolSandbox,
} from '../../harness/clients.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const RCLONE = '/usr/bin/rclone';
const skip = missingTool(RCLONE, 'rclone');
const MiB = 1024 * 1024;
/** Multipart above 5 MiB in 5 MiB parts, so the 12 MiB file goes up in three parts. */
const MULTIPART = ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M'];

let t: TestOrchestrator;
let box: ToolSandbox;
let config: string;
let src: string;
let expected: Map<string, string>;

function rclone(args: string[]): Promise<ToolResult> {
  const full = ['--config', config, '--retries', '1', '--low-level-retries', '1', '--stats', '0', ...args];
  return runTool(RCLONE, full, { env: box.env({ RCLONE_CONFIG: config }), timeoutMs: 45_000 });
}

async function ok(args: string[]): Promise<string> {
  const r = await rclone(args);
  assert.equal(r.code, 0, describeFailure('rclone', args, r));
  return r.stdout;
}

/** Every key under `prefix` through the orchestrator (not through rclone), relative to the prefix. */
async function remoteKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!.slice(prefix.length));
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

/**
 * Makes orch:data/rc hold the local tree as `expected` describes it, whatever the tests before did to either
 * (nothing to transfer after the copy test), so every test that works on the uploaded tree passes alone.
 */
async function remoteHoldsTree(): Promise<void> {
  await ok(['sync', src, 'orch:data/rc', ...MULTIPART]);
  assert.deepEqual(await remoteKeys('rc/'), [...expected.keys()].sort(), 'the remote holds the local tree');
}

describe('rclone', { skip }, () => {
  before(async () => {
    t = await startTestOrchestrator();
    box = await createSandbox('rclone');
    config = await box.file('rclone.conf', rcloneConfig(t.endpoint, TEST_CREDS));
    src = path.join(box.dir, 'src');
    expected = await generateTree(src, { smallFiles: 40, bigSizes: [12 * MiB], oddNames: true });
  });
  after(async () => {
    await t?.stop();
    await box?.cleanup();
  });

  it('copy_tree_with_multipart_file_then_every_object_matches', async () => {
    await ok(['copy', src, 'orch:data/rc', ...MULTIPART]);
    assert.deepEqual(await remoteKeys('rc/'), [...expected.keys()].sort());
    for (const [rel, hash] of expected) assert.equal(await objectSha256(t.client, 'data', `rc/${rel}`), hash, rel);
    const big = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'rc/big/0/blob-0.bin' }));
    assert.equal(big.ContentLength, 12 * MiB);
    assert.match(big.ETag ?? '', /-3"$/, 'the 12 MiB file went up as a 3-part multipart upload');
  });

  it('lsf_lists_the_tree', async () => {
    await remoteHoldsTree();
    const listed = (await ok(['lsf', '-R', '--files-only', 'orch:data/rc'])).split('\n').filter(Boolean).sort();
    assert.deepEqual(listed, [...expected.keys()].sort());
  });

  it('check_reports_zero_differences', async () => {
    await remoteHoldsTree();
    const r = await rclone(['check', src, 'orch:data/rc']);
    assert.equal(r.code, 0, describeFailure('rclone', ['check'], r));
    assert.match(r.stderr, /0 differences found/);
    assert.doesNotMatch(r.stderr, /hashes could not be checked/, 'md5 of every object, multipart included, is comparable');
  });

  it('check_detects_a_difference', async () => {
    // The remote gets a different body under an existing name: check must notice (proves check is real).
    const other = path.join(box.dir, 'other');
    await writePatternFile(path.join(other, 'd1/sub1/file-1.dat'), 5000, 999);
    await ok(['copyto', path.join(other, 'd1/sub1/file-1.dat'), 'orch:data/rc-check/d1/sub1/file-1.dat']);
    await ok(['copyto', path.join(src, 'd2/sub2/file-2.dat'), 'orch:data/rc-check/d2/sub2/file-2.dat']);
    const r = await rclone(['check', '--one-way', path.join(box.dir, 'src'), 'orch:data/rc-check', '--include', '/d1/**', '--include', '/d2/**']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /[1-9]\d* differences found/);
    await ok(['purge', 'orch:data/rc-check']);
  });

  it('sync_with_deletion_modification_and_addition', async () => {
    await remoteHoldsTree(); // so the file removed below is on the remote, for the sync to delete
    const removed = 'd3/sub0/file-3.dat';
    const modified = 'd4/sub1/file-4.dat';
    const added = 'new/dir/added.bin';
    await rm(path.join(src, removed));
    expected.delete(removed);
    expected.set(modified, await writePatternFile(path.join(src, modified), 6 * MiB + 17, 4242));
    expected.set(added, await writePatternFile(path.join(src, added), 1234, 77));
    await ok(['sync', src, 'orch:data/rc', ...MULTIPART]);
    assert.deepEqual(await remoteKeys('rc/'), [...expected.keys()].sort());
    assert.equal(await objectSha256(t.client, 'data', `rc/${modified}`), expected.get(modified));
    assert.equal(await objectSha256(t.client, 'data', `rc/${added}`), expected.get(added));
    const r = await rclone(['check', src, 'orch:data/rc']);
    assert.equal(r.code, 0, describeFailure('rclone', ['check after sync'], r));
    assert.match(r.stderr, /0 differences found/);
  });

  it('copy_back_down_is_byte_identical', async () => {
    await remoteHoldsTree();
    const back = path.join(box.dir, 'back');
    await ok(['copy', 'orch:data/rc', back, '--multi-thread-cutoff', '4M', '--multi-thread-streams', '3']);
    assert.deepEqual(treeDiff(expected, await hashTree(back)), []);
    await rm(back, { recursive: true, force: true });
  });

  it('server_side_copy_above_copy_cutoff_is_a_multipart_copy', async () => {
    // Above --s3-copy-cutoff rclone copies with CreateMultipartUpload + UploadPartCopy ranges + Complete.
    await remoteHoldsTree();
    await ok(['copyto', 'orch:data/rc/big/0/blob-0.bin', 'orch:data/rc-copy/big.bin', '--s3-copy-cutoff', '5M']);
    const head = await t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'rc-copy/big.bin' }));
    assert.match(head.ETag ?? '', /-3"$/, 'three copied parts');
    assert.equal(await objectSha256(t.client, 'data', 'rc-copy/big.bin'), expected.get('big/0/blob-0.bin'));
    await ok(['moveto', 'orch:data/rc-copy/big.bin', 'orch:data/rc-copy/moved.bin']);
    assert.deepEqual(await remoteKeys('rc-copy/'), ['moved.bin']);
    assert.equal(await objectSha256(t.client, 'data', 'rc-copy/moved.bin'), expected.get('big/0/blob-0.bin'));
    await ok(['purge', 'orch:data/rc-copy']);
  });

  it('delete_removes_only_the_filtered_objects', async () => {
    await remoteHoldsTree();
    await ok(['delete', 'orch:data/rc', '--include', '/d0/**']);
    const left = await remoteKeys('rc/');
    assert.deepEqual(left, [...expected.keys()].filter((k) => !k.startsWith('d0/')).sort());
    // The only file of its directory (the multipart one): nothing is left under that directory.
    await ok(['deletefile', 'orch:data/rc/big/0/blob-0.bin']);
    assert.equal((await remoteKeys('rc/big/0/')).length, 0);
    await ok(['purge', 'orch:data/rc']);
    assert.deepEqual(await remoteKeys('rc/'), []);
  });
});
