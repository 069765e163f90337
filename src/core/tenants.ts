import { randomBytes } from 'node:crypto';
import type { BucketConfig } from '../config/types.js';
import type { Db } from '../meta/db.js';
import * as tq from '../meta/queries/tenants.js';
import type { CorsRule } from './cors.js';
import { CoreError, isDbUnavailable } from './errors.js';
import type { BucketInfo, Credential, TenantDirectory } from './types.js';
import { run } from '../meta/run.js';

/** How long a looked-up credential or bucket is trusted before it is read again (ms). */
const CACHE_TTL_MS = 5_000;

interface CredentialRow {
  access_key_id: string;
  secret_access_key: string;
  buckets: string[];
}

/**
 * Buckets and credentials, read from the database (so every instance sees the same tenants) through a
 * short-lived cache: a request's credential lookup must not cost a query on the hot path.
 */
export class DbTenantDirectory implements TenantDirectory {
  readonly #db: Db;
  readonly #creds = new Map<string, { at: number; value: Credential | undefined }>();
  readonly #buckets = new Map<string, { at: number; value: BucketInfo | undefined }>();
  /** The last value read from the database per `c:<access key id>` / `b:<bucket>` (see #orLastKnown). */
  readonly #lastKnown = new Map<string, Credential | BucketInfo | undefined>();

  constructor(db: Db) {
    this.#db = db;
  }

  async lookupCredential(accessKeyId: string): Promise<Credential | undefined> {
    const hit = this.#creds.get(accessKeyId);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.value;
    const value = await this.#orLastKnown(`c:${accessKeyId}`, async () => {
      const { rows } = await run<CredentialRow>(this.#db, tq.selectCredential(accessKeyId));
      const r = rows[0];
      return r ? { accessKeyId: r.access_key_id, secretAccessKey: r.secret_access_key, buckets: r.buckets } : undefined;
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
    const { rowCount } = await run(this.#db, tq.updateCors(name, rules ?? null));
    if (rowCount === 0) throw new CoreError('NoSuchBucket', name);
    this.#buckets.delete(name);
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
 * Makes the database agree with the configured buckets and credentials: buckets are created (never
 * deleted: they may hold objects), config credentials are replaced by the file's. One transaction.
 */
export async function syncTenants(db: Db, buckets: readonly BucketConfig[]): Promise<void> {
  await db.tx(async (q) => {
    const keep: string[] = [];
    for (const b of buckets) {
      await run(q, tq.upsertBucket(b.name, 'config'));
      await run(q, tq.setBucketReplicas(b.name, b.replicas ?? null));
      if (b.cors) await run(q, tq.updateCors(b.name, b.cors));
    }
    const grants = new Map<string, { secret: string; buckets: string[] }>();
    for (const b of buckets) {
      for (const c of b.credentials) {
        const g = grants.get(c.accessKeyId) ?? { secret: c.secretAccessKey, buckets: [] };
        g.buckets.push(b.name);
        grants.set(c.accessKeyId, g);
      }
    }
    for (const [akid, g] of grants) {
      keep.push(akid);
      await run(q, tq.upsertCredential(akid, g.secret, 'config'));
      await run(q, tq.revokeAll(akid));
      for (const b of g.buckets) await run(q, tq.grant(akid, b));
    }
    await run(q, tq.deleteConfigCredentialsExcept(keep));
  });
}

/** The zero-config bucket and its credential, created once and stored; later starts read them back. */
export async function ensureDemoTenant(db: Db): Promise<{ bucket: string; accessKeyId: string; secretAccessKey: string; created: boolean }> {
  const bucket = 'demo';
  return db.tx(async (q) => {
    const existing = await run<{ value: string }>(q, tq.getSetting('demo.access_key_id'));
    if (existing.rows[0]) {
      const akid = existing.rows[0].value;
      const { rows } = await run<CredentialRow>(q, tq.selectCredential(akid));
      if (rows[0]) return { bucket, accessKeyId: akid, secretAccessKey: rows[0].secret_access_key, created: false };
    }
    const accessKeyId = 'S3O' + randomBytes(10).toString('hex').toUpperCase().slice(0, 17);
    const secretAccessKey = randomBytes(30).toString('base64url');
    await run(q, tq.upsertBucket(bucket, 'demo'));
    await run(q, tq.upsertCredential(accessKeyId, secretAccessKey, 'demo'));
    await run(q, tq.grant(accessKeyId, bucket));
    await q.query(`DELETE FROM settings WHERE key = 'demo.access_key_id'`);
    await run(q, tq.setSettingOnce('demo.access_key_id', accessKeyId));
    return { bucket, accessKeyId, secretAccessKey, created: true };
  });
}
