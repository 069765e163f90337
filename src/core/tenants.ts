import { randomBytes } from 'node:crypto';
import type { BucketConfig } from '../config/types.js';
import type { Db } from '../meta/db.js';
import * as tq from '../meta/queries/tenants.js';
import { run } from '../meta/run.js';
import { createOwnedBucket, deleteBucketIfEmpty } from './bucket-admin.js';
import type { ChangeBus } from './changes.js';
import type { CorsRule } from './cors.js';
import { CoreError, isDbUnavailable } from './errors.js';
import { MasterKeyError, type SecretBox } from './secrets.js';
import type { BucketInfo, Credential, Grant, TenantDirectory } from './types.js';

/**
 * How long a looked-up credential or bucket is trusted before it is read again (ms). The change bus
 * drops entries as soon as another instance announces a change, so this only bounds staleness when a
 * notification is lost (the bus's own fallback refresh also clears the caches every few seconds).
 */
const CACHE_TTL_MS = 5_000;

/** A credential row with its grants, as meta/queries/tenants.ts selects it. */
export interface CredentialRow {
  access_key_id: string;
  secret_access_key: string;
  source: string;
  description: string;
  can_create_buckets: boolean;
  created_at: Date;
  updated_at: Date;
  revoked_at: Date | null;
  config_ref: string | null;
  grants: Grant[];
}

/**
 * Buckets and credentials, read from the database (so every instance sees the same tenants) through a
 * short-lived cache: a request's credential lookup must not cost a query on the hot path. Secrets are
 * stored sealed (core/secrets.ts) and opened here, once per cache fill.
 */
export class DbTenantDirectory implements TenantDirectory {
  readonly #db: Db;
  readonly #secrets: SecretBox | undefined;
  readonly #changes: ChangeBus | undefined;
  readonly #creds = new Map<string, { at: number; value: Credential | undefined }>();
  readonly #buckets = new Map<string, { at: number; value: BucketInfo | undefined }>();
  /** The last value read from the database per `c:<access key id>` / `b:<bucket>` (see #orLastKnown). */
  readonly #lastKnown = new Map<string, Credential | BucketInfo | undefined>();
  #unsubscribe: (() => void)[] = [];

  /**
   * `secrets` opens the stored secrets (without it no credential can be looked up: only bucket reads
   * work, as core-level tests need). With `changes`, the caches follow changes announced by any
   * instance (see {@link ChangeBus}).
   */
  constructor(db: Db, secrets?: SecretBox, changes?: ChangeBus) {
    this.#db = db;
    this.#secrets = secrets;
    this.#changes = changes;
    if (changes) {
      this.#unsubscribe = [
        changes.subscribe('credentials', (id) => this.forget('credentials', id)),
        changes.subscribe('buckets', (name) => this.forget('buckets', name)),
      ];
    }
  }

  /** Drops cached entries: one (by access key id or bucket name) or, without `id`, all of a kind. */
  forget(kind: 'credentials' | 'buckets', id?: string): void {
    const map = kind === 'credentials' ? this.#creds : this.#buckets;
    if (id === undefined) map.clear();
    else map.delete(id);
    // A bucket change (deleted, created by S3) changes the grants credentials carry.
    if (kind === 'buckets') this.#creds.clear();
  }

  /** Stops following the change bus. */
  close(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
  }

  async lookupCredential(accessKeyId: string): Promise<Credential | undefined> {
    const hit = this.#creds.get(accessKeyId);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.value;
    const value = await this.#orLastKnown(`c:${accessKeyId}`, async () => {
      const { rows } = await run<CredentialRow>(this.#db, tq.selectActiveCredential(accessKeyId));
      return rows[0] ? this.#toCredential(rows[0]) : undefined;
    });
    this.#remember(this.#creds, accessKeyId, value);
    return value;
  }

  async getBucket(name: string): Promise<BucketInfo | undefined> {
    const hit = this.#buckets.get(name);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.value;
    const value = await this.#orLastKnown(`b:${name}`, async () => (await this.listBuckets([name]))[0]);
    this.#remember(this.#buckets, name, value);
    return value;
  }

  async listBuckets(names?: readonly string[]): Promise<BucketInfo[]> {
    const { rows } = await run<{ name: string; created_at: Date; cors: CorsRule[] | null }>(this.#db, tq.selectBuckets(names));
    return rows.map((r) => ({ name: r.name, createdAt: r.created_at, ...(r.cors ? { cors: r.cors } : {}) }));
  }

  async setBucketCors(name: string, rules: readonly CorsRule[] | undefined): Promise<void> {
    await this.#db.tx(async (q) => {
      const { rowCount } = await run(q, tq.updateCors(name, rules ?? null));
      if (rowCount === 0) throw new CoreError('NoSuchBucket', name);
      await this.#changes?.notify(q, 'buckets', name);
    });
    this.#buckets.delete(name);
  }

  async createBucketFor(credential: Credential, name: string): Promise<void> {
    await createOwnedBucket(this.#db, this.#changes, credential, name);
    this.forget('buckets', name);
    this.#creds.delete(credential.accessKeyId);
  }

  async deleteBucketFor(credential: Credential, name: string): Promise<void> {
    await deleteBucketIfEmpty(this.#db, this.#changes, name, { by: credential });
    this.forget('buckets', name);
  }

  #toCredential(r: CredentialRow): Credential {
    const grants = r.grants.map((g) => ({ bucket: g.bucket, permission: g.permission, prefix: g.prefix }));
    return {
      accessKeyId: r.access_key_id,
      secretAccessKey: requireBox(this.#secrets).open(r.secret_access_key),
      buckets: grants.map((g) => g.bucket),
      grants,
      canCreateBuckets: r.can_create_buckets,
    };
  }

  #remember<V>(map: Map<string, { at: number; value: V }>, key: string, value: V): void {
    if (map.size > 10_000) map.clear();
    map.set(key, { at: Date.now(), value });
  }

  /**
   * Loads `id` from the database and keeps the value as the last known one; while the database is
   * unreachable, answers the last known value instead (SigV4 verification and bucket checks of degraded
   * GET/HEAD, core/degraded.ts). Never cleared by {@link forget}: a value is replaced only by a newer read.
   */
  async #orLastKnown<V extends Credential | BucketInfo>(id: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    try {
      const value = await load();
      if (this.#lastKnown.size > 10_000) this.#lastKnown.clear();
      this.#lastKnown.set(id, value);
      return value;
    } catch (err) {
      if (isDbUnavailable(err) && this.#lastKnown.has(id)) return this.#lastKnown.get(id) as V | undefined;
      throw err;
    }
  }
}

/**
 * Makes the database agree with the configured buckets and credentials, in one transaction: buckets are
 * created or marked config-owned (never deleted: they may hold objects), config credentials get the
 * file's secret (sealed) and exactly the file's grants (read-write on each bucket that lists them).
 * Buckets the file no longer declares become API-owned; credentials it no longer declares are revoked. `file` is named in the rows' config_ref,
 * which the admin API quotes when it refuses to change them.
 */
export async function syncTenants(
  db: Db,
  buckets: readonly BucketConfig[],
  secrets?: SecretBox,
  opts: { file?: string; changes?: ChangeBus } = {},
): Promise<void> {
  const ref = (path: string) => `${opts.file ?? 'configuration'}: ${path}`;
  await db.tx(async (q) => {
    for (const [i, b] of buckets.entries()) {
      await run(q, tq.upsertBucket(b.name, 'config', ref(`buckets[${i}]`)));
      await run(q, tq.updateBucket(b.name, { replicas: b.replicas ?? null }));
      if (b.cors) await run(q, tq.updateCors(b.name, b.cors));
    }
    const grants = new Map<string, { secret: string; at: string; buckets: string[] }>();
    for (const [i, b] of buckets.entries()) {
      for (const [j, c] of b.credentials.entries()) {
        const g = grants.get(c.accessKeyId) ?? { secret: c.secretAccessKey, at: `buckets[${i}].credentials[${j}]`, buckets: [] };
        g.buckets.push(b.name);
        grants.set(c.accessKeyId, g);
      }
    }
    for (const [akid, g] of grants) {
      await run(q, tq.upsertConfigCredential(akid, requireBox(secrets).seal(g.secret), ref(g.at)));
      await run(q, tq.revokeAll(akid));
      for (const b of g.buckets) await run(q, tq.grant(akid, b));
    }
    // Entries the file no longer declares: their data stays (a bucket is handed to the API, which may
    // delete it under the usual checks); a credential is revoked, as an API removal would.
    await run(q, tq.releaseConfigBuckets(buckets.map((b) => b.name)));
    await run(q, tq.revokeConfigCredentialsExcept([...grants.keys()]));
    // Every instance re-reads what it caches (the file may have changed keys other instances hold).
    await opts.changes?.notify(q, 'credentials');
    await opts.changes?.notify(q, 'buckets');
  });
}

function requireBox(box: SecretBox | undefined): SecretBox {
  if (!box) throw new MasterKeyError('no master key loaded: secrets cannot be sealed or opened');
  return box;
}

/** The zero-config bucket and its credential, created once and stored; later starts read them back. */
export async function ensureDemoTenant(
  db: Db,
  secrets: SecretBox,
): Promise<{ bucket: string; accessKeyId: string; secretAccessKey: string; created: boolean }> {
  const bucket = 'demo';
  return db.tx(async (q) => {
    const existing = await run<{ value: string }>(q, tq.getSetting('demo.access_key_id'));
    if (existing.rows[0]) {
      const akid = existing.rows[0].value;
      const { rows } = await run<CredentialRow>(q, tq.selectActiveCredential(akid));
      if (rows[0]) return { bucket, accessKeyId: akid, secretAccessKey: secrets.open(rows[0].secret_access_key), created: false };
    }
    const accessKeyId = 'S3O' + randomBytes(10).toString('hex').toUpperCase().slice(0, 17);
    const secretAccessKey = randomBytes(30).toString('base64url');
    await run(q, tq.upsertBucket(bucket, 'demo'));
    await run(q, tq.insertCredential({ accessKeyId, sealedSecret: secrets.seal(secretAccessKey), source: 'demo', description: 'zero-config demo credential', canCreateBuckets: false }));
    await run(q, tq.grant(accessKeyId, bucket));
    await q.query(`DELETE FROM settings WHERE key = 'demo.access_key_id'`);
    await run(q, tq.setSettingOnce('demo.access_key_id', accessKeyId));
    return { bucket, accessKeyId, secretAccessKey, created: true };
  });
}
