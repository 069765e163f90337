/**
 * A throwaway single-node Ceph cluster with radosgw, for tests that need an S3 backend which verifies SigV4
 * signatures and implements multipart natively (s3rver does neither).
 *
 * One monitor, one OSD on memstore (objects live in the OSD's memory) and one radosgw, all on 127.0.0.1,
 * everything (config, keyrings, mon store, logs, sockets) under one temp directory: nothing is written to
 * /etc/ceph or /var/lib/ceph, and no systemd unit is involved. Daemons run in the foreground (`-f`) as
 * children of the test process; stop() kills them and removes the directory. Start one per test file: the
 * memstore only grows (rgw garbage-collects deleted data hours later), so a fresh cluster per run keeps it
 * small.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3BackendConfig } from '../../src/config/types.js';

const execFileP = promisify(execFile);

/** The binaries the harness runs (Debian packages ceph-mon, ceph-osd, radosgw, ceph-common). */
export const CEPH_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'] as const;

/** How long each phase may take before start-up is declared failed. */
const START_TIMEOUT_MS = 90_000;

/** Names of the Ceph binaries missing from PATH; empty when the cluster can be started. */
export function missingCephBinaries(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return CEPH_BINARIES.filter((b) => !dirs.some((d) => existsSync(path.join(d, b))));
}

/**
 * Why Ceph tests must skip here, or undefined when they can run. The message names the missing binaries
 * and the packages providing them. With S3O_REQUIRE_CEPH=1 (set by .ci/run) missing binaries throw instead,
 * so CI can never silently skip the Ceph tests.
 */
export function cephSkipReason(): string | undefined {
  const missing = missingCephBinaries();
  if (missing.length === 0) return undefined;
  const reason = `Ceph binaries missing (${missing.join(', ')}): apt-get install -y ceph-mon ceph-osd radosgw ceph-common (.ci/run does)`;
  if (process.env.S3O_REQUIRE_CEPH === '1') throw new Error(`${reason}; S3O_REQUIRE_CEPH=1 forbids skipping`);
  return `${reason}; Ceph tests skipped`;
}

/** Wall-clock time of each start-up phase, ms (reported by tests and docs/testing.md). */
export interface CephTimings {
  /** Keyrings, monmap, mon mkfs. */
  bootstrap: number;
  /** Monitor start until the OSD is registered and its store made. */
  monAndOsd: number;
  /** radosgw start (it creates its pools, which needs the OSD up) until it answers HTTP. */
  rgw: number;
  /** radosgw-admin user create. */
  user: number;
  total: number;
}

/** A running cluster. */
export interface CephInstance {
  /** `http://127.0.0.1:<port>` of radosgw. */
  endpoint: string;
  port: number;
  /** Region to sign with; radosgw's default zonegroup accepts us-east-1 scopes. */
  region: string;
  /** Keys of the S3 user created at start (uid `s3o-test`). */
  accessKeyId: string;
  secretAccessKey: string;
  /** The temp directory holding config, keyrings, logs and the mon store. */
  dir: string;
  timings: CephTimings;
  /** Last lines of each daemon's log, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /** Kills every daemon started and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
ms bind msgr1 = false
# Without these radosgw loops on authentication errors against the v2-only monitor.
ms cluster mode = crc secure
ms service mode = crc secure
ms client mode = crc secure
ms mon cluster mode = crc secure
ms mon service mode = crc secure
ms mon client mode = crc secure
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
crash dir = ${dir}/crash
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
paxos propose interval = 0.05
auth allow insecure global id reclaim = false

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`;
}

async function run(cmd: string, args: string[], timeoutMs = START_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** Polls until radosgw answers any HTTP response, or its process exits, or the deadline passes. */
async function waitForHttp(url: string, child: ChildProcess, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`radosgw exited before listening (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`radosgw did not answer on ${url} within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Every daemon spawned by any cluster of this process, killed if the process exits without stop(). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts a fresh cluster and creates an S3 user. Throws (after cleaning up) with the daemons' log tails
 * when a phase fails. Check {@link cephSkipReason} first.
 */
export async function startCeph(): Promise<CephInstance> {
  const t0 = Date.now();
  const deadline = t0 + START_TIMEOUT_MS;
  const dir = await mkdtemp(path.join(os.tmpdir(), 's3o-ceph-'));
  const conf = path.join(dir, 'ceph.conf');
  const children: ChildProcess[] = [];

  const daemon = (cmd: string, args: string[]): ChildProcess => {
    // Logs go to files under dir/log (ceph.conf); stdio is ignored so no pipe keeps the test process busy.
    const child = spawn(cmd, ['-c', conf, '-f', ...args], { stdio: 'ignore' });
    child.on('error', () => undefined);
    children.push(child);
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
  };

  const logTail = async (lines = 15): Promise<string> => {
    const out: string[] = [];
    for (const name of ['mon.a', 'osd.0', 'client.rgw']) {
      const text = await readFile(path.join(dir, 'log', `${name}.log`), 'utf8').catch(() => '(no log)');
      out.push(`--- ${name}\n${text.split('\n').slice(-lines).join('\n')}`);
    }
    return out.join('\n');
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // memstore holds nothing worth flushing: SIGKILL is immediate (the OSD lingers for seconds on SIGTERM).
      await Promise.all(
        children.map((c) => {
          if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
          const exited = new Promise<void>((r) => c.once('exit', () => r()));
          c.kill('SIGKILL');
          return exited;
        }),
      );
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    const [monPort, rgwPort] = await Promise.all([freePort(), freePort()]);
    const fsid = randomUUID();
    await Promise.all(['mon', 'osd/osd.0', 'run', 'log', 'crash', 'rgw'].map((d) => mkdir(path.join(dir, d), { recursive: true })));
    await writeFile(conf, cephConf(dir, fsid, monPort, rgwPort));
    const keyring = path.join(dir, 'keyring');
    await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await run('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await run('ceph-authtool', [keyring, '--gen-key', '-n', 'client.rgw', '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx']);
    const monmap = path.join(dir, 'monmap');
    await run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, monmap]);
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
    const t1 = Date.now();

    daemon('ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    const osdKey = (await run('ceph-authtool', ['--gen-print-key'])).trim();
    const osdJson = path.join(dir, 'osd.json');
    await writeFile(osdJson, JSON.stringify({ cephx_secret: osdKey }));
    // The ceph CLI retries until the monitor answers, so this also waits for the monitor to come up.
    await run('ceph', ['-c', conf, '--connect-timeout', '60', 'osd', 'new', osdUuid, '-i', osdJson]);
    const osdKeyring = path.join(dir, 'osd', 'osd.0', 'keyring');
    await run('ceph-authtool', ['--create-keyring', osdKeyring, '--name', 'osd.0', '--add-key', osdKey]);
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid, '--keyring', osdKeyring]);
    daemon('ceph-osd', ['-i', '0', '--keyring', osdKeyring]);
    const t2 = Date.now();

    const rgw = daemon('radosgw', ['-n', 'client.rgw']);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitForHttp(endpoint, rgw, deadline);
    const t3 = Date.now();

    const accessKeyId = `S3OCEPH${randomBytes(6).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await run('radosgw-admin', [
      '-c', conf, 'user', 'create', '--uid', 's3o-test', '--display-name', 's3o test',
      '--access-key', accessKeyId, '--secret-key', secretAccessKey,
    ]);
    const t4 = Date.now();

    return {
      endpoint,
      port: rgwPort,
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      dir,
      timings: { bootstrap: t1 - t0, monAndOsd: t2 - t1, rgw: t3 - t2, user: t4 - t3, total: t4 - t0 },
      logTail,
      stop,
    };
  } catch (err) {
    const tail = await logTail();
    await stop();
    throw new Error(`Ceph start-up failed: ${(err as Error).message}\n${tail}`, { cause: err });
  }
}

/** An S3BackendConfig for `bucket` on the cluster (path-style, the cluster's S3 user). */
export function cephBackendConfig(
  ceph: CephInstance,
  name: string,
  bucket: string,
  opts: { prefix?: string; quotaBytes?: number } = {},
): S3BackendConfig {
  return {
    type: 's3',
    name,
    quotaBytes: opts.quotaBytes ?? 0,
    endpoint: ceph.endpoint,
    region: ceph.region,
    bucket,
    prefix: opts.prefix ?? '',
    accessKeyId: ceph.accessKeyId,
    secretAccessKey: ceph.secretAccessKey,
    forcePathStyle: true,
  };
}

/** An @aws-sdk/client-s3 client straight to radosgw (default SDK settings, path-style). Destroy it after use. */
export function cephClient(ceph: CephInstance): S3Client {
  return new S3Client({
    endpoint: ceph.endpoint,
    region: ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
  });
}

/** Creates buckets on the cluster through the S3 API. */
export async function createCephBuckets(ceph: CephInstance, buckets: string[]): Promise<void> {
  const client = cephClient(ceph);
  try {
    for (const Bucket of buckets) await client.send(new CreateBucketCommand({ Bucket }));
  } finally {
    client.destroy();
  }
}
