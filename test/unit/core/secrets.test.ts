import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GENERATED_KEY_FILE, loadMasterKey, MasterKeyError, SecretBox } from '../../../src/core/secrets.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 's3o-secrets-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function keyFile(name: string, text: string, mode = 0o600): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text, { mode });
  await chmod(file, mode);
  return file;
}

describe('SecretBox', () => {
  test('seal then open gives the plaintext back; two seals of one value differ', () => {
    const box = new SecretBox(randomBytes(32), 'test');
    const a = box.seal('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    const b = box.seal('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    assert.notEqual(a, b);
    assert.match(a, new RegExp(`^v1:${box.keyId}:[A-Za-z0-9+/=]+$`));
    assert.ok(!a.includes('wJalr'));
    assert.equal(box.open(a), 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    assert.equal(box.open(box.seal('')), '');
    assert.equal(box.open(box.seal('ünïcødé ✓')), 'ünïcødé ✓');
    assert.ok(SecretBox.isSealed(a));
    assert.equal(SecretBox.keyIdOf(a), box.keyId);
    assert.ok(!SecretBox.isSealed('plain-secret'));
  });

  test('a value sealed under another key fails naming both key ids', () => {
    const one = new SecretBox(randomBytes(32), 'one');
    const two = new SecretBox(randomBytes(32), 'two');
    const sealed = one.seal('s');
    assert.throws(() => two.open(sealed), (err: Error) => {
      assert.ok(err instanceof MasterKeyError);
      assert.match(err.message, new RegExp(`sealed under master key ${one.keyId}.*\\(two\\) is ${two.keyId}`));
      return true;
    });
  });

  test('a tampered value or a forged key id fails clearly', () => {
    const box = new SecretBox(randomBytes(32), 'k');
    const sealed = box.seal('secret');
    const raw = Buffer.from(sealed.split(':')[2]!, 'base64');
    raw[raw.length - 1]! ^= 1;
    const tampered = `v1:${box.keyId}:${raw.toString('base64')}`;
    assert.throws(() => box.open(tampered), /does not open under master key .*wrong key or corrupted value/);
    const other = new SecretBox(randomBytes(32), 'other');
    const forged = `v1:${box.keyId}:${other.seal('x').split(':')[2]}`;
    assert.throws(() => box.open(forged), /wrong key or corrupted value/);
    assert.throws(() => box.open('plain'), /not a sealed secret/);
    assert.throws(() => box.open(`v1:${box.keyId}:AAAA`), /truncated/);
  });
});

describe('loadMasterKey', () => {
  test('a key file (hex or base64) with mode 0600 loads; both encodings of one key give one key id', async () => {
    const key = randomBytes(32);
    const hex = await loadMasterKey({ file: await keyFile('hex.key', key.toString('hex') + '\n') });
    const b64 = await loadMasterKey({ file: await keyFile('b64.key', key.toString('base64')) });
    assert.equal(hex.keyId, b64.keyId);
    assert.equal(b64.open(hex.seal('x')), 'x');
  });

  test('a key file group or others may read is refused, naming the file and its mode', async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const file = await keyFile(`wide-${mode.toString(8)}.key`, randomBytes(32).toString('hex'), mode);
      await assert.rejects(loadMasterKey({ file }), (err: Error) => {
        assert.ok(err instanceof MasterKeyError);
        assert.match(err.message, /server\.master_key_file/);
        assert.ok(err.message.includes(file));
        assert.ok(err.message.includes('0' + mode.toString(8)), err.message);
        assert.match(err.message, /chmod 600/);
        return true;
      });
    }
  });

  test('a key of the wrong length is refused, naming the key', async () => {
    const short = await keyFile('short.key', randomBytes(16).toString('hex'));
    await assert.rejects(loadMasterKey({ file: short }), /server\.master_key_file \(.*short\.key\): the master key must be 32 bytes .*got 32 hex digits \(16 bytes\)/);
    const junk = await keyFile('junk.key', 'not a key at all!');
    await assert.rejects(loadMasterKey({ file: junk }), /junk\.key\): the master key must be 32 bytes/);
    await assert.rejects(loadMasterKey({ env: randomBytes(31).toString('base64') }), /^MasterKeyError: S3O_MASTER_KEY: the master key must be 32 bytes.*got 31 bytes/);
    await assert.rejects(loadMasterKey({ file: path.join(dir, 'missing.key') }), /missing\.key\): cannot read it \(ENOENT\)/);
  });

  test('the file wins over the variable, the variable over the generated key', async () => {
    const fileKey = randomBytes(32);
    const envKey = randomBytes(32);
    const file = await keyFile('pref.key', fileKey.toString('hex'));
    const a = await loadMasterKey({ file, env: envKey.toString('base64'), dataDir: dir });
    assert.equal(a.keyId, new SecretBox(fileKey, 'x').keyId);
    const b = await loadMasterKey({ env: envKey.toString('base64'), dataDir: dir });
    assert.equal(b.keyId, new SecretBox(envKey, 'x').keyId);
    assert.equal(b.source, 'S3O_MASTER_KEY');
  });

  test('the embedded default generates a 0600 key once and reads it back on later starts', async () => {
    const data = await mkdtemp(path.join(dir, 'data-'));
    const [first, racing] = await Promise.all([loadMasterKey({ dataDir: data }), loadMasterKey({ dataDir: data })]);
    assert.equal(first.keyId, racing.keyId);
    const file = path.join(data, GENERATED_KEY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').length, 32);
    const again = await loadMasterKey({ dataDir: data });
    assert.equal(again.open(first.seal('kept')), 'kept');
    await chmod(file, 0o644);
    await assert.rejects(loadMasterKey({ dataDir: data }), /generated master key .*master\.key has permissions 0644/);
  });

  test('no key configured and no data directory: a clear error', async () => {
    await assert.rejects(loadMasterKey({}), /no master key: set server\.master_key_file or the S3O_MASTER_KEY variable/);
    await assert.rejects(loadMasterKey({ env: '' }), /no master key/);
  });
});
