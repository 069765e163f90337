/**
 * The offline tools on a zero-config deployment (`--data DIR`: embedded PostgreSQL in DIR/pg, fs backends
 * local1 and local2): fsck of the stopped deployment is clean; with DIR/pg replaced by a new database,
 * rebuild restores the demo bucket's objects, and the next start serves them (with a new demo credential).
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { runFsckCommand, runRebuildCommand } from '../../../src/cli/offline-cmd.js';
import { zeroConfig } from '../../../src/config/defaults.js';
import type { Config } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';
import { embeddedTemplateCopy } from '../../harness/db.js';
import { clientFor } from '../../harness/orchestrator.js';

function config(dir: string): Config {
  const c = zeroConfig(dir);
  return { ...c, server: { ...c.server, s3: { ...c.server.s3, port: 0 }, admin: { ...c.server.admin, port: 0 } } };
}

async function cli(run: typeof runFsckCommand, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { write: (x: string) => out.push(x) }, { write: (x: string) => err.push(x) });
  return { code, out: out.join(''), err: err.join('') };
}

describe('fsck and rebuild with --data DIR (zero-config)', () => {
  let dir: string | undefined;
  let orch: Orchestrator | undefined;
  after(async () => {
    await orch?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fsck_is_clean_and_a_rebuild_into_a_new_database_serves_the_same_objects', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-offline-zc-'));
    await chmod(dir, 0o755); // the embedded server runs as postgres when the tests run as root
    await embeddedTemplateCopy(path.join(dir, 'pg'));
    const log = createLogger({ test: true }, 'error');
    orch = await startOrchestrator(config(dir), { log });
    const demo = orch.demo!;
    let client = clientFor(`http://127.0.0.1:${orch.s3Port}`, demo);
    const objects: Record<string, string> = { 'a.txt': 'alpha', 'dir/b.txt': 'bravo '.repeat(100), 'ünï/c': 'charlie' };
    for (const [Key, Body] of Object.entries(objects)) {
      await client.send(new PutObjectCommand({ Bucket: demo.bucket, Key, Body, Metadata: { k: Key.length.toString() } }));
    }
    client.destroy();
    await orch.stop();
    orch = undefined;

    const checked = await cli(runFsckCommand, ['--data', dir, '--grace', '0']);
    assert.equal(checked.code, 0, checked.out + checked.err);
    assert.match(checked.out, /^backend local1: /m);
    assert.match(checked.out, /\nclean\n$/);

    await rename(path.join(dir, 'pg'), path.join(dir, 'pg-lost'));
    await embeddedTemplateCopy(path.join(dir, 'pg'));
    const rebuilt = await cli(runRebuildCommand, ['--from-backends', '--data', dir]);
    assert.equal(rebuilt.code, 0, rebuilt.out + rebuilt.err);
    assert.match(rebuilt.out, /rebuilt: 3 objects/);

    orch = await startOrchestrator(config(dir), { log });
    assert.equal(orch.demo!.created, true, 'the demo credential lived in the lost database: a new one is made');
    client = clientFor(`http://127.0.0.1:${orch.s3Port}`, orch.demo!);
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'demo' }));
      assert.deepEqual((listed.Contents ?? []).map((c) => c.Key), Object.keys(objects).sort());
      for (const [Key, Body] of Object.entries(objects)) {
        const got = await client.send(new GetObjectCommand({ Bucket: 'demo', Key }));
        assert.equal(await got.Body!.transformToString(), Body);
        assert.deepEqual(got.Metadata, { k: Key.length.toString() });
      }
    } finally {
      client.destroy();
    }
  });
});
