/**
 * Secrets at rest: every secret the database holds (S3 credential secrets, backend provider keys) is
 * stored sealed with AES-256-GCM under a master key that never enters the database.
 *
 * The master key comes from, in order: `server.master_key_file` (a file of 32 bytes written as 64 hex
 * digits or as base64, readable by its owner only), the `S3O_MASTER_KEY` variable (same encoding), or —
 * for the embedded database only — `<database.path>/master.key`, generated (0600) on first start.
 *
 * Sealed format: `v1:<keyId>:<base64(iv[12] | tag[16] | ciphertext)>`. `keyId` is the first 8 hex
 * digits of SHA-256 over the key, so a value sealed under another key is recognised as such (the error
 * names both ids) instead of failing as "corrupt". Secrets are never logged: errors name the key's
 * source and id, never a plaintext or a key.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

/** The file name of the generated key under the embedded database's directory. */
export const GENERATED_KEY_FILE = 'master.key';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bound into every seal (GCM additional data): a sealed value of some other format never opens. */
const AAD = Buffer.from('s3o-secret-v1');

/** A master key problem: missing, unreadable, too widely readable, malformed, or the wrong key. */
export class MasterKeyError extends Error {
  override readonly name = 'MasterKeyError';
}

/** Seals and opens secrets under one master key. */
export class SecretBox {
  readonly #key: Buffer;
  /** First 8 hex digits of SHA-256(key): names the key in sealed values and errors. */
  readonly keyId: string;
  /** Where the key came from (a file path or `S3O_MASTER_KEY`), for error messages. */
  readonly source: string;

  constructor(key: Buffer, source: string) {
    if (key.length !== 32) throw new MasterKeyError(`master key (${source}) must be 32 bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
    this.source = source;
  }

  /** Encrypts `plain` under a fresh random IV. */
  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(AAD);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${VERSION}:${this.keyId}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** Decrypts a value sealed by `seal` under this key; throws MasterKeyError otherwise. */
  open(sealed: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 3 || parts[0] !== VERSION) throw new MasterKeyError('not a sealed secret (expected v1:<keyId>:<data>)');
    const [, keyId, data] = parts as [string, string, string];
    if (keyId !== this.keyId) {
      throw new MasterKeyError(
        `secret was sealed under master key ${keyId}, but the loaded master key (${this.source}) is ${this.keyId}: ` +
          'start with the key it was sealed under, or rotate with `s3-orchestrator rotate-master-key`',
      );
    }
    const raw = Buffer.from(data, 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new MasterKeyError('sealed secret is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(AAD);
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new MasterKeyError(`sealed secret does not open under master key ${this.keyId} (${this.source}): wrong key or corrupted value`);
    }
  }

  /** Whether `value` looks like a sealed secret (of any key). */
  static isSealed(value: string): boolean {
    return /^v1:[0-9a-f]{8}:[A-Za-z0-9+/=]+$/.test(value);
  }

  /** The key id a sealed value names, or undefined when it is not sealed. */
  static keyIdOf(value: string): string | undefined {
    return SecretBox.isSealed(value) ? value.split(':')[1] : undefined;
  }
}

/** Where to find the master key; the first one given wins. */
export interface MasterKeyOptions {
  /** `server.master_key_file`. */
  file?: string;
  /** The value of `S3O_MASTER_KEY` (the caller reads the environment). */
  env?: string;
  /** The embedded database's directory: a key is generated there when absent. Undefined → no default. */
  dataDir?: string;
}

/** Parses a key written as 64 hex digits or as base64 of 32 bytes; `what` names it in the error. */
export function parseMasterKey(text: string, what: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^(?:[0-9a-fA-F]{2})+$/.test(t)) {
    throw new MasterKeyError(`${what}: the master key must be 32 bytes (64 hex digits), got ${t.length} hex digits (${t.length / 2} bytes)`);
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    if (b.length === 32) return b;
    throw new MasterKeyError(`${what}: the master key must be 32 bytes (64 hex digits or 44 base64 characters), got ${b.length} bytes`);
  }
  throw new MasterKeyError(`${what}: the master key must be 32 bytes written as 64 hex digits or 44 base64 characters (got ${t.length} characters)`);
}

/** A new random key, written as base64 (the form `generateMasterKeyText` users put in a file or the variable). */
export function generateMasterKeyText(): string {
  return randomBytes(32).toString('base64');
}

/** Reads a key file, refusing one that group or others may read or write, or of the wrong length. */
export async function readMasterKeyFile(file: string, what = `master key file ${file}`): Promise<Buffer> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new MasterKeyError(`${what}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!st.isFile()) throw new MasterKeyError(`${what}: not a regular file`);
  const mode = st.mode & 0o777;
  if (mode & 0o077) {
    throw new MasterKeyError(
      `${what} has permissions ${mode.toString(8).padStart(4, '0')}: it must be readable by its owner only (chmod 600 ${file})`,
    );
  }
  return parseMasterKey(await readFile(file, 'utf8'), what);
}

/**
 * Loads the master key: `file`, else `env`, else the generated key under `dataDir` (created with mode 0600
 * when absent; two processes racing to create it agree, the loser reads the winner's). Throws
 * MasterKeyError naming the key's source when none is configured or the one found is unusable.
 */
export async function loadMasterKey(opts: MasterKeyOptions): Promise<SecretBox> {
  if (opts.file) return new SecretBox(await readMasterKeyFile(opts.file, `server.master_key_file (${opts.file})`), opts.file);
  if (opts.env !== undefined && opts.env !== '') return new SecretBox(parseMasterKey(opts.env, 'S3O_MASTER_KEY'), 'S3O_MASTER_KEY');
  if (opts.dataDir) {
    const file = path.join(opts.dataDir, GENERATED_KEY_FILE);
    await createKeyFileOnce(file);
    return new SecretBox(await readMasterKeyFile(file, `generated master key ${file}`), file);
  }
  throw new MasterKeyError(
    'no master key: set server.master_key_file or the S3O_MASTER_KEY variable (required with database.url: ' +
      'every instance sharing the database needs the same key)',
  );
}

/**
 * Creates `file` with a new key (mode 0600) unless it exists. The key is written whole under a temporary
 * name, then linked into place: a racing process either links first or finds the complete file (its link
 * fails with EEXIST), never a half-written one.
 */
export async function createKeyFileOnce(file: string): Promise<void> {
  if (await stat(file).then(() => true, () => false)) return;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    try {
      await fh.writeFile(generateMasterKeyText() + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } catch (err) {
    throw new MasterKeyError(`cannot create the master key ${file}: ${(err as Error).message}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
