/**
 * `rebuild --from-backends`: a varied workload through the real orchestrator with replicas=2 (every
 * version on an s3rver backend and an fs backend), listings and HEADs captured, the metadata database
 * replaced by an empty one, the CLI rebuilds it, and a new orchestrator on the rebuilt database answers
 * the same listings, HEADs and bodies — apart from what docs/operations.md says cannot be recovered
 * (tags, checksums; a deleted key whose bytes were not yet removed comes back), which is checked too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { newVersionId, physicalKey } from '../../../src/backends/layout.js';
import { loadConfigFile } from '../../../src/config/load.js';
import { runFsck } from '../../../src/core/fsck.js';
import { runRebuildCommand } from '../../../src/cli/offline-cmd.js';
import { createLogger } from '../../../src/log.js';
import { freshDatabase, type TestDatabase } from '../../harness/db.js';
import { assertLedger, assertNoStrayBytes } from '../../harness/ledger.js';
import { BOTH_CREDS, clientFor, drainCleanup, OTHER_CREDS, startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';
import { S3RVER_CREDENTIALS } from '../../harness/s3rver.js';

const MiB = 1024 * 1024;
const LONG_KEY = (() => {
  let key = 'long/é/ключ/日本/🙂/';
  while (Buffer.byteLength(key) + 3 <= 1024) key += '語';
  while (Buffer.byteLength(key) < 1024) key += 'a';
  return key;
})();

/** What a client sees of one object: its listing entry, HEAD (headers, metadata, parts) and body digest. */
interface Seen {
  key: string;
  size: number;
  etag: string;
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
  metadata: Record<string, string>;
  partsCount?: number;
  part1Length?: number;
  md5: string;
  lastModified: number;
}

async function capture(client: S3Client, bucket: string): Promise<Seen[]> {
  const out: Seen[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: 7 }));
    for (const o of page.Contents ?? []) {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const md5 = createHash('md5').update(await body.Body!.transformToByteArray()).digest('hex');
      const seen: Seen = { key: o.Key!, size: o.Size!, etag: o.ETag!, metadata: h.Metadata ?? {}, md5, lastModified: h.LastModified!.getTime() };
      assert.equal(h.ETag, o.ETag, `${o.Key}: HEAD and LIST agree`);
      for (const [f, v] of [
        ['contentType', h.ContentType],
        ['contentEncoding', h.ContentEncoding],
        ['contentDisposition', h.ContentDisposition],
        ['contentLanguage', h.ContentLanguage],
        ['cacheControl', h.CacheControl],
        ['expires', h.ExpiresString],
      ] as const) {
        if (v !== undefined) seen[f] = v;
      }
      if (/-\d+"$/.test(o.ETag!)) {
        const p1 = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: o.Key!, PartNumber: 1 }));
        seen.partsCount = p1.PartsCount!;
        seen.part1Length = p1.ContentLength!;
      }
      out.push(seen);
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

async function multipart(client: S3Client, key: string, parts: Buffer[], extra: { ContentType?: string; Metadata?: Record<string, string> } = {}): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: key, ...extra }));
  const done = [];
  for (const [i, body] of parts.entries()) {
    const r = await client.send(new UploadPartCommand({ Bucket: 'data', Key: key, UploadId, PartNumber: i + 1, Body: body }));
    done.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  await client.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: key, UploadId, MultipartUpload: { Parts: done } }));
}

/** Waits until every live version has `n` live copies (the repair worker completes multipart replicas). */
async function converged(t: TestOrchestrator, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await t.orch.db.query<{ short: number }>(
      `SELECT count(*)::int8 AS short FROM object_versions v WHERE v.state = 'live'
         AND (SELECT count(*) FROM object_copies c WHERE c.version_id = v.version_id AND c.state = 'live') < $1`,
      [n],
    );
    if (rows[0]!.short === 0) return;
    assert.ok(Date.now() < deadline, `${rows[0]!.short} versions still below ${n} copies`);
    t.orch.wakeWorkers();
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('rebuild --from-backends', () => {
  let t: TestOrchestrator;
  let db2: TestDatabase | undefined;
  let orch2: Orchestrator | undefined;
  let client2: S3Client | undefined;
  let dir: string | undefined;
  const before_: Record<string, Seen[]> = {};
  let rebuildOut = '';

  before(async () => {
    t = await startTestOrchestrator({ s3rvers: 1, fsBackends: 1, strategy: 'spread', placement: { replicas: 2 } });
    const c = t.client;
    const put = (Key: string, Body: string | Buffer, extra: Record<string, unknown> = {}) => c.send(new PutObjectCommand({ Bucket: 'data', Key, Body, ...extra }));
    await put('plain.txt', 'first');
    await put('plain.txt', 'second, longer', { ContentType: 'text/plain; charset=utf-8', Metadata: { gen: '2' } });
    await put('plain.txt', 'third and final', { ContentType: 'text/markdown', CacheControl: 'max-age=60', Metadata: { gen: '3', who: 'me' } });
    await put('headers/all', 'h', {
      ContentType: 'application/vnd.test+json; q="1"',
      ContentEncoding: 'identity',
      ContentDisposition: 'attachment; filename="r.txt"',
      ContentLanguage: 'fr-CA',
      CacheControl: 'no-store',
      Expires: new Date('2039-12-01T16:00:00Z'),
      Metadata: { big: 'x'.repeat(1500), small: 'y' },
    });
    await put('empty', '');
    await put(LONG_KEY, 'long key', { Metadata: { note: 'the key is 1024 bytes' } });
    await put('ünïcödé/日本語/🙂 with spaces+plus%25', 'unicode');
    await put('a/b//c/d/', 'slashes');
    await put('tagged', 'has tags', { Tagging: 'color=blue' });
    for (let i = 0; i < 6; i++) await put(`dir/${i}`, `dir ${i}`.repeat(i + 1));
    await put('gone/1', 'to be deleted');
    await put('gone/2', 'to be deleted too');
    await c.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'gone/1' }));
    await c.send(new DeleteObjectCommand({ Bucket: 'data', Key: 'gone/2' }));
    await put('dir/3', 'overwritten after the first round');
    await multipart(c, 'mp/two-parts', [Buffer.alloc(5 * MiB, 1), Buffer.alloc(100, 2)], { ContentType: 'video/mp4', Metadata: { kind: 'multipart' } });
    await multipart(c, 'mp/one-part', [Buffer.from('a single small part')]);
    await c.send(new CopyObjectCommand({ Bucket: 'data', Key: 'mp/copied', CopySource: 'data/mp/two-parts' }));
    await c.send(
      new CopyObjectCommand({ Bucket: 'data', Key: 'copy/replaced', CopySource: 'data/plain.txt', MetadataDirective: 'REPLACE', ContentType: 'x/y', Metadata: { replaced: 'yes' } }),
    );
    await t.otherClient.send(new PutObjectCommand({ Bucket: 'other', Key: 'theirs', Body: 'other tenant', Metadata: { t: 'other' } }));
    await converged(t, 2);
    assert.equal(await drainCleanup(t), 0);
    before_['data'] = await capture(t.client, 'data');
    before_['other'] = await capture(t.otherClient, 'other');
    assert.equal(before_['data']!.length, 17);
    // Bytes whose deletion had not run when the database was lost: an older generation of a live key, and
    // the newest generation of a deleted key (written straight to the backends, as its retired copies were).
    const fs1 = t.orch.backends.get('fs-1')!;
    const s31 = t.orch.backends.get('s3-1')!;
    const older = newVersionId(Date.now() - 60_000);
    await s31.put(physicalKey('data', 'plain.txt', older), Readable.from([Buffer.from('stale')]), 5, { bucket: 'data', key: 'plain.txt', versionId: older });
    const ghost = newVersionId();
    for (const b of [fs1, s31]) {
      await b.put(physicalKey('data', 'gone/1', ghost), Readable.from([Buffer.from('to be deleted')]), 13, { bucket: 'data', key: 'gone/1', versionId: ghost, userMeta: {} });
    }
    try {
      await assertLedger(t.orch.db, 'before the loss');
    } finally {
      await t.orch.stop();
    }

    // The database is lost: a new, empty one, and the configuration file an operator would use.
    db2 = await freshDatabase();
    dir = await mkdtemp(path.join(os.tmpdir(), 's3o-rebuild-'));
    const s3 = t.servers[0]!;
    const cred = (c: { accessKeyId: string; secretAccessKey: string }) => ({ access_key_id: c.accessKeyId, secret_access_key: c.secretAccessKey });
    const raw = {
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: 'admin-test-token' } },
      database: { url: db2.config.url, schema: db2.config.schema },
      placement: { strategy: 'spread', replicas: 2 },
      backends: [
        { name: 's3-1', type: 's3', endpoint: s3.endpoint, bucket: s3.bucket, region: 'us-east-1', access_key_id: S3RVER_CREDENTIALS.accessKeyId, secret_access_key: S3RVER_CREDENTIALS.secretAccessKey, force_path_style: true },
        { name: 'fs-1', type: 'fs', path: path.join(t.dataDir, 'fs-1') },
      ],
      buckets: [
        { name: 'data', credentials: [cred(TEST_CREDS), cred(BOTH_CREDS)] },
        { name: 'other', credentials: [cred(OTHER_CREDS), cred(BOTH_CREDS)] },
      ],
    };
    const file = path.join(dir, 'orchestrator.yaml');
    await writeFile(file, JSON.stringify(raw, null, 1));
    const out: string[] = [];
    const err: string[] = [];
    const code = await runRebuildCommand(['--from-backends', '--config', file], { write: (s: string) => out.push(s) }, { write: (s: string) => err.push(s) });
    rebuildOut = out.join('');
    assert.equal(code, 0, err.join(''));
    const again: string[] = [];
    assert.equal(await runRebuildCommand(['--from-backends', '--config', file], { write: () => true }, { write: (s: string) => again.push(s) }), 1);
    assert.match(again.join(''), /refused: the metadata database is not empty \(19 object versions/);
    orch2 = await startOrchestrator(await loadConfigFile(file), { log: createLogger({ test: true }, 'error'), workers: false });
    client2 = clientFor(`http://127.0.0.1:${orch2.s3Port}`);
  });

  after(async () => {
    client2?.destroy();
    t?.client.destroy();
    t?.otherClient.destroy();
    try {
      if (orch2) {
        await assertLedger(orch2.db, 'rebuilt ledger');
        await assertNoStrayBytes(orch2.db, orch2.backends.all(), 'rebuilt');
      }
    } finally {
      await t?.orch.stop(); // idempotent: stopped already unless the workload failed
      await orch2?.stop();
      await Promise.all(t.servers.map((s) => s.stop()));
      await t.db.drop();
      await db2?.drop();
      await rm(t.dataDir, { recursive: true, force: true });
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });

  it('the_rebuild_reports_what_it_found', () => {
    assert.match(rebuildOut, /rebuilt: 19 objects .*, 38 copies, 3 multipart, 15 ETags computed from the bytes/);
    assert.match(rebuildOut, /buckets: data, other\n/);
    assert.match(rebuildOut, /queued for deletion: 1 objects/);
    assert.match(rebuildOut, /s3-1: data\/.* \(older generation\)/);
  });

  it('listings_heads_and_bodies_equal_those_before_the_loss', async () => {
    const other2 = clientFor(`http://127.0.0.1:${orch2!.s3Port}`, OTHER_CREDS);
    const afterOther = await capture(other2, 'other').finally(() => other2.destroy());
    const afterData = await capture(client2!, 'data');
    const comparable = (s: Seen[]) => s.map(({ lastModified: _l, ...rest }) => rest);
    // Documented: a deleted key whose bytes were still there comes back.
    const ghost = afterData.find((s) => s.key === 'gone/1');
    assert.ok(ghost, 'the deleted key whose bytes remained comes back (docs/operations.md)');
    assert.deepEqual(comparable(afterData.filter((s) => s.key !== 'gone/1')), comparable(before_['data']!));
    assert.deepEqual(comparable(afterOther), comparable(before_['other']!));
    // Last-Modified is when the bytes landed, within a second or two of the original publication.
    for (const s of afterData.filter((x) => x.key !== 'gone/1')) {
      const was = before_['data']!.find((b) => b.key === s.key)!;
      assert.ok(Math.abs(s.lastModified - was.lastModified) <= 2000, `${s.key}: Last-Modified ${s.lastModified} vs ${was.lastModified}`);
    }
  });

  it('what_cannot_be_recovered_is_as_documented', async () => {
    // Tags live only in the database.
    const tags = await client2!.send(new GetObjectTaggingCommand({ Bucket: 'data', Key: 'tagged' }));
    assert.deepEqual(tags.TagSet, []);
    // The older generation is not served, and its deletion is queued (counted in the ledger).
    const got = await client2!.send(new GetObjectCommand({ Bucket: 'data', Key: 'plain.txt' }));
    assert.equal(await got.Body!.transformToString(), 'third and final');
    const { rows } = await orch2!.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM tasks WHERE kind = 'delete-copy' AND payload->>'reason' = 'rebuild: older generation'`);
    assert.equal(rows[0]!.n, 1);
  });

  it('fsck_of_the_rebuilt_database_is_clean', async () => {
    const r = await runFsck(orch2!.db, orch2!.backends.all(), { defaultReplicas: 2, graceMs: 0 });
    assert.deepEqual(
      [r.orphans.count, r.missing.count, r.wrongSize.count, r.underReplicated.count, r.backendCounters.count, r.bucketCounters.count],
      [0, 0, 0, 0, 0, 0],
      JSON.stringify(r, null, 1),
    );
    assert.equal(r.backends.reduce((n, b) => n + b.objects, 0), 38 + 1, 'every copy, and the older generation awaiting deletion');
  });
});
