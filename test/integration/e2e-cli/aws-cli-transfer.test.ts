/**
 * The Debian aws cli (/usr/bin/aws) transferring objects that matter by their size: `s3 cp` as one
 * streamed PUT (multipart threshold raised to 1 GB), `s3 cp` above the default 8 MiB threshold (the cli's
 * multipart upload), and a multipart upload by hand with s3api (create, upload-part, list-parts,
 * list-multipart-uploads, complete, abort). Sizes are the smallest that keep the point: 16 MiB (bigger
 * than the cli's default threshold and than any buffer in the path), 9 MiB (two cli parts), 5 MiB + 1000
 * bytes (S3's minimum part, then a short last part). Skipped when /usr/bin/aws is absent. Helpers in aws.ts.
 */
import { writePatternFile } from '../../harness/clients.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { sha256, skip, startAwsCli, type AwsCli } from './aws.js';

let c: AwsCli;

describe('aws cli: transfers', { skip }, () => {
  before(async () => {
    c = await startAwsCli();
  });
  after(async () => {
    await c?.close();
  });

  it('s3_cp_16MiB_single_put', async () => {
    const src = path.join(c.dir, 'big.bin');
    const size = 16 * 1024 * 1024;
    const hash = await writePatternFile(src, size);
    await c.ok(['s3', 'cp', src, 's3://data/cli/big.bin']);
    const head = await c.t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cli/big.bin' }));
    assert.equal(head.ContentLength, size);
    assert.doesNotMatch(head.ETag ?? '', /-/, 'a single PUT, not a multipart upload');
    const dst = path.join(c.dir, 'big.back');
    await c.ok(['s3', 'cp', 's3://data/cli/big.bin', dst]);
    assert.equal(sha256(await readFile(dst)), hash);
    await rm(dst);
  });

  it('s3_cp_above_multipart_threshold', async () => {
    // With the cli's default 8 MiB threshold it uses a multipart upload.
    const src = path.join(c.dir, 'mp.bin');
    const size = 9 * 1024 * 1024;
    const hash = await writePatternFile(src, size);
    await c.ok(['s3', 'cp', src, 's3://data/cli/multipart.bin'], { config: c.defaultConfig });
    const head = await c.t.client.send(new HeadObjectCommand({ Bucket: 'data', Key: 'cli/multipart.bin' }));
    assert.equal(head.ContentLength, size);
    assert.match(head.ETag ?? '', /^"[0-9a-f]{32}-2"$/, 'two 8 MiB parts');
    assert.equal(sha256(await c.objectBytes('cli/multipart.bin')), hash);
  });

  it('s3api_multipart_by_hand', async () => {
    const parts = [path.join(c.dir, 'p1.bin'), path.join(c.dir, 'p2.bin')];
    const h1 = await writePatternFile(parts[0]!, 5 * 1024 * 1024, 11);
    await writePatternFile(parts[1]!, 1000, 12);
    const created = JSON.parse(await c.ok(['s3api', 'create-multipart-upload', '--bucket', 'data', '--key', 'cli/by-hand.bin'])) as { UploadId: string };
    const etags: string[] = [];
    for (const [i, file] of parts.entries()) {
      const r = JSON.parse(
        await c.ok(['s3api', 'upload-part', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId, '--part-number', String(i + 1), '--body', file]),
      ) as { ETag: string };
      etags.push(r.ETag);
    }
    const listed = JSON.parse(await c.ok(['s3api', 'list-parts', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId])) as {
      Parts: { PartNumber: number; ETag: string; Size: number }[];
    };
    assert.deepEqual(listed.Parts.map((p) => [p.PartNumber, p.ETag, p.Size]), [[1, etags[0], 5 * 1024 * 1024], [2, etags[1], 1000]]);
    const uploads = JSON.parse(await c.ok(['s3api', 'list-multipart-uploads', '--bucket', 'data', '--prefix', 'cli/by-hand'])) as { Uploads?: { UploadId: string }[] };
    assert.deepEqual(uploads.Uploads?.map((u) => u.UploadId), [created.UploadId]);
    const spec = path.join(c.dir, 'complete.json');
    await writeFile(spec, JSON.stringify({ Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) }));
    const done = JSON.parse(
      await c.ok(['s3api', 'complete-multipart-upload', '--bucket', 'data', '--key', 'cli/by-hand.bin', '--upload-id', created.UploadId, '--multipart-upload', `file://${spec}`]),
    ) as { ETag: string };
    assert.match(done.ETag, /^"[0-9a-f]{32}-2"$/);
    const bytes = await c.objectBytes('cli/by-hand.bin');
    assert.equal(bytes.length, 5 * 1024 * 1024 + 1000);
    assert.equal(sha256(bytes.subarray(0, 5 * 1024 * 1024)), h1);
    // An abandoned upload can be aborted by hand and disappears from the listing.
    const second = JSON.parse(await c.ok(['s3api', 'create-multipart-upload', '--bucket', 'data', '--key', 'cli/aborted.bin'])) as { UploadId: string };
    await c.ok(['s3api', 'abort-multipart-upload', '--bucket', 'data', '--key', 'cli/aborted.bin', '--upload-id', second.UploadId]);
    const after = JSON.parse((await c.ok(['s3api', 'list-multipart-uploads', '--bucket', 'data', '--prefix', 'cli/aborted'])) || '{}') as { Uploads?: unknown[] };
    assert.equal(after.Uploads?.length ?? 0, 0);
  });
});
