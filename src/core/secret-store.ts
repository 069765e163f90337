/**
 * The sealed columns of the database as a whole (meta/queries/sealed.ts lists them): sealing the plain
 * values an older version left, checking at start-up that the loaded master key opens what is stored,
 * and re-sealing everything under a new key (`s3-orchestrator rotate-master-key`), in one transaction.
 */
import type { Db, Queryable } from '../meta/db.js';
import { columnExists, SEALED_COLUMNS, selectSealed, updateSealed } from '../meta/queries/sealed.js';
import { run } from '../meta/run.js';
import { MasterKeyError, SecretBox } from './secrets.js';

/** Sealed values per column, e.g. `{ 'credentials.secret_access_key': 3 }`. */
export type SealedCounts = Record<string, number>;

async function* sealedValues(q: Queryable): AsyncGenerator<{ column: (typeof SEALED_COLUMNS)[number]; name: string; id: string; value: string }> {
  for (const column of SEALED_COLUMNS) {
    if ((await run(q, columnExists(column))).rows.length === 0) continue;
    const { rows } = await run<{ id: string; value: string }>(q, selectSealed(column));
    for (const r of rows) yield { column, name: `${column.table}.${column.column}`, id: r.id, value: r.value };
  }
}

/**
 * At start-up, before anything reads a secret: seals every plain value (written by a version without
 * secrets at rest) and checks that `box` opens the sealed ones, failing with a MasterKeyError that names
 * the key ids when the stored secrets were sealed under another key. Returns the values sealed now.
 */
export async function sealPlaintextSecrets(db: Db, box: SecretBox): Promise<SealedCounts> {
  return db.tx(async (q) => {
    const sealed: SealedCounts = {};
    const foreign = new Set<string>();
    for await (const v of sealedValues(q)) {
      if (!SecretBox.isSealed(v.value)) {
        await run(q, updateSealed(v.column, v.id, v.value, box.seal(v.value)));
        sealed[v.name] = (sealed[v.name] ?? 0) + 1;
      } else if (SecretBox.keyIdOf(v.value) !== box.keyId) {
        foreign.add(SecretBox.keyIdOf(v.value)!);
      } else {
        box.open(v.value);
      }
    }
    if (foreign.size > 0) {
      throw new MasterKeyError(
        `the database holds secrets sealed under master key ${[...foreign].join(', ')}, but the loaded master key (${box.source}) is ${box.keyId}: ` +
          'start with the key they were sealed under (server.master_key_file or S3O_MASTER_KEY); every instance sharing a database needs the same key',
      );
    }
    return sealed;
  });
}

/**
 * Re-seals every secret under `next` in one transaction (all or nothing). Values already sealed under
 * `next` are left as they are, so a rotation interrupted before its commit can simply be run again.
 * Values sealed under neither key fail the whole rotation, naming the key id found.
 */
export async function rotateSecrets(db: Db, current: SecretBox, next: SecretBox): Promise<SealedCounts> {
  return db.tx(async (q) => {
    const counts: SealedCounts = {};
    for await (const v of sealedValues(q)) {
      let plain: string;
      if (!SecretBox.isSealed(v.value)) plain = v.value;
      else if (SecretBox.keyIdOf(v.value) === next.keyId) continue;
      else plain = current.open(v.value);
      await run(q, updateSealed(v.column, v.id, v.value, next.seal(plain)));
      counts[v.name] = (counts[v.name] ?? 0) + 1;
    }
    return counts;
  });
}
