/**
 * The Debian aws cli (/usr/bin/aws, awscli 2.9) `s3` commands against a real orchestrator: cp both ways
 * and from stdin, ls, rm, sync and presign. Skipped with a message when /usr/bin/aws is absent. The s3api
 * commands and the transfers (single PUT, multipart) are in aws-cli-s3api.test.ts and
 * aws-cli-transfer.test.ts; the helpers in aws.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { AWS, skip, startAwsCli, type AwsCli, type CliResult } from './aws.js';

let c: AwsCli;

describe('aws cli: s3 commands', { skip }, () => {
  before(async () => {
    c = await startAwsCli();
  });
  after(async () => {
    await c?.close();
  });

  it('s3_cp_upload_and_download_roundtrip', async () => {
    const src = path.join(c.dir, 'small.txt');
    await writeFile(src, 'hello from the aws cli\n');
    await c.ok(['s3', 'cp', src, 's3://data/cli/small.txt']);
    assert.equal((await c.objectBytes('cli/small.txt')).toString(), 'hello from the aws cli\n');
    const dst = path.join(c.dir, 'small.back');
    await c.ok(['s3', 'cp', 's3://data/cli/small.txt', dst]);
    assert.equal(await readFile(dst, 'utf8'), 'hello from the aws cli\n');
  });

  it('s3_cp_from_stdin', async () => {
    const r = await new Promise<CliResult>((resolve) => {
      const child = execFile(AWS, ['--endpoint-url', c.t.endpoint, 's3', 'cp', '-', 's3://data/cli/stdin.txt'], { env: c.env(), encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
      child.stdin!.end('piped through stdin\n');
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await c.objectBytes('cli/stdin.txt')).toString(), 'piped through stdin\n');
  });

  it('s3_ls_buckets_prefixes_and_objects', async () => {
    await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/a.txt', Body: 'aaaa' }));
    await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/sub/b.txt', Body: 'bb' }));
    await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'ls/with space.txt', Body: 's' }));
    const buckets = await c.ok(['s3', 'ls']);
    assert.match(buckets, /\bdata$/m);
    assert.doesNotMatch(buckets, /\bother$/m, 'only the credential’s buckets');
    const top = await c.ok(['s3', 'ls', 's3://data/ls/']);
    assert.match(top, /PRE sub\/$/m);
    assert.match(top, /\s4 a\.txt$/m);
    assert.match(top, /\s1 with space\.txt$/m);
    const rec = await c.ok(['s3', 'ls', '--recursive', 's3://data/ls/']);
    assert.deepEqual(
      rec.trim().split('\n').map((l) => l.replace(/^\S+ \S+\s+\d+ /, '')),
      ['ls/a.txt', 'ls/sub/b.txt', 'ls/with space.txt'],
    );
  });

  it('s3_rm_single_and_recursive', async () => {
    for (const k of ['rm/one', 'rm/dir/two', 'rm/dir/three']) {
      await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: k, Body: k }));
    }
    await c.ok(['s3', 'rm', 's3://data/rm/one']);
    assert.equal(await c.exists('rm/one'), false);
    const out = await c.ok(['s3', 'rm', '--recursive', 's3://data/rm/dir/']);
    assert.match(out, /delete: s3:\/\/data\/rm\/dir\/two/);
    const left = await c.t.client.send(new ListObjectsV2Command({ Bucket: 'data', Prefix: 'rm/' }));
    assert.equal(left.KeyCount, 0);
  });

  it('s3_sync_directory', async () => {
    const src = path.join(c.dir, 'tree');
    await mkdir(path.join(src, 'nested', 'deeper'), { recursive: true });
    const files: Record<string, string> = {
      'top.txt': 'top',
      'nested/one.txt': 'one',
      'nested/deeper/two + three.txt': 'two',
      'nested/ünï.txt': 'unicode',
    };
    for (const [rel, body] of Object.entries(files)) await writeFile(path.join(src, rel), body);
    await c.ok(['s3', 'sync', src, 's3://data/sync/']);
    for (const [rel, body] of Object.entries(files)) assert.equal((await c.objectBytes(`sync/${rel}`)).toString(), body, rel);
    // A second sync has nothing to do.
    const again = await c.ok(['s3', 'sync', src, 's3://data/sync/']);
    assert.equal(again.trim(), '');
    const back = path.join(c.dir, 'tree-back');
    await c.ok(['s3', 'sync', 's3://data/sync/', back]);
    for (const [rel, body] of Object.entries(files)) assert.equal(await readFile(path.join(back, rel), 'utf8'), body);
  });

  it('s3_presign_url_is_fetchable', async () => {
    await c.t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'cli/presign me.txt', Body: 'presigned by the cli' }));
    const url = (await c.ok(['s3', 'presign', 's3://data/cli/presign me.txt', '--expires-in', '300'])).trim();
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'presigned by the cli');
  });
});
