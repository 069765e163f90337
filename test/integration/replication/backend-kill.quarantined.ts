/**
 * A backend process killed under load with `placement.replicas: 2` (issue 8, "Proven by tests").
 *
 * Two s3rver processes (s3-1 read first: read_priority 0) serve an orchestrator with `write_quorum: 1`; a
 * second orchestrator instance on the same database and backends has `write_quorum: 2`. A mixed load of
 * PUT / overwrite / GET runs through @aws-sdk/client-s3 (no SDK retries: every failure counts) while s3-1
 * is SIGKILLed, and three GETs of 20 MiB objects are held mid-body (1 MiB read, the rest paused) across the
 * kill. Then:
 * - no GET of an acknowledged object failed, and every body is byte-exact — including the three in flight,
 *   whose copy on s3-1 died with more than the loopback socket buffers can hold still unsent (a held
 *   GET has s3-1 about 12 MB ahead of the client here; the objects are 20 MiB), so they can only have completed by resuming from s3-2 at the exact offset;
 * - PUTs kept succeeding at quorum 1, and the quorum-2 instance answers a clear 503 ServiceUnavailable for a
 *   new key and an overwrite, leaving the old content in place;
 * - s3-1 restarts on the same port and directory; the repair worker brings every live version back to two
 *   live copies on distinct backends, each copy byte-exact on its backend, and the ledger holds.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { createLogger } from '../../../src/log.js';
import { drainCleanup, startTestOrchestrator, TEST_CREDS, type TestOrchestrator } from '../../harness/orchestrator.js';
import { assertLedger } from '../../harness/ledger.js';
import { s3BackendConfig, startS3rver, type S3rverInstance } from '../../harness/s3rver.js';

const BIG = 20 * 1024 * 1024;
const BUCKET = 'data';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client that never retries (a failure the SDK would hide counts) over a small keep-alive pool. */
function strictClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: TEST_CREDS,
    maxAttempts: 1,
    // Idle sockets close before the server's keep-alive timeout, so no request goes out on a closing socket.
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 16, timeout: 2_000 }) },
  });
}

async function put(client: S3Client, key: string, body: Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: body.length }));
}

/** GET of a whole object: its length and SHA-256. */
async function get(client: S3Client, key: string): Promise<{ size: number; sha: string }> {
  const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const h = createHash('sha256');
  let size = 0;
  for await (const c of res.Body as Readable) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  if (res.ContentLength !== undefined && res.ContentLength !== size) throw new Error(`GET ${key}: ${size} of ${res.ContentLength} bytes`);
  return { size, sha: h.digest('hex') };
}

/** One PUT of a key as the load saw it. */
interface Written {
  sha: string;
  state: 'pending' | 'acked' | 'failed';
}

/** The PUTs of one key (one writer per key, so they are sequential) and the last acknowledged one. */
interface KeyLog {
  puts: Written[];
  acked: number;
}

describe('replicas=2: a backend process SIGKILLed under a mixed load', () => {
  let dirs: string[];
  let servers: S3rverInstance[];
  let t: TestOrchestrator;
  let client: S3Client;
  let quorum2: Orchestrator;
  let client2: S3Client;
  /** s3-1 is SIGKILLed by the test and restarted by it, or by after() when a step failed in between. */
  let s3OneDown = false;

  before(async () => {
    dirs = await Promise.all([0, 1].map(() => mkdtemp(path.join(os.tmpdir(), 's3o-kill-'))));
    // Directories of our own: stop() (SIGKILL) keeps them, so a backend can come back with its data.
    servers = await Promise.all(dirs.map((directory) => startS3rver({ directory })));
    t = await startTestOrchestrator({
      s3rvers: 0,
      fsBackends: 0,
      extraBackends: [
        { ...s3BackendConfig(servers[0]!, 's3-1'), readPriority: 0 },
        { ...s3BackendConfig(servers[1]!, 's3-2'), readPriority: 1 },
      ],
      placement: { replicas: 2, write_quorum: 1 },
      breaker: { cooldown: '1s' },
      // Overwritten copies are deleted 3 s later (not at once, the harness default): a GET that found the
      // version just before an overwrite can still read it, as with the 30 s default in production.
      workerSettings: { cleanupDelayMs: 3_000 },
    });
    client = strictClient(t.endpoint);
    const log = createLogger({ test: 'quorum2' }, (process.env.S3O_LOG_LEVEL as 'debug' | undefined) ?? 'error');
    quorum2 = await startOrchestrator({ ...t.config, placement: { ...t.config.placement, writeQuorum: 2 } }, { log, workers: false });
    client2 = strictClient(`http://127.0.0.1:${quorum2.s3Port}`);
  });

  after(async () => {
    client?.destroy();
    client2?.destroy();
    await quorum2?.stop();
    // The backend may still be down if a step failed: the ledger and stray-bytes checks need it.
    if (s3OneDown && servers?.[0]) {
      servers[0] = await startS3rver({ directory: dirs[0]!, port: servers[0].port }).catch(() => servers[0]!);
    }
    try {
      await t?.stop();
    } finally {
      await Promise.all((servers ?? []).map((s) => s.stop()));
      await Promise.all((dirs ?? []).map((d) => rm(d, { recursive: true, force: true })));
    }
  });

  /** Live versions of the bucket with their live copies. */
  async function liveCopies(): Promise<{ key: string; version_id: string; size: number; copies: { backend: string; physical_key: string; state: string }[] }[]> {
    const { rows } = await t.orch.db.query<{
      key: string;
      version_id: string;
      size: number;
      copies: { backend: string; physical_key: string; state: string }[];
    }>(
      `SELECT v.key, v.version_id, v.size,
         coalesce(json_agg(json_build_object('backend', c.backend, 'physical_key', c.physical_key, 'state', c.state)
                  ORDER BY c.backend) FILTER (WHERE c.backend IS NOT NULL), '[]') AS copies
       FROM object_versions v LEFT JOIN object_copies c USING (version_id)
       WHERE v.bucket = $1 AND v.state = 'live' GROUP BY v.key, v.version_id, v.size ORDER BY v.key`,
      [BUCKET],
    );
    return rows;
  }

  test('zero failed GETs, quorum 1 writes on, quorum 2 refused with 503, repair back to 2 copies', async (ctx) => {
    // How long each phase took (TAP diagnostics): the machine is shared, and the repair wait depends on it.
    let mark = Date.now();
    const phase = (name: string) => {
      ctx.diagnostic(`${name}: ${Date.now() - mark} ms`);
      mark = Date.now();
    };
    // Acknowledged content per key: seeds (written once) and the writers' keys (overwritten under load).
    const logs = new Map<string, KeyLog>();
    const record = (key: string, s: string): Written => {
      const l = logs.get(key) ?? { puts: [], acked: -1 };
      logs.set(key, l);
      const w: Written = { sha: s, state: 'pending' };
      l.puts.push(w);
      return w;
    };
    const ack = (key: string, w: Written) => {
      w.state = 'acked';
      const l = logs.get(key)!;
      l.acked = Math.max(l.acked, l.puts.indexOf(w));
    };

    // Seeds: small objects on both sides of the 256 KiB replay window, and three 20 MiB objects.
    const big = randomBytes(BIG);
    const bigSha = sha(big);
    for (let i = 0; i < 12; i++) {
      const body = randomBytes(randomInt(1, 600 * 1024));
      const w = record(`seed/${i}`, sha(body));
      await put(client, `seed/${i}`, body);
      ack(`seed/${i}`, w);
    }
    for (let i = 0; i < 3; i++) {
      const w = record(`big/${i}`, bigSha);
      await put(client, `big/${i}`, big);
      ack(`big/${i}`, w);
    }
    for (const v of await liveCopies()) {
      assert.deepEqual(v.copies.map((c) => `${c.backend}:${c.state}`), ['s3-1:live', 's3-2:live'], `${v.key} before the kill`);
    }

    phase('seed');
    // The mixed load: writers overwrite keys of their own (or create them), readers GET acknowledged keys.
    let running = true;
    let killedAt = Number.POSITIVE_INFINITY;
    const stats = { puts: 0, putsDuringOutage: 0, gets: 0, getFailures: [] as string[], putFailures: [] as string[] };
    const writer = async (w: number) => {
      while (running) {
        const key = `w${w}/${randomInt(0, 6)}`;
        const body = randomBytes(randomInt(1, 400 * 1024));
        const entry = record(key, sha(body));
        const started = Date.now();
        try {
          await put(client, key, body);
          ack(key, entry);
          stats.puts++;
          if (started > killedAt) stats.putsDuringOutage++;
        } catch (err) {
          entry.state = 'failed';
          stats.putFailures.push(`${key}: ${String(err)}`);
        }
      }
    };
    const reader = async () => {
      while (running) {
        const keys = [...logs.entries()].filter(([k, l]) => l.acked >= 0 && !k.startsWith('big/'));
        const [key, l] = keys[randomInt(0, keys.length)]!;
        const from = l.acked;
        try {
          const got = await get(client, key);
          // Whatever was acknowledged when the GET started, or a later PUT of the key (a race with an overwrite).
          const ok = l.puts.slice(from).some((p) => p.sha === got.sha && p.state !== 'failed');
          if (!ok) stats.getFailures.push(`${key}: content matches no acknowledged or later PUT`);
          stats.gets++;
        } catch (err) {
          stats.getFailures.push(`${key}: ${String(err)}`);
        }
      }
    };
    const load = [...[0, 1, 2].map(writer), reader(), reader(), reader()];
    let resumed: PromiseSettledResult<{ size: number; sha: string }>[] = [];
    try {
      // Three GETs of 20 MiB objects, 1 MiB in hand, the rest paused across the kill.
      const inflight = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `big/${i}` }));
          // One iterator for the whole body: leaving a for-await loop would destroy the stream.
          const it = (res.Body as Readable)[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
          const h = createHash('sha256');
          let n = 0;
          while (n < 1024 * 1024) {
            const r = await it.next();
            if (r.done) break;
            h.update(r.value);
            n += r.value.length;
          }
          return { it, h, n };
        }),
      );
      await sleep(1_500);

      // SIGKILL s3-1 (the directory stays).
      phase('load before the kill');
      killedAt = Date.now();
      s3OneDown = true;
      await servers[0]!.stop();

      // The held GETs go on: their copy on s3-1 is gone mid-body.
      resumed = await Promise.allSettled(
        inflight.map(async ({ it, h, n }) => {
          let size = n;
          for (let r = await it.next(); !r.done; r = await it.next()) {
            h.update(r.value);
            size += r.value.length;
          }
          return { size, sha: h.digest('hex') };
        }),
      );

      phase('held GETs finished');
      // Some more load while s3-1 is down (enough PUTs acknowledged at quorum 1), at most 3 s.
      for (const until = Date.now() + 3_000; Date.now() < until && stats.putsDuringOutage < 8; ) await sleep(100);
    } finally {
      // Stop the load whatever failed above, or its loops would keep the test running.
      running = false;
      await Promise.all(load);
    }

    for (const [i, r] of resumed.entries()) {
      assert.equal(r.status, 'fulfilled', `GET big/${i} in flight at the kill: ${r.status === 'rejected' ? String(r.reason) : ''}`);
      if (r.status === 'fulfilled') assert.deepEqual(r.value, { size: BIG, sha: bigSha }, `GET big/${i} in flight at the kill is byte-exact`);
    }
    assert.deepEqual(stats.getFailures, [], 'no GET of an acknowledged object failed');
    assert.deepEqual(stats.putFailures, [], 'PUTs kept succeeding at write_quorum 1');
    assert.ok(stats.gets >= 30, `enough GETs ran (${stats.gets})`);
    assert.ok(stats.putsDuringOutage >= 5, `PUTs were acknowledged while s3-1 was down (${stats.putsDuringOutage})`);
    const single = (await liveCopies()).filter((v) => v.copies.filter((c) => c.state === 'live').length < 2);
    assert.ok(single.length > 0, 'versions written during the outage have one copy until repaired');


    // write_quorum 2 with one backend left (s3-1 is still down): a clear 503, nothing published.
    const refused = async (key: string) => {
      const err = await put(client2, key, randomBytes(64 * 1024)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof S3ServiceException, `quorum-2 PUT ${key} must fail, got ${String(err)}`);
      assert.equal(err.$metadata.httpStatusCode, 503, `quorum-2 PUT ${key}: ${err.name} ${err.message}`);
      assert.equal(err.name, 'ServiceUnavailable');
      assert.match(err.message, /storage provider .* unavailable/);
    };
    await refused('quorum2/new');
    await refused('seed/0');
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'quorum2/new' })).then(
      () => 200,
      (e: S3ServiceException) => e.$metadata.httpStatusCode,
    );
    assert.equal(head, 404, 'a refused PUT publishes nothing');
    assert.equal((await get(client2, 'seed/0')).sha, logs.get('seed/0')!.puts[0]!.sha, 'a refused overwrite keeps the old content');

    // s3-1 comes back on the same port with the same directory; repair restores two copies everywhere.
    phase('load after the kill, quorum-2 checks');
    servers[0] = await startS3rver({ directory: dirs[0]!, port: servers[0]!.port });
    s3OneDown = false;
    // Its breaker closes after the cool-down (1 s here) and a successful probe.
    for (const until = Date.now() + 15_000; t.orch.backends.writable('s3-1') === false && Date.now() < until; ) await sleep(100);
    // Tasks that failed while s3-1 was down wait out their backoff (1 s, 2 s, 4 s … per attempt): skip what is
    // left of it, as if that time had passed, so the wait below measures the repair and not the backoff.
    await t.orch.db.query(`UPDATE tasks SET run_after = now() WHERE state = 'queued' AND attempts > 0`);
    const deadline = Date.now() + 40_000;
    let short: string[] = [];
    for (;;) {
      const versions = await liveCopies();
      short = versions
        .filter((v) => {
          const live = v.copies.filter((c) => c.state === 'live').map((c) => c.backend);
          return live.length !== 2 || new Set(live).size !== 2 || v.copies.some((c) => c.state !== 'live');
        })
        .map((v) => `${v.key}: ${v.copies.map((c) => `${c.backend}:${c.state}`).join(',')}`);
      if (short.length === 0 || Date.now() > deadline) break;
      t.orch.wakeWorkers();
      await sleep(250);
    }
    assert.deepEqual(short, [], 'every acknowledged version has two live copies on distinct backends after repair');
    phase('repair');

    // Every copy is byte-exact on its own backend, and the S3 API returns the last acknowledged content
    // (the big objects were never rewritten and their bytes were checked by the GETs above: size only).
    for (const v of await liveCopies()) {
      const l = logs.get(v.key)!;
      const want = l.puts[l.acked]!.sha;
      if (v.key.startsWith('big/')) {
        for (const c of v.copies) assert.equal((await t.orch.backends.get(c.backend)!.head(c.physical_key))?.size, BIG, `copy of ${v.key} on ${c.backend}`);
        continue;
      }
      for (const c of v.copies) {
        const body = await t.orch.backends.get(c.backend)!.get(c.physical_key);
        const h = createHash('sha256');
        for await (const chunk of body) h.update(chunk as Buffer);
        assert.equal(h.digest('hex'), want, `copy of ${v.key} on ${c.backend}`);
      }
      assert.equal((await get(client, v.key)).sha, want, `GET ${v.key}`);
    }
    assert.equal(await drainCleanup(t, 30_000), 0, 'the deletions queued by dropped copies ran once s3-1 was back');
    await assertLedger(t.orch.db, 'after repair');
    phase('copies checked, deletions drained, ledger');
    ctx.diagnostic(`PUTs ${stats.puts} (${stats.putsDuringOutage} while s3-1 was down), GETs ${stats.gets}`);
  });
});
