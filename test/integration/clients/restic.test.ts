/**
 * restic (Debian's /usr/bin/restic, minio-go underneath) with a repository inside the orchestrator
 * (`-r s3:http://127.0.0.1:PORT/data/repo`): init, back up a generated tree (a few hundred files in nested
 * directories, odd names, files above 5 MiB), check --read-data (which downloads and verifies every pack),
 * restore, and compare the restored tree with the original byte for byte; then a second backup after
 * changes that adds a 40 MiB file with 32 MiB packs (30+ MiB streaming-signed PUTs), forget --prune (deletes packs
 * and rewrites indexes) and another full check and restore.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  createSandbox,
  describeFailure,
  generateTree,
  hashTree,
  missingTool,
  runTool,
  treeDiff,
  writePatternFile,
  type ToolResult,
  type ToolSandbox,
} from '../../harness/clients.js';
import { TEST_CREDS, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

const RESTIC = '/usr/bin/restic';
const skip = missingTool(RESTIC, 'restic');
const MiB = 1024 * 1024;

let t: TestOrchestrator;
let box: ToolSandbox;
let src: string;
let expected: Map<string, string>;

function restic(args: string[]): Promise<ToolResult> {
  const env = box.env({
    RESTIC_PASSWORD: 'correct horse battery staple',
    RESTIC_REPOSITORY: `s3:${t.endpoint}/data/repo`,
    RESTIC_CACHE_DIR: path.join(box.dir, 'cache'),
    AWS_ACCESS_KEY_ID: TEST_CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDS.secretAccessKey,
  });
  return runTool(RESTIC, args, { env, cwd: box.dir, timeoutMs: 50_000 });
}

async function ok(args: string[]): Promise<string> {
  const r = await restic(args);
  assert.equal(r.code, 0, describeFailure('restic', args, r));
  return r.stdout;
}

/**
 * The repository's first steps, each run once per process and awaited by every test that builds on it, so
 * each test passes alone as well as after the others (in a full run the test named after a step runs it).
 */
let initOnce: Promise<string> | undefined;
let backupOnce: Promise<string> | undefined;
const initRepo = () => (initOnce ??= ok(['init']));
const firstBackup = () => (backupOnce ??= initRepo().then(() => ok(['backup', '--json', 'src'])));

/** Size of the largest object under repo/data/ (restic's pack files). */
async function biggestPack(): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const page = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'repo/data/', ContinuationToken: token }));
    for (const o of page.Contents ?? []) n = Math.max(n, o.Size ?? 0);
    token = page.NextContinuationToken;
  } while (token);
  return n;
}

/** Restores `snapshot` into a fresh directory and returns the hashes of the restored copy of `src`. */
async function restored(snapshot: string): Promise<Map<string, string>> {
  const target = path.join(box.dir, `restore-${snapshot}`);
  await rm(target, { recursive: true, force: true });
  await ok(['restore', snapshot, '--target', target]);
  const tree = await hashTree(path.join(target, 'src'));
  await rm(target, { recursive: true, force: true });
  return tree;
}

describe('restic', { skip }, () => {
  before(async () => {
    t = await startTestOrchestrator();
    box = await createSandbox('restic');
    src = path.join(box.dir, 'src');
    expected = await generateTree(src, { smallFiles: 300, bigSizes: [6 * MiB + 3, 9 * MiB], oddNames: true });
  });
  after(async () => {
    await t?.stop();
    await box?.cleanup();
  });

  it('init_creates_the_repository_under_the_prefix', async () => {
    await initRepo();
    const listed = await t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'repo/' }));
    assert.ok((listed.Contents ?? []).some((o) => o.Key === 'repo/config'), 'repo/config exists');
  });

  it('backup_of_a_tree_with_big_files_and_odd_names', async () => {
    const out = await firstBackup();
    const summary = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { message_type: string; total_files_processed?: number; snapshot_id?: string })
      .find((m) => m.message_type === 'summary');
    assert.equal(summary?.total_files_processed, expected.size);
  });

  it('check_read_data_finds_no_errors', async () => {
    await firstBackup();
    const out = await ok(['check', '--read-data']);
    assert.match(out, /no errors were found/);
  });

  it('restore_is_byte_identical', async () => {
    await firstBackup();
    assert.deepEqual(treeDiff(expected, await restored('latest')), []);
  });

  it('second_backup_forget_prune_then_check_and_restore', async () => {
    await firstBackup();
    const changed = 'big/1/blob-1.bin';
    const removed = 'd0/sub0/file-21.dat';
    expected.set(changed, await writePatternFile(path.join(src, changed), 7 * MiB, 4711));
    await rm(path.join(src, removed));
    expected.delete(removed);
    // A 40 MiB file with 32 MiB packs: restic sends each pack as one streaming-signed PUT (it sets a
    // part size that keeps minio-go off multipart), so this is a 30+ MiB aws-chunked body.
    const added = 'big/2/blob-2.bin';
    expected.set(added, await writePatternFile(path.join(src, added), 40 * MiB, 4712));
    await ok(['backup', '--pack-size', '32', 'src']);
    assert.ok((await biggestPack()) > 30 * MiB, 'a pack above 30 MiB went up');
    await ok(['forget', '--keep-last', '1', '--prune']);
    const snaps = JSON.parse(await ok(['snapshots', '--json'])) as unknown[];
    assert.equal(snaps.length, 1);
    assert.match(await ok(['check', '--read-data']), /no errors were found/);
    assert.deepEqual(treeDiff(expected, await restored('latest')), []);
  });
});
