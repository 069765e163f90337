/**
 * The job commands of the CLI (`admin jobs …`, `admin backends drain`, `admin rebalance …`) and the
 * example script examples/drain-backend.ts, against a real orchestrator: output, --json, the progress
 * bar on a terminal, and exit codes (0 done, 1 call failed, 2 usage, 4 cancelled).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runAdmin } from '../../../src/cli/admin-cmd.js';
import { engines } from '../../harness/db.js';
import { ADMIN_TOKEN, body, putObject, settleCleanup, startJobsFixture, type JobsFixture } from './fixture.js';

const hasPostgres = (await engines()).includes('postgres');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

class Sink {
  text = '';
  constructor(readonly isTTY = false) {}
  columns = 100;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function admin(f: JobsFixture, args: string[], tty = false): Promise<{ code: number; out: string; err: string }> {
  const out = new Sink(tty);
  const err = new Sink();
  const code = await runAdmin([...args, '--server', f.adminUrl()], out, err, { S3O_ADMIN_TOKEN: ADMIN_TOKEN });
  return { code, out: out.text, err: err.text };
}

describe('admin job commands', { skip: hasPostgres ? false : 'PostgreSQL not reachable' }, () => {
  let f: JobsFixture;

  before(async () => {
    f = await startJobsFixture({ strategy: 'pack', cleanupDelayMs: 0 });
    for (let i = 0; i < 30; i++) await putObject(f.s3(), `cli/${i}`, body(`cli/${i}`, 1, 3000 + i));
  });
  after(async () => f?.stop());

  test('usage errors exit 2 and name the problem', async () => {
    assert.equal((await admin(f, ['jobs', 'get', 'abc'])).code, 2);
    assert.match((await admin(f, ['jobs', 'get', 'abc'])).err, /job id/);
    assert.equal((await admin(f, ['jobs', 'frobnicate'])).code, 2);
    assert.equal((await admin(f, ['jobs', 'list', '--kind', 'nope'])).code, 2);
    assert.equal((await admin(f, ['jobs', 'list', '--state', 'running,weird'])).code, 2);
    assert.equal((await admin(f, ['jobs', 'watch', '1', '--interval', '5ms'])).code, 2);
    assert.equal((await admin(f, ['backends', 'drain'])).code, 2);
    assert.equal((await admin(f, ['rebalance', 'shuffle'])).code, 2);
    assert.equal((await admin(f, ['rebalance', 'plan', '--max-moves', '-3'])).code, 2);
    const help = await admin(f, ['jobs', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /backends drain NAME \[--wait\]/);
  });

  test('failed calls exit 1 with the Connect code', async () => {
    const missing = await admin(f, ['jobs', 'get', '999']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /NotFound: job 999 does not exist/);
    const drain = await admin(f, ['backends', 'drain', 'no-such-backend']);
    assert.equal(drain.code, 1);
    assert.match(drain.err, /NotFound/);
    const out = new Sink();
    const err = new Sink();
    assert.equal(await runAdmin(['jobs', 'list', '--server', f.adminUrl()], out, err, {}), 1);
    assert.match(err.text, /Unauthenticated.*S3O_ADMIN_TOKEN/);
  });

  test('backends drain --wait draws a progress bar on a terminal and exits 0 when done', async () => {
    const { rows: held } = await f.orchs[0]!.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    const n = held[0]!.n;
    const r = await admin(f, ['backends', 'drain', 's3-1', '--wait', '--interval', '200ms'], true);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\r\x1b\[K\[[#.]+\] +\d+%  \d+\/\d+ items/);
    assert.match(r.out, /ETA /);
    assert.match(r.out, /state +done/);
    assert.match(r.out, new RegExp(`progress +100% {2}${n}/${n} items`));
    const list = await admin(f, ['jobs', 'list']);
    assert.match(list.out, /^ID +KIND +TARGET +STATE/m);
    assert.match(list.out, /drain +s3-1 +done +100%/);
    const json = JSON.parse((await admin(f, ['jobs', 'list', '--json', '--kind', 'drain'])).out) as { jobs: { id: string; state: string }[] };
    assert.equal(json.jobs[0]!.state, 'JOB_STATE_DONE');
    const get = JSON.parse((await admin(f, ['jobs', 'get', json.jobs[0]!.id, '--json'])).out) as { progress: { itemsDone: string } };
    assert.equal(get.progress.itemsDone, String(n));
    const cancelDrain = await admin(f, ['backends', 'cancel-drain', 's3-1']);
    assert.equal(cancelDrain.code, 0);
    assert.match(cancelDrain.out, /s3-1 is active again/);
  });

  test('rebalance plan prints the moves; apply --wait --json prints JSON lines, the last one final', async () => {
    await settleCleanup(f.orchs);
    const plan = await admin(f, ['rebalance', 'plan', '--max-moves', '3']);
    assert.equal(plan.code, 0, plan.err);
    assert.match(plan.out, /^BACKEND +QUOTA +BEFORE +AFTER/m);
    assert.match(plan.out, /strategy pack: \d+ move\(s\)/);
    const planJson = JSON.parse((await admin(f, ['rebalance', 'plan', '--json'])).out) as { moveCount: string; strategy: string };
    assert.equal(planJson.strategy, 'pack');
    assert.ok(Number(planJson.moveCount) > 0, 'pack wants the copies back on s3-1');
    const apply = await admin(f, ['rebalance', 'apply', '--wait', '--json', '--interval', '200ms']);
    assert.equal(apply.code, 0, apply.err);
    const lines = apply.out.trim().split('\n').map((l) => JSON.parse(l) as { state: string; kind: string });
    assert.ok(lines.length >= 1);
    assert.equal(lines.at(-1)!.state, 'JOB_STATE_DONE');
    assert.equal(lines.at(-1)!.kind, 'JOB_KIND_REBALANCE');
  });

  test('a cancelled job makes jobs watch exit 4', async () => {
    await settleCleanup(f.orchs);
    const started = JSON.parse((await admin(f, ['backends', 'drain', 's3-1', '--json'])).out) as { id: string };
    assert.equal((await admin(f, ['jobs', 'pause', started.id])).code, 0);
    const cancel = await admin(f, ['jobs', 'cancel', started.id, '--wait']);
    assert.equal(cancel.code, 4, cancel.out + cancel.err);
    assert.match(cancel.out, /state +cancelled/);
    assert.equal((await admin(f, ['jobs', 'watch', started.id])).code, 4);
    assert.equal((await admin(f, ['jobs', 'resume', started.id])).code, 1, 'a cancelled job cannot be resumed');
    assert.equal((await admin(f, ['backends', 'cancel-drain', 's3-1'])).code, 0);
  });

  test('examples/drain-backend.ts drains a backend with the generated client', async () => {
    await settleCleanup(f.orchs);
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/drain-backend.ts', '--server', f.adminUrl(), 's3-1'], {
      cwd: ROOT,
      env: { ...process.env, S3O_ADMIN_TOKEN: ADMIN_TOKEN, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    assert.match(stdout, /^started drain job \d+ of s3-1$/m);
    assert.match(stdout, /^done: [1-9]\d*\/\d+ copies/m);
    assert.match(stdout, /s3-1 holds no copies/);
    const { rows } = await f.orchs[0]!.db.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM object_copies WHERE backend = 's3-1'`);
    assert.equal(rows[0]!.n, 0);
    // Bad input exits non-zero with the reason.
    await assert.rejects(
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/drain-backend.ts', '--server', f.adminUrl(), 'nope'], {
        cwd: ROOT,
        env: { ...process.env, S3O_ADMIN_TOKEN: ADMIN_TOKEN },
      }),
      (e: { code?: number; stderr?: string }) => e.code === 1 && /NotFound/.test(e.stderr ?? ''),
    );
  });
});
