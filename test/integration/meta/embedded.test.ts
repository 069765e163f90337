/**
 * The embedded PostgreSQL engine with real processes: first start (initdb) from an empty directory, the
 * directory lock against a second process and a second open in this process, a SIGKILLed holder's
 * postmaster found and stopped by the next start with the committed data intact, the exit hook, a `serve`
 * process stopping its server on Ctrl-C and SIGTERM, the durability settings and where the server listens. Directories are copies of the harness's template
 * (no initdb) except in the first-start test.
 */
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DbUnavailableError } from '../../../src/meta/db.js';
import { openEmbedded } from '../../../src/meta/engine-embedded.js';
import { isAlive } from '../../../src/meta/engine-embedded-dir.js';
import { embeddedTemplateCopy, embeddedTestDir } from '../../harness/db.js';
import { recordingLogger } from '../../harness/logger.js';

const HOLDER = fileURLToPath(new URL('../../harness/hold-embedded.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/s3-orchestrator.js', import.meta.url));

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await embeddedTestDir();
  dirs.push(d);
  return d;
}
/** A `database.path` holding a copy of the template cluster. */
async function preparedDir(): Promise<string> {
  const d = path.join(await tempDir(), 'pg');
  await embeddedTemplateCopy(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Forks the holder on `dir`; resolves with the child and the postmaster pid it reports. */
async function hold(dir: string, args: string[] = []): Promise<{ child: ChildProcess; postmaster: number; exited: Promise<number | null> }> {
  const child = fork(HOLDER, [dir, ...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const postmaster = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { postmaster: number }).postmaster));
    void exited.then((code) => reject(new Error(`holder exited with ${code}: ${stderr}`)));
  });
  return { child, postmaster, exited };
}

/** The session id of a process (Linux /proc). */
async function sessionOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

async function waitUntilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 600 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !isAlive(pid);
}

describe('embedded PostgreSQL: first start', () => {
  test('an empty directory is initialised (progress logged), a password is stored 0600, PGDATA is 0700', async () => {
    const dir = path.join(await tempDir(), 'pg');
    const lines: string[] = [];
    const db = await openEmbedded(dir, { log: recordingLogger(lines) });
    try {
      assert.equal(db.engine, 'embedded');
      assert.ok(lines.some((l) => /initialising the embedded PostgreSQL/.test(l)), lines.join('\n'));
      assert.ok(lines.includes('embedded PostgreSQL initialised'), lines.join('\n'));
      assert.equal((await stat(path.join(dir, 'password'))).mode & 0o777, 0o600);
      assert.equal((await stat(path.join(dir, 'pgdata'))).mode & 0o777, 0o700);
      const { rows } = await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      assert.ok(Number(rows[0]!.v) >= 170000, `PostgreSQL 17 or newer, got ${rows[0]!.v}`);
    } finally {
      await db.close();
    }
  });

  test('a directory that is not an embedded PostgreSQL directory (e.g. old PGlite data) is refused clearly', async () => {
    const dir = path.join(await tempDir(), 'meta');
    await mkdir(dir);
    await writeFile(path.join(dir, 'PG_VERSION'), '17\n');
    await assert.rejects(openEmbedded(dir), /is not an embedded PostgreSQL directory of s3-orchestrator \(it looks like a PGlite directory.*not migrated\): choose another database\.path/);
  });
});

describe('embedded PostgreSQL: durability and exposure', () => {
  test('fsync, synchronous_commit and full_page_writes are on; it listens on 127.0.0.1 only, never on 5432, no unix socket', async () => {
    const db = await openEmbedded(await preparedDir());
    try {
      const show = async (name: string) => (await db.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name];
      assert.equal(await show('fsync'), 'on');
      assert.equal(await show('synchronous_commit'), 'on');
      assert.equal(await show('full_page_writes'), 'on');
      assert.equal(await show('listen_addresses'), '127.0.0.1');
      assert.equal(await show('unix_socket_directories'), '');
      assert.notEqual(await show('port'), '5432');
      assert.equal(await show('password_encryption'), 'scram-sha-256');
    } finally {
      await db.close();
    }
  });
});

describe('embedded PostgreSQL: one orchestrator per directory', () => {
  test('a second process is refused naming the holder, database.path or --data, and the directory works once it is gone', async () => {
    const dir = await preparedDir();
    const { child, exited } = await hold(dir);
    try {
      const inUse = new RegExp(`in use by another s3-orchestrator process \\(pid ${child.pid}\\); stop it, or give this instance its own database\\.path`);
      await assert.rejects(openEmbedded(dir), inUse);
      await assert.rejects(openEmbedded(dir, { hint: '--data DIR' }), /its own --data DIR, or use database\.url/);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
    const db = await openEmbedded(dir);
    await db.close();
  });

  test('a second open in the same process is refused, and works after close', async () => {
    const dir = await preparedDir();
    const first = await openEmbedded(dir);
    await assert.rejects(openEmbedded(dir), /already open in this process/);
    await first.close();
    const again = await openEmbedded(dir);
    await again.close();
  });
});

describe('embedded PostgreSQL: a SIGKILLed orchestrator', () => {
  test('leaves its postmaster running; the next start stops it cleanly, starts its own, and the committed row is there', async () => {
    const dir = await preparedDir();
    const { child, postmaster, exited } = await hold(dir, ['database.path', 'written-before-kill']);
    child.kill('SIGKILL');
    await exited;
    assert.ok(isAlive(postmaster), 'the postmaster outlives its SIGKILLed parent');

    const lines: string[] = [];
    const db = await openEmbedded(dir, { log: recordingLogger(lines) });
    try {
      assert.ok(lines.includes('stopping the embedded PostgreSQL that an earlier orchestrator left running'), lines.join('\n'));
      assert.equal(isAlive(postmaster), false, 'the old postmaster is gone');
      const { rows } = await db.query<{ marker: string }>(`SELECT marker FROM held`);
      assert.deepEqual(rows, [{ marker: 'written-before-kill' }]);
    } finally {
      await db.close();
    }
  });

  test('a process that exits without closing stops its server (exit hook)', async () => {
    const dir = await preparedDir();
    const { postmaster, exited } = await hold(dir, ['database.path', '', 'exit']);
    assert.equal(await exited, 0);
    assert.equal(await waitUntilGone(postmaster), true, 'the postmaster stops after its orchestrator exits');
  });

  for (const [how, signal, group] of [
    ['Ctrl-C in a terminal (SIGINT to the whole process group)', 'SIGINT', true],
    ['SIGTERM to the orchestrator', 'SIGTERM', false],
  ] as const) {
    test(`serve stops its server on ${how}`, async () => {
      const data = await tempDir();
      await embeddedTemplateCopy(path.join(data, 'pg'));
      const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--s3-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, S3O_LOG_LEVEL: 'warn' },
        detached: group, // its own process group, like a shell job
      });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      while (!/secret key/.test(out) && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /secret key/, out);
      const postmaster = Number((await readFile(path.join(data, 'pg', 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]);
      // The server runs in its own session, so a terminal's signals reach only the orchestrator.
      assert.notEqual(await sessionOf(postmaster), await sessionOf(child.pid!));
      if (group) process.kill(-child.pid!, signal);
      else child.kill(signal);
      assert.equal(await exited, 0, out);
      assert.equal(isAlive(postmaster), false, 'the server is stopped before the orchestrator exits');
    });
  }

  test('a server killed under a running orchestrator is restarted on the same port, with its committed data', async () => {
    const dir = await preparedDir();
    const lines: string[] = [];
    const db = await openEmbedded(dir, { log: recordingLogger(lines) });
    try {
      await db.exec(`CREATE TABLE survived (v int); INSERT INTO survived VALUES (1)`);
      const postmaster = Number((await readFile(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]);
      process.kill(postmaster, 'SIGKILL');
      let sawOutage = false;
      for (let i = 0; i < 600; i++) {
        try {
          await db.query('SELECT 1');
          if (sawOutage) break;
        } catch (err) {
          assert.ok(err instanceof DbUnavailableError, String(err));
          sawOutage = true;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(sawOutage, 'requests failed as unavailable while the server was down');
      assert.ok(lines.includes('the embedded PostgreSQL stopped unexpectedly; restarting it'), lines.join('\n'));
      assert.deepEqual((await db.query<{ v: number }>(`SELECT v FROM survived`)).rows, [{ v: 1 }]);
    } finally {
      await db.close();
    }
  });

  test('Db.close stops the server', async () => {
    const dir = await preparedDir();
    const db = await openEmbedded(dir);
    const postmaster = Number((await readFile(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    assert.ok(isAlive(postmaster));
    await db.close();
    assert.equal(isAlive(postmaster), false);
    const again = await openEmbedded(dir);
    await again.close();
  });
});
