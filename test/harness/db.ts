/**
 * Databases for tests. Every test gets its own schema, on one of two servers:
 * - `postgres` (the default): the machine's PostgreSQL at TEST_DATABASE_URL (127.0.0.1:5432, trust auth);
 * - `embedded`: ONE embedded PostgreSQL per test process (node:test runs each file in its own process),
 *   started on first use from a copy of a template directory that is initdb'd once per PostgreSQL
 *   version and cached under os.tmpdir() (copy + start ≈ 0.3 s instead of a multi-second initdb). Copies
 *   live in /dev/shm where there is one: creating PGDATA's ~1000 files costs ~2 s on this machine's disk
 *   under load and ~0.15 s in tmpfs (the tests that use them are not about the disk).
 * `embeddedTemplateCopy()` gives a prepared `database.path` for code that starts its own embedded server
 * (zero-config processes), and `startTestEmbedded()` a server the test owns and may stop (outages).
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { OpenConfig } from '../../src/meta/open.js';
import { startEmbeddedServer, type EmbeddedServer } from '../../src/meta/engine-embedded.js';
import { binaries, copyDir, initdb, isAlive, isPostmasterOf, layout, makeDir, password, prepareDir, serverUser } from '../../src/meta/engine-embedded-dir.js';

/**
 * The master key sealing the secrets a test database holds (core/secrets.ts): with `database.url` an
 * orchestrator needs one, and every instance sharing a database needs the same one, as in a real
 * deployment. Set for this process and the orchestrator processes tests spawn (they inherit it).
 */
process.env.S3O_MASTER_KEY ??= '5f3c0e9a1b2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60';

/** URL of the PostgreSQL server used by tests: TEST_DATABASE_URL, else the local trust-auth server. */
export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The two places a test database can live. */
export type TestEngine = 'embedded' | 'postgres';

let available: Promise<boolean> | undefined;

/**
 * Whether PostgreSQL is reachable. When S3O_REQUIRE_POSTGRES=1 (set by .ci/run) an unreachable server is
 * an error, so CI can never silently skip the PostgreSQL half of the suite.
 */
export function postgresAvailable(): Promise<boolean> {
  available ??= (async () => {
    const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch (err) {
      if (process.env.S3O_REQUIRE_POSTGRES === '1') throw new Error(`PostgreSQL required but unreachable at ${TEST_PG_URL}`, { cause: err });
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return available;
}

/** Message for t.skip when PostgreSQL is absent. */
export const NO_POSTGRES = `PostgreSQL not reachable at ${TEST_PG_URL} (set TEST_DATABASE_URL); PostgreSQL half skipped`;

/** A fresh, empty database configuration for one test, and how to throw it away. */
export interface TestDatabase {
  engine: TestEngine;
  config: OpenConfig;
  drop(): Promise<void>;
}

/**
 * A new schema on the machine's PostgreSQL (the default; the embedded server when the machine has none
 * and S3O_REQUIRE_POSTGRES is not set) or on this process's embedded server.
 */
export async function freshDatabase(which?: TestEngine): Promise<TestDatabase> {
  const engine = which ?? ((await postgresAvailable()) ? 'postgres' : 'embedded');
  const url = engine === 'embedded' ? (await embeddedServer()).url : TEST_PG_URL;
  const schema = `t_${randomBytes(6).toString('hex')}`;
  return {
    engine,
    config: { url, path: '', schema },
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The engines a file that exercises both runs on: embedded always, the machine's server when reachable. */
export async function engines(): Promise<TestEngine[]> {
  return (await postgresAvailable()) ? ['embedded', 'postgres'] : ['embedded'];
}

// ---- the embedded server: template, one server per process, servers a test owns ----

const TMP = os.tmpdir();
/** Where test servers' directories go: tmpfs when the machine has one. */
const FAST_TMP = (() => {
  try {
    accessSync('/dev/shm', constants.W_OK | constants.X_OK);
    return '/dev/shm';
  } catch {
    return TMP;
  }
})();
/** Test servers' directories: `s3o-pgtest-<creator pid>-<random>`. */
const COPY_PREFIX = 's3o-pgtest-';

/**
 * A new directory for an embedded test server (0755: as root the server runs as "postgres", which must be
 * able to enter it), removed by the sweep of a later test process if this one dies before removing it.
 */
export async function embeddedTestDir(): Promise<string> {
  sweepLeftovers();
  const dir = path.join(FAST_TMP, `${COPY_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  return dir;
}

let templateOnce: Promise<string> | undefined;

/**
 * The template directory (an initdb'd cluster and its password), made once per PostgreSQL version and
 * reused by every later test process. Processes racing to make it serialise on a mkdir lock.
 */
export function embeddedTemplate(): Promise<string> {
  templateOnce ??= (async () => {
    const bin = await binaries();
    const dir = path.join(TMP, `s3o-pg-template-${bin.version}`);
    const lockDir = `${dir}.making`;
    for (const until = Date.now() + 120_000; Date.now() < until; ) {
      if (existsSync(path.join(layout(dir).pgdata, 'PG_VERSION'))) return dir;
      try {
        await mkdir(lockDir);
      } catch {
        // Someone else is making it; a maker that died long ago leaves a stale lock.
        const since = statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
        if (Date.now() - since > 60_000) await rm(lockDir, { recursive: true, force: true });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        const work = `${dir}.${process.pid}`;
        await rm(work, { recursive: true, force: true });
        const user = await serverUser();
        makeDir(work);
        prepareDir(work, user, 'template');
        await initdb(work, bin, user, await password(work));
        await rm(dir, { recursive: true, force: true });
        renameSync(work, dir);
        return dir;
      } finally {
        await rm(lockDir, { recursive: true, force: true });
      }
    }
    throw new Error(`timed out waiting for the embedded PostgreSQL template ${dir}`);
  })();
  templateOnce.catch(() => (templateOnce = undefined));
  return templateOnce;
}

/** Copies the template to `dir` (a `database.path`), so an embedded start there skips initdb. */
export async function embeddedTemplateCopy(dir: string): Promise<void> {
  await copyDir(await embeddedTemplate(), dir);
}

/** A test-owned embedded server in its own directory: `stop()` it to simulate an outage, `restart()` it on the same port. */
export interface TestEmbedded {
  readonly server: EmbeddedServer;
  readonly url: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

export async function startTestEmbedded(): Promise<TestEmbedded> {
  const dir = path.join(await embeddedTestDir(), 'pg');
  await embeddedTemplateCopy(dir);
  let server: EmbeddedServer;
  try {
    server = await startEmbeddedServer(dir);
  } catch (err) {
    await rm(path.dirname(dir), { recursive: true, force: true });
    throw err;
  }
  const port = server.port;
  return {
    get server() {
      return server;
    },
    get url() {
      return server.url;
    },
    stop: () => server.stop(),
    async restart() {
      server = await startEmbeddedServer(dir, { port });
    },
    async destroy() {
      await server.stop();
      await rm(path.dirname(dir), { recursive: true, force: true });
    },
  };
}

let shared: Promise<TestEmbedded> | undefined;

/** This process's embedded server (started on first use, stopped and removed when the process ends). */
export async function embeddedServer(): Promise<EmbeddedServer> {
  shared ??= (async () => {
    const s = await startTestEmbedded();
    // node:test lets a file's process end when its event loop is empty: stop the server then. On an
    // explicit exit the engine's exit hook stops it and the next test process sweeps the directory.
    process.once('beforeExit', () => void s.destroy());
    return s;
  })();
  shared.catch(() => (shared = undefined));
  return (await shared).server;
}

let swept = false;

/** Removes directories of test servers whose process died (stopping a server still running there). */
function sweepLeftovers(): void {
  if (swept) return;
  swept = true;
  for (const name of readdirSync(FAST_TMP)) {
    const m = new RegExp(`^${COPY_PREFIX}(\\d+)-`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    const dir = path.join(FAST_TMP, name);
    try {
      const pgdata = layout(path.join(dir, 'pg')).pgdata;
      const pid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid && isAlive(pid) && isPostmasterOf(pid, pgdata)) {
        process.kill(pid, 'SIGQUIT'); // a throwaway copy: no need for a clean checkpoint
        continue; // removed by a later sweep, once the server is gone
      }
    } catch {
      // no server
    }
    void rm(dir, { recursive: true, force: true });
  }
}
