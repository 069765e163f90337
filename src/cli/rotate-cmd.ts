/**
 * `s3-orchestrator rotate-master-key`: re-seals every secret the database holds (credential secrets,
 * backend provider keys: meta/queries/sealed.ts) under a new master key, in one transaction.
 *
 * With a key from `server.master_key_file` or `S3O_MASTER_KEY`, the new key is `--new-key-file FILE`
 * (mode 0600); afterwards every instance must start with it (point the setting or variable at it). With
 * the embedded default (`<database.path>/master.key`) the command generates the new key itself: it is
 * written to `master.key.next` first, the secrets are re-sealed, and only after the commit does it replace
 * `master.key`. A crash in between is repaired by running the command again (values already sealed under
 * the new key are skipped, and a `master.key.next` left behind is the key used).
 */
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { zeroConfig } from '../config/defaults.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/types.js';
import { rotateSecrets } from '../core/secret-store.js';
import { createKeyFileOnce, GENERATED_KEY_FILE, loadMasterKey, MasterKeyError, readMasterKeyFile, SecretBox } from '../core/secrets.js';
import { createLogger } from '../log.js';
import { openDatabase } from '../meta/open.js';

interface TextSink {
  write(chunk: string): unknown;
}

export const ROTATE_USAGE = `usage: s3-orchestrator rotate-master-key (--config FILE | --data DIR) [--new-key-file FILE]

  Re-seals every secret in the metadata database (credential secrets, backend provider keys) under a new
  master key, in one transaction. The current key is found as at start-up (server.master_key_file,
  S3O_MASTER_KEY, or the embedded default <database.path>/master.key).

  --config FILE        the configuration file (as for serve)
  --data DIR           zero-config data directory (as for serve --data)
  --new-key-file FILE  the new key: 32 bytes as 64 hex digits or base64, mode 0600. Required unless the
                       current key is the embedded default, which is then replaced by a generated one.

  Stop the instances first (the embedded database refuses a second process anyway); start them again
  with the new key. Exit 0 done, 1 failed (nothing changed), 2 usage.
`;

/** Runs the command; returns the exit code. */
export async function runRotateMasterKey(args: string[], out: TextSink = process.stdout, e: TextSink = process.stderr, env = process.env): Promise<number> {
  let values: { config?: string | undefined; data?: string | undefined; 'new-key-file'?: string | undefined };
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string' }, data: { type: 'string' }, 'new-key-file': { type: 'string' } } }));
  } catch (err) {
    e.write(`rotate-master-key: ${err instanceof Error ? err.message : String(err)}\n\n${ROTATE_USAGE}`);
    return 2;
  }
  if ((values.config === undefined) === (values.data === undefined)) {
    e.write(`rotate-master-key: give exactly one of --config FILE or --data DIR\n\n${ROTATE_USAGE}`);
    return 2;
  }
  let config: Config;
  try {
    config = values.config ? await loadConfigFile(values.config) : zeroConfig(values.data);
  } catch (err) {
    e.write(err instanceof ConfigError ? `${err.message}\n` : `rotate-master-key: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const embeddedDefault = !config.server.masterKeyFile && !env.S3O_MASTER_KEY && !config.database.url;
  if (!values['new-key-file'] && !embeddedDefault) {
    e.write(
      `rotate-master-key: --new-key-file FILE is required: the current key comes from ${config.server.masterKeyFile ? `server.master_key_file (${config.server.masterKeyFile})` : 'S3O_MASTER_KEY'}\n`,
    );
    return 2;
  }
  try {
    const current = await loadMasterKey({
      ...(config.server.masterKeyFile ? { file: config.server.masterKeyFile } : {}),
      ...(env.S3O_MASTER_KEY ? { env: env.S3O_MASTER_KEY } : {}),
      ...(config.database.url ? {} : { dataDir: config.database.path }),
    });
    const generated = embeddedDefault && !values['new-key-file'] ? path.join(config.database.path, GENERATED_KEY_FILE) : undefined;
    const next = generated
      ? await loadMasterKey({ file: await nextKeyFile(generated) })
      : new SecretBox(await readMasterKeyFile(values['new-key-file']!, `--new-key-file ${values['new-key-file']}`), values['new-key-file']!);
    if (next.keyId === current.keyId) throw new MasterKeyError(`the new key is the current key (${current.keyId})`);
    const { db } = await openDatabase(config.database, { log: createLogger({}, 'warn') });
    let counts;
    try {
      counts = await rotateSecrets(db, current, next);
    } finally {
      await db.close();
    }
    if (generated) await rename(`${generated}.next`, generated);
    const total = Object.values(counts).reduce((n, c) => n + c, 0);
    const detail = Object.entries(counts).map(([col, n]) => `${col}: ${n}`).join(', ');
    out.write(`re-sealed ${total} secret${total === 1 ? '' : 's'} under master key ${next.keyId} (was ${current.keyId})${detail ? ` — ${detail}` : ''}\n`);
    out.write(
      generated
        ? `${generated} now holds the new key\n`
        : `start every instance with the new key: set server.master_key_file to ${values['new-key-file']} (or S3O_MASTER_KEY to its contents)\n`,
    );
    return 0;
  } catch (err) {
    e.write(`rotate-master-key: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** `<key>.next`: generated (0600) unless a rotation that did not finish left one, which is reused. */
async function nextKeyFile(generated: string): Promise<string> {
  const file = `${generated}.next`;
  await createKeyFileOnce(file);
  return file;
}
