/**
 * Scrub and repair in a running orchestrator (real workers, fs and s3rver backends, replicas = 2): a copy
 * corrupted on disk with the same length is found by the deep scrub and a copy deleted from its backend by
 * the cheap scrub; each is marked bad and repaired from the good copy, reads keep answering the right
 * bytes, and the harness's ledger and stray-bytes checks pass at the end.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { FsBackendConfig } from '../../../src/config/types.js';
import { drainCleanup, startTestOrchestrator, type TestOrchestrator } from '../../harness/orchestrator.js';

interface CopyRow {
  backend: string;
  physical_key: string;
  state: string;
}

describe('scrub and repair in the orchestrator', () => {
  let t: TestOrchestrator;
  before(async () => {
    t = await startTestOrchestrator({
      fsBackends: 2,
      s3rvers: 1,
      placement: { replicas: 2 },
      workerSettings: { scrubIntervalMs: 1_000, scrubRate: 100, scrubDeepIntervalMs: 1_000, scrubBandwidth: 0 },
    });
  });
  after(async () => {
    await t?.stop();
  });

  const copies = async (key: string) =>
    (
      await t.orch.db.query<CopyRow>(
        `SELECT c.backend, c.physical_key, c.state FROM object_copies c JOIN object_versions v USING (version_id)
         WHERE v.bucket = 'data' AND v.key = $1 AND v.state = 'live' ORDER BY c.backend`,
        [key],
      )
    ).rows;
  const fsFile = (backend: string, key: string) => {
    const b = t.config.backends.find((x) => x.name === backend) as FsBackendConfig;
    return path.join(b.path, key);
  };
  const get = async (key: string) => {
    const r = await t.client.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray()).toString();
  };
  /** Waits until `ok` holds for the key's copies (the workers run on their own). */
  async function until(key: string, ok: (c: CopyRow[]) => boolean, what: string, ms = 30_000): Promise<CopyRow[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const c = await copies(key);
      if (ok(c)) return c;
      if (Date.now() > deadline) assert.fail(`${what}: copies are ${JSON.stringify(c)}`);
      t.orch.wakeWorkers();
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a copy corrupted on disk (same length) is found by the deep scrub and replaced', async () => {
    const body = 'the bytes that must survive bit rot';
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'rot.txt', Body: body }));
    const before = await until('rot.txt', (c) => c.length === 2 && c.every((x) => x.state === 'live'), 'two copies written');
    const victim = before.find((c) => c.backend.startsWith('fs-'))!;
    await writeFile(fsFile(victim.backend, victim.physical_key), body.replace('bit', 'BIT'));
    const after = await until(
      'rot.txt',
      (c) => c.length === 2 && c.every((x) => x.state === 'live') && !c.some((x) => x.backend === victim.backend && x.physical_key === victim.physical_key),
      'the corrupt copy replaced',
    );
    assert.notDeepEqual(after, before);
    for (let i = 0; i < 3; i++) assert.equal(await get('rot.txt'), body);
  });

  test('a copy deleted from its backend is found by the cheap scrub and replaced', async () => {
    const body = 'a copy that vanishes';
    await t.client.send(new PutObjectCommand({ Bucket: 'data', Key: 'gone.txt', Body: body }));
    const before = await until('gone.txt', (c) => c.length === 2 && c.every((x) => x.state === 'live'), 'two copies written');
    const victim = before.find((c) => c.backend.startsWith('fs-'))!;
    await rm(fsFile(victim.backend, victim.physical_key));
    await until(
      'gone.txt',
      (c) => c.length === 2 && c.every((x) => x.state === 'live') && !c.some((x) => x.backend === victim.backend && x.physical_key === victim.physical_key),
      'the missing copy replaced',
    );
    assert.equal(await get('gone.txt'), body);
    assert.equal(await drainCleanup(t), 0);
  });
});
