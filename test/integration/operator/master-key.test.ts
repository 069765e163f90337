/**
 * The master key at the orchestrator's start and `rotate-master-key`: with `database.url` a key is
 * required; a key file others may read or of the wrong length is refused naming it; a database sealed
 * under another key is refused naming both key ids; rotation re-seals every secret (credentials and
 * backend provider keys) so that the new key works and the old one no longer does; the embedded default
 * generates its key (0600) and rotates it in place.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { startOrchestrator, type Orchestrator } from '../../../src/app.js';
import { runRotateMasterKey } from '../../../src/cli/rotate-cmd.js';
import { loadConfigFile } from '../../../src/config/load.js';
import { SecretBox } from '../../../src/core/secrets.js';
import { createLogger } from '../../../src/log.js';
import { embeddedTemplateCopy, freshDatabase, type TestDatabase } from '../../harness/db.js';
import { clientFor } from '../../harness/orchestrator.js';

const CRED = { accessKeyId: 'AKIAMASTERKEYTEST001', secretAccessKey: 'master-key-test-secret-0123456789' };
const log = createLogger({}, 'error');
// This file decides the key itself: the harness's shared key must not be in the way.
const sharedKey = process.env.S3O_MASTER_KEY;
delete process.env.S3O_MASTER_KEY;

let dir: string;
let db: TestDatabase;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 's3o-master-key-'));
  // The embedded server may run as the user postgres (as root), which must be able to enter it.
  await chmod(dir, 0o711);
  db = await freshDatabase('postgres');
});
after(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
  if (sharedKey !== undefined) process.env.S3O_MASTER_KEY = sharedKey;
});

async function keyFile(name: string, mode = 0o600, bytes = 32): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, randomBytes(bytes).toString('hex') + '\n', { mode });
  await chmod(file, mode);
  return file;
}

/** A configuration file over the test schema, one fs backend and one bucket with CRED. */
async function configFile(name: string, server: Record<string, unknown>, database: Record<string, unknown>, disk = 'disk'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(
    file,
    stringify({
      server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' }, ...server },
      database,
      backends: [{ name: 'disk', type: 'fs', path: path.join(dir, disk) }],
      buckets: [{ name: 'keyed', credentials: [{ access_key_id: CRED.accessKeyId, secret_access_key: CRED.secretAccessKey }] }],
    }),
  );
  return file;
}

async function start(file: string): Promise<Orchestrator> {
  return startOrchestrator(await loadConfigFile(file), { log, workers: false });
}

async function canSign(o: Orchestrator): Promise<boolean> {
  const c = clientFor(`http://127.0.0.1:${o.s3Port}`, CRED);
  try {
    const r = await c.send(new ListBucketsCommand({}));
    return r.Buckets?.[0]?.Name === 'keyed';
  } finally {
    c.destroy();
  }
}

function sink() {
  let text = '';
  return { write: (c: string) => (text += c), get text() { return text; } };
}

describe('master key with database.url', () => {
  const pgDb = () => ({ url: db.config.url, schema: db.config.schema });

  test('no key configured: the start fails saying how to give one', async () => {
    const file = await configFile('nokey.yaml', {}, pgDb());
    await assert.rejects(start(file), /no master key: set server\.master_key_file or the S3O_MASTER_KEY variable \(required with database\.url/);
  });

  test('a key file group or others may read, or of the wrong length, is refused naming it', async () => {
    const wide = await keyFile('wide.key', 0o644);
    await assert.rejects(start(await configFile('wide.yaml', { master_key_file: wide }, pgDb())), (err: Error) => {
      assert.match(err.message, /server\.master_key_file/);
      assert.ok(err.message.includes(wide));
      assert.match(err.message, /permissions 0644.*chmod 600/);
      return true;
    });
    const short = await keyFile('short.key', 0o600, 16);
    await assert.rejects(start(await configFile('short.yaml', { master_key_file: short }, pgDb())), /short\.key\): the master key must be 32 bytes .*got 32 hex digits \(16 bytes\)/);
  });

  test('secrets sealed under one key: another key is refused naming both ids; rotation moves them to the new key', async () => {
    const first = await keyFile('first.key');
    const second = await keyFile('second.key');
    const withFirst = await configFile('first.yaml', { master_key_file: first }, pgDb());
    const withSecond = await configFile('second.yaml', { master_key_file: second }, pgDb());
    const firstId = new SecretBox(Buffer.from((await readFile(first, 'utf8')).trim(), 'hex'), 'x').keyId;
    const secondId = new SecretBox(Buffer.from((await readFile(second, 'utf8')).trim(), 'hex'), 'x').keyId;

    let o = await start(withFirst);
    assert.ok(await canSign(o));
    // A backend provider key sealed like a credential secret (the backends.secret column of schema 6).
    await o.db.query(`UPDATE backends SET secret = $1 WHERE name = 'disk'`, [new SecretBox(Buffer.from((await readFile(first, 'utf8')).trim(), 'hex'), 'x').seal('provider-secret')]);
    await o.stop();

    await assert.rejects(start(withSecond), (err: Error) => {
      assert.match(err.message, new RegExp(`sealed under master key ${firstId}, but the loaded master key \\(${second.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) is ${secondId}`));
      return true;
    });

    // Rotation needs the new key named when the current one comes from a file.
    let err = sink();
    assert.equal(await runRotateMasterKey(['--config', withFirst], sink(), err, {}), 2);
    assert.match(err.text, /--new-key-file FILE is required: the current key comes from server\.master_key_file/);
    const wide = await keyFile('wide-new.key', 0o640);
    err = sink();
    assert.equal(await runRotateMasterKey(['--config', withFirst, '--new-key-file', wide], sink(), err, {}), 1);
    assert.match(err.text, /--new-key-file .*wide-new\.key has permissions 0640/);
    err = sink();
    assert.equal(await runRotateMasterKey(['--config', withFirst, '--new-key-file', first], sink(), err, {}), 1);
    assert.match(err.text, /the new key is the current key/);

    const out = sink();
    err = sink();
    assert.equal(await runRotateMasterKey(['--config', withFirst, '--new-key-file', second], out, err, {}), 0, err.text);
    assert.match(out.text, new RegExp(`re-sealed 2 secrets under master key ${secondId} \\(was ${firstId}\\) — credentials\\.secret_access_key: 1, backends\\.secret: 1`));
    // Now the second key starts and verifies signatures; the first is refused.
    o = await start(withSecond);
    try {
      assert.ok(await canSign(o));
      const sealed = await o.db.query<{ v: string }>(`SELECT secret_access_key AS v FROM credentials`);
      assert.equal(sealed.rows.length, 1);
      assert.equal(SecretBox.keyIdOf(sealed.rows[0]!.v), secondId);
      const box = new SecretBox(Buffer.from((await readFile(second, 'utf8')).trim(), 'hex'), 'x');
      assert.equal(box.open(sealed.rows[0]!.v), CRED.secretAccessKey);
    } finally {
      await o.stop();
    }
    await assert.rejects(start(withFirst), new RegExp(`sealed under master key ${secondId}`));
    // Running it again (an interrupted rotation repaired): values already under the new key are skipped.
    const again = sink();
    assert.equal(await runRotateMasterKey(['--config', withFirst, '--new-key-file', second], again, sink(), {}), 0);
    assert.match(again.text, /re-sealed 0 secrets/);
  });

  test('S3O_MASTER_KEY works like the file', async () => {
    const key = randomBytes(32).toString('base64');
    const file = await configFile('env.yaml', {}, { url: db.config.url, schema: `${db.config.schema}` });
    // The schema holds secrets under second.key: rotate them to the variable's key first.
    const keyPath = path.join(dir, 'env.key');
    await writeFile(keyPath, key, { mode: 0o600 });
    assert.equal(await runRotateMasterKey(['--config', await configFile('second-again.yaml', { master_key_file: path.join(dir, 'second.key') }, { url: db.config.url, schema: db.config.schema }), '--new-key-file', keyPath], sink(), sink(), {}), 0);
    process.env.S3O_MASTER_KEY = key;
    try {
      const o = await start(file);
      try {
        assert.ok(await canSign(o));
        const c = clientFor(`http://127.0.0.1:${o.s3Port}`, CRED);
        await c.send(new PutObjectCommand({ Bucket: 'keyed', Key: 'k', Body: 'v' }));
        c.destroy();
      } finally {
        await o.stop();
      }
    } finally {
      delete process.env.S3O_MASTER_KEY;
    }
  });
});

describe('master key of the embedded database', () => {
  test('generated under database.path with mode 0600, kept across starts, rotated in place', async () => {
    const pgDir = path.join(dir, 'embedded-pg');
    await mkdir(pgDir, { recursive: true });
    await embeddedTemplateCopy(pgDir);
    const file = await configFile('embedded.yaml', {}, { path: pgDir }, 'disk-embedded');
    let o = await start(file);
    const keyFilePath = path.join(pgDir, 'master.key');
    try {
      assert.ok(await canSign(o));
    } finally {
      await o.stop();
    }
    assert.equal((await stat(keyFilePath)).mode & 0o777, 0o600);
    const before = await readFile(keyFilePath, 'utf8');
    o = await start(file);
    await o.stop();
    assert.equal(await readFile(keyFilePath, 'utf8'), before, 'a later start reads the same key');

    const out = sink();
    const err = sink();
    assert.equal(await runRotateMasterKey(['--config', file], out, err, {}), 0, err.text);
    assert.match(out.text, /re-sealed 1 secret under master key [0-9a-f]{8}/);
    assert.match(out.text, /master\.key now holds the new key/);
    const after = await readFile(keyFilePath, 'utf8');
    assert.notEqual(after, before);
    assert.equal((await stat(keyFilePath)).mode & 0o777, 0o600);
    await assert.rejects(stat(`${keyFilePath}.next`), /ENOENT/);
    o = await start(file);
    try {
      assert.ok(await canSign(o));
    } finally {
      await o.stop();
    }
  });
});
