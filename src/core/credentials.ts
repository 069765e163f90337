/**
 * Scoped credentials managed at runtime (the admin API's CredentialService): created with a generated
 * access key and secret (the secret is returned once and stored sealed under the master key), listed,
 * changed and revoked. Each grant names a bucket, a permission (read or read-write) and optionally a key
 * prefix the credential is confined to; the S3 layer enforces them (s3/access.ts). Every change is
 * announced on the change bus in its transaction, so every instance's credential cache drops the entry
 * within a second. Credentials the configuration file declares cannot be changed here: the refusal
 * names the file and key path.
 */
import { randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../meta/db.js';
import * as tq from '../meta/queries/tenants.js';
import { run } from '../meta/run.js';
import type { ChangeBus } from './changes.js';
import { ControlError, invalidField } from './control-errors.js';
import type { SecretBox } from './secrets.js';
import type { CredentialRow } from './tenants.js';
import type { Grant, GrantPermission } from './types.js';

/** A credential as the admin API shows it: never its secret. */
export interface ManagedCredential {
  accessKeyId: string;
  description: string;
  /** `config` (the file declares it), `api` (CredentialService.Create), `demo` (zero-config). */
  source: string;
  /** For config-owned credentials: `<file>: buckets[i].credentials[j]`. */
  configRef?: string;
  canCreateBuckets: boolean;
  grants: Grant[];
  createdAt: Date;
  updatedAt: Date;
  /** Set once revoked: the key no longer authenticates. */
  revokedAt?: Date;
}

/** A grant as a caller asks for it. */
export interface GrantInput {
  bucket: string;
  permission: GrantPermission;
  prefix?: string;
}

/** Longest key prefix a grant may name (S3 keys are at most 1024 bytes). */
const MAX_PREFIX_BYTES = 1024;
/** Longest description kept. */
const MAX_DESCRIPTION = 256;
const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A new access key id: `S3O` + 17 characters of [A-Z2-7], 20 in all like AWS's. */
export function newAccessKeyId(): string {
  const bytes = randomBytes(17);
  return 'S3O' + [...bytes].map((b) => KEY_ALPHABET[b & 31]).join('');
}

/** A new secret: 40 characters of base64url (240 random bits). */
export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64url');
}

function toManaged(r: CredentialRow): ManagedCredential {
  return {
    accessKeyId: r.access_key_id,
    description: r.description,
    source: r.source,
    ...(r.config_ref ? { configRef: r.config_ref } : {}),
    canCreateBuckets: r.can_create_buckets,
    grants: r.grants.map((g) => ({ bucket: g.bucket, permission: g.permission, prefix: g.prefix })),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.revoked_at ? { revokedAt: r.revoked_at } : {}),
  };
}

function checkDescription(d: string | undefined): void {
  if (d !== undefined && d.length > MAX_DESCRIPTION) throw invalidField('description', `is at most ${MAX_DESCRIPTION} characters, got ${d.length}`);
}

/** Validates grants (one per bucket, a known permission, a prefix S3 can hold); the buckets' existence is checked in the transaction. */
function checkGrants(grants: readonly GrantInput[]): Grant[] {
  const seen = new Set<string>();
  return grants.map((g, i) => {
    if (g.bucket === '') throw invalidField(`grants[${i}].bucket`, 'is required');
    if (seen.has(g.bucket)) throw invalidField(`grants[${i}].bucket`, `bucket ${JSON.stringify(g.bucket)} is granted twice (one grant per bucket)`);
    seen.add(g.bucket);
    if (g.permission !== 'read' && g.permission !== 'read_write') throw invalidField(`grants[${i}].permission`, 'must be PERMISSION_READ or PERMISSION_READ_WRITE');
    const prefix = g.prefix ?? '';
    if (Buffer.byteLength(prefix, 'utf8') > MAX_PREFIX_BYTES) throw invalidField(`grants[${i}].prefix`, `is at most ${MAX_PREFIX_BYTES} bytes`);
    if (prefix.includes('\0')) throw invalidField(`grants[${i}].prefix`, 'must not contain NUL');
    return { bucket: g.bucket, permission: g.permission, prefix };
  });
}

function configOwned(accessKeyId: string, ref: string): ControlError {
  const sep = ref.lastIndexOf(': ');
  const file = sep < 0 ? ref : ref.slice(0, sep);
  const keyPath = sep < 0 ? '' : ref.slice(sep + 2);
  return new ControlError(
    'FailedPrecondition',
    `credential ${accessKeyId} is declared by the configuration file ${file} at ${keyPath}: change or remove it there and reload`,
    { configOwned: { file, keyPath } },
  );
}

/** The admin API's credentials. */
export class CredentialManager {
  readonly #db: Db;
  readonly #secrets: SecretBox;
  readonly #changes: ChangeBus | undefined;

  constructor(db: Db, secrets: SecretBox, changes?: ChangeBus) {
    this.#db = db;
    this.#secrets = secrets;
    this.#changes = changes;
  }

  /** Creates a credential; its secret is in the result and nowhere else (it is stored sealed). */
  async create(input: { description?: string; grants: readonly GrantInput[]; canCreateBuckets?: boolean }): Promise<{ credential: ManagedCredential; secretAccessKey: string }> {
    checkDescription(input.description);
    const grants = checkGrants(input.grants);
    const secretAccessKey = newSecretAccessKey();
    const accessKeyId = await this.#db.tx(async (q) => {
      await this.#bucketsExist(q, grants);
      for (let attempt = 0; ; attempt++) {
        const id = newAccessKeyId();
        const { rows } = await run(q, tq.insertCredential({
          accessKeyId: id,
          sealedSecret: this.#secrets.seal(secretAccessKey),
          source: 'api',
          description: input.description ?? '',
          canCreateBuckets: input.canCreateBuckets ?? false,
        }));
        if (rows[0]) {
          for (const g of grants) await run(q, tq.grant(id, g.bucket, g.permission, g.prefix));
          await this.#changes?.notify(q, 'credentials', id);
          return id;
        }
        // 85 random bits collide only in theory; never loop for ever on a broken generator.
        if (attempt >= 3) throw new Error('could not generate an unused access key id');
      }
    });
    return { credential: await this.get(accessKeyId), secretAccessKey };
  }

  /** Credentials sorted by access key id; revoked ones only with `includeRevoked`; optionally those granted `bucket`. */
  async list(opts: { bucket?: string; includeRevoked?: boolean } = {}): Promise<ManagedCredential[]> {
    const { rows } = await run<CredentialRow>(this.#db, tq.selectCredentialRows({ includeRevoked: opts.includeRevoked ?? false, ...(opts.bucket ? { bucket: opts.bucket } : {}) }));
    return rows.map(toManaged);
  }

  /** Throws ControlError NotFound. */
  async get(accessKeyId: string): Promise<ManagedCredential> {
    if (accessKeyId === '') throw invalidField('access_key_id', 'is required');
    const { rows } = await run<CredentialRow>(this.#db, tq.selectCredentialRow(accessKeyId));
    if (!rows[0]) throw new ControlError('NotFound', `credential ${JSON.stringify(accessKeyId)} does not exist`);
    return toManaged(rows[0]);
  }

  /**
   * Changes the description, the right to create buckets and/or the grants (replaced as a whole when
   * given). Config-owned or revoked credentials: FailedPrecondition.
   */
  async update(
    accessKeyId: string,
    set: { description?: string; canCreateBuckets?: boolean; grants?: readonly GrantInput[] },
  ): Promise<ManagedCredential> {
    if (accessKeyId === '') throw invalidField('access_key_id', 'is required');
    if (set.description === undefined && set.canCreateBuckets === undefined && set.grants === undefined) {
      throw invalidField('grants', 'nothing to change: set description, can_create_buckets and/or grants');
    }
    checkDescription(set.description);
    const grants = set.grants ? checkGrants(set.grants) : undefined;
    await this.#db.tx(async (q) => {
      await this.#lockChangeable(q, accessKeyId);
      if (grants) {
        await this.#bucketsExist(q, grants);
        await run(q, tq.revokeAll(accessKeyId));
        for (const g of grants) await run(q, tq.grant(accessKeyId, g.bucket, g.permission, g.prefix));
      }
      const change: { description?: string; canCreateBuckets?: boolean } = {};
      if (set.description !== undefined) change.description = set.description;
      if (set.canCreateBuckets !== undefined) change.canCreateBuckets = set.canCreateBuckets;
      await run(q, tq.updateCredential(accessKeyId, change));
      await this.#changes?.notify(q, 'credentials', accessKeyId);
    });
    return this.get(accessKeyId);
  }

  /** Revokes a credential: it stops authenticating on every instance within a second; its secret is erased. */
  async revoke(accessKeyId: string): Promise<ManagedCredential> {
    if (accessKeyId === '') throw invalidField('access_key_id', 'is required');
    await this.#db.tx(async (q) => {
      await this.#lockChangeable(q, accessKeyId);
      await run(q, tq.revokeCredential(accessKeyId));
      await this.#changes?.notify(q, 'credentials', accessKeyId);
    });
    return this.get(accessKeyId);
  }

  /** Locks the row; NotFound, or FailedPrecondition for config-owned and revoked credentials. */
  async #lockChangeable(q: Queryable, accessKeyId: string): Promise<CredentialRow> {
    const row = (await run<CredentialRow>(q, tq.selectCredentialRow(accessKeyId, true))).rows[0];
    if (!row) throw new ControlError('NotFound', `credential ${JSON.stringify(accessKeyId)} does not exist`);
    if (row.source === 'config') throw configOwned(accessKeyId, row.config_ref ?? 'configuration: buckets[].credentials[]');
    if (row.revoked_at) throw new ControlError('FailedPrecondition', `credential ${accessKeyId} was revoked at ${row.revoked_at.toISOString()}; create a new one`);
    return row;
  }

  async #bucketsExist(q: Queryable, grants: readonly Grant[]): Promise<void> {
    if (grants.length === 0) return;
    const { rows } = await run<{ name: string }>(q, tq.selectBuckets(grants.map((g) => g.bucket)));
    const known = new Set(rows.map((r) => r.name));
    grants.forEach((g, i) => {
      if (!known.has(g.bucket)) throw new ControlError('NotFound', `grants[${i}].bucket: bucket ${JSON.stringify(g.bucket)} does not exist`, { field: `grants[${i}].bucket` });
    });
  }
}
