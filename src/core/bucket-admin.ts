/**
 * Managed buckets: created, changed and deleted at runtime through the admin API (BucketService) and
 * through S3 (CreateBucket by a credential allowed to create buckets, DeleteBucket of an empty bucket it
 * owns). Buckets the configuration file declares are config-owned: the API refuses to change them and
 * names the file and key path. Every change is announced on the change bus in its transaction, so every
 * instance's caches follow within a second.
 */
import { corsProblems, type CorsRule } from '../config/cors-rules.js';
import type { Db, Queryable } from '../meta/db.js';
import * as tq from '../meta/queries/tenants.js';
import { run } from '../meta/run.js';
import type { ChangeBus } from './changes.js';
import { ControlError, invalidField } from './control-errors.js';
import { CoreError } from './errors.js';
import type { Credential, GrantPermission } from './types.js';

/** A bucket as the admin API shows it. */
export interface ManagedBucket {
  name: string;
  createdAt: Date;
  /** `config` (the file declares it), `api` (BucketService.Create), `s3` (CreateBucket), `demo` (zero-config). */
  source: string;
  /** The credential that created it through S3, if any. */
  owner?: string;
  /** For config-owned buckets: `<file>: buckets[i]`. */
  configRef?: string;
  /** Copies of its versions; undefined follows `placement.replicas`. */
  replicas?: number;
  cors?: CorsRule[];
  objectCount: number;
  totalBytes: number;
  /** Multipart uploads in progress (they keep a bucket from being deleted). */
  hasUploads: boolean;
  grants: { accessKeyId: string; permission: GrantPermission; prefix: string }[];
}

interface BucketRow {
  name: string;
  created_at: Date;
  source: string;
  owner: string | null;
  config_ref: string | null;
  replicas: number | null;
  cors: CorsRule[] | null;
  object_count: number;
  total_bytes: number;
  has_uploads: boolean;
  grants: { accessKeyId: string; permission: GrantPermission; prefix: string }[];
}

/** Largest replicas value a bucket may ask for (the column's CHECK). */
export const MAX_REPLICAS = 16;

/** S3's bucket naming rules (the same the S3 router applies). */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !name.includes('.-') &&
    !name.includes('-.') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.endsWith('-s3alias')
  );
}

function toManaged(r: BucketRow): ManagedBucket {
  return {
    name: r.name,
    createdAt: r.created_at,
    source: r.source,
    ...(r.owner ? { owner: r.owner } : {}),
    ...(r.config_ref ? { configRef: r.config_ref } : {}),
    ...(r.replicas !== null ? { replicas: r.replicas } : {}),
    ...(r.cors ? { cors: r.cors } : {}),
    objectCount: Number(r.object_count),
    totalBytes: Number(r.total_bytes),
    hasUploads: r.has_uploads,
    grants: r.grants,
  };
}

function configOwned(name: string, ref: string, what: string): ControlError {
  const sep = ref.lastIndexOf(': ');
  const file = sep < 0 ? ref : ref.slice(0, sep);
  const keyPath = sep < 0 ? '' : ref.slice(sep + 2);
  return new ControlError(
    'FailedPrecondition',
    `bucket ${JSON.stringify(name)} is declared by the configuration file ${file} at ${keyPath}: ${what} there and reload`,
    { configOwned: { file, keyPath } },
  );
}

function checkReplicas(replicas: number | undefined): void {
  if (replicas === undefined) return;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
    throw invalidField('replicas', `must be between 1 and ${MAX_REPLICAS} (or unset to follow placement.replicas), got ${replicas}`);
  }
}

function checkCors(rules: readonly CorsRule[] | undefined): void {
  if (rules === undefined) return;
  const problems = corsProblems(rules);
  if (problems.length > 0) throw invalidField('cors_rules', problems.join('; '));
}

/** What {@link deleteBucketIfEmpty} and {@link BucketManager.delete} do with a non-empty bucket. */
export type PurgeStarter = (q: Queryable, bucket: string) => Promise<{ jobId: number }>;

/** The admin API's buckets. */
export class BucketManager {
  readonly #db: Db;
  readonly #changes: ChangeBus | undefined;
  readonly #purge: PurgeStarter | undefined;

  /** `purge` starts the job that empties and deletes a bucket (Delete with `force`); absent: force is refused. */
  constructor(db: Db, changes?: ChangeBus, purge?: PurgeStarter) {
    this.#db = db;
    this.#changes = changes;
    this.#purge = purge;
  }

  async list(): Promise<ManagedBucket[]> {
    const { rows } = await run<BucketRow>(this.#db, tq.selectBucketDetails());
    return rows.map(toManaged);
  }

  /** Throws ControlError NotFound. */
  async get(name: string): Promise<ManagedBucket> {
    if (name === '') throw invalidField('name', 'is required');
    const { rows } = await run<BucketRow>(this.#db, tq.selectBucketDetails(name));
    if (!rows[0]) throw new ControlError('NotFound', `bucket ${JSON.stringify(name)} does not exist`);
    return toManaged(rows[0]);
  }

  /** Creates a bucket owned by the API. Throws InvalidArgument (naming the field) or AlreadyExists. */
  async create(b: { name: string; replicas?: number; cors?: readonly CorsRule[] }): Promise<ManagedBucket> {
    if (b.name === '') throw invalidField('name', 'is required');
    if (!isValidBucketName(b.name)) {
      throw invalidField('name', `${JSON.stringify(b.name)} is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-'; starting and ending with a letter or digit)`);
    }
    checkReplicas(b.replicas);
    checkCors(b.cors);
    await this.#db.tx(async (q) => {
      const { rows } = await run(q, tq.insertBucket({ name: b.name, source: 'api', owner: null, replicas: b.replicas ?? null, cors: b.cors && b.cors.length > 0 ? b.cors : null }));
      if (!rows[0]) throw new ControlError('AlreadyExists', `bucket ${JSON.stringify(b.name)} already exists`);
      await this.#changes?.notify(q, 'buckets', b.name);
    });
    return this.get(b.name);
  }

  /**
   * Changes replicas (`replicas` null: follow placement.replicas) and/or CORS (`cors` [] removes the
   * configuration). Config-owned buckets: FailedPrecondition naming the file and key.
   */
  async update(name: string, set: { replicas?: number | null; cors?: readonly CorsRule[] }): Promise<ManagedBucket> {
    if (name === '') throw invalidField('name', 'is required');
    if (set.replicas !== null) checkReplicas(set.replicas);
    checkCors(set.cors);
    if (set.replicas === undefined && set.cors === undefined) throw invalidField('replicas', 'nothing to change: set replicas and/or cors');
    await this.#db.tx(async (q) => {
      const row = (await run<{ source: string; config_ref: string | null }>(q, tq.lockBucket(name))).rows[0];
      if (!row) throw new ControlError('NotFound', `bucket ${JSON.stringify(name)} does not exist`);
      if (row.source === 'config') {
        const field = set.replicas !== undefined ? 'replicas' : 'cors';
        throw configOwned(name, `${row.config_ref ?? 'configuration: buckets[]'}.${field}`, `change ${field}`);
      }
      const change: { replicas?: number | null; cors?: unknown } = {};
      if (set.replicas !== undefined) change.replicas = set.replicas;
      if (set.cors !== undefined) change.cors = set.cors.length > 0 ? set.cors : null;
      await run(q, tq.updateBucket(name, change));
      await this.#changes?.notify(q, 'buckets', name);
    });
    return this.get(name);
  }

  /**
   * Deletes an empty bucket; with `force` a non-empty one is emptied and deleted by a purge job (its id
   * is returned). Config-owned buckets: FailedPrecondition naming the file.
   */
  async delete(name: string, force: boolean): Promise<{ deleted: boolean; jobId?: number }> {
    if (name === '') throw invalidField('name', 'is required');
    return this.#db.tx(async (q) => {
      const row = (await run<{ source: string; config_ref: string | null }>(q, tq.lockBucket(name))).rows[0];
      if (!row) throw new ControlError('NotFound', `bucket ${JSON.stringify(name)} does not exist`);
      if (row.source === 'config') throw configOwned(name, row.config_ref ?? 'configuration: buckets[]', 'remove it');
      const contents = (await run<{ has_versions: boolean; has_uploads: boolean }>(q, tq.selectBucketContents(name))).rows[0]!;
      if (contents.has_versions || contents.has_uploads) {
        if (!force) {
          throw new ControlError(
            'FailedPrecondition',
            `bucket ${JSON.stringify(name)} is not empty (it holds objects${contents.has_uploads ? ' or multipart uploads' : ''}): delete them first, or delete with force to purge it as a job`,
          );
        }
        if (!this.#purge) throw new ControlError('FailedPrecondition', 'deleting a non-empty bucket with force needs the purge job, which this instance does not run');
        const { jobId } = await this.#purge(q, name);
        // Writers would keep the purge going: the bucket's credentials lose it now.
        await run(q, tq.dropBucketGrants(name));
        await this.#changes?.notify(q, 'buckets', name);
        await this.#changes?.notify(q, 'credentials');
        return { deleted: false, jobId };
      }
      await dropEmptyBucket(q, name);
      await this.#changes?.notify(q, 'buckets', name);
      await this.#changes?.notify(q, 'credentials');
      return { deleted: true };
    });
  }
}

/** Deletes a bucket row known to be empty; a write that filled it meanwhile makes it BucketNotEmpty. */
async function dropEmptyBucket(q: Queryable, name: string): Promise<void> {
  try {
    await run(q, tq.deleteBucket(name));
  } catch (err) {
    // object_versions / multipart_uploads reference the bucket ON DELETE RESTRICT.
    if ((err as { code?: string }).code === '23503') throw new CoreError('BucketNotEmpty', name, { cause: err });
    throw err;
  }
}

/**
 * S3 CreateBucket: a new bucket owned by `credential`, with a read-write grant to it. Throws CoreError
 * AccessDenied (may not create buckets), BucketAlreadyOwnedByYou, BucketAlreadyExists.
 */
export async function createOwnedBucket(db: Db, changes: ChangeBus | undefined, credential: Credential, name: string): Promise<void> {
  if (credential.buckets.includes(name)) throw new CoreError('BucketAlreadyOwnedByYou', name);
  if (!credential.canCreateBuckets) throw new CoreError('AccessDenied', 'This credential may not create buckets.');
  await db.tx(async (q) => {
    const { rows } = await run(q, tq.insertBucket({ name, source: 's3', owner: credential.accessKeyId, replicas: null, cors: null }));
    if (!rows[0]) throw new CoreError('BucketAlreadyExists', name);
    await run(q, tq.grant(credential.accessKeyId, name, 'read_write', ''));
    await changes?.notify(q, 'buckets', name);
    await changes?.notify(q, 'credentials', credential.accessKeyId);
  });
}

/**
 * S3 DeleteBucket: deletes `name` when `by` owns it (created it through S3) and it is empty. Throws
 * CoreError NoSuchBucket, AccessDenied (not its owner), BucketNotEmpty.
 */
export async function deleteBucketIfEmpty(db: Db, changes: ChangeBus | undefined, name: string, opts: { by: Credential }): Promise<void> {
  await db.tx(async (q) => {
    const row = (await run<{ source: string; owner: string | null }>(q, tq.lockBucket(name))).rows[0];
    if (!row) throw new CoreError('NoSuchBucket', name);
    if (row.source === 's3' && row.owner === opts.by.accessKeyId && opts.by.buckets.includes(name)) {
      const contents = (await run<{ has_versions: boolean; has_uploads: boolean }>(q, tq.selectBucketContents(name))).rows[0]!;
      if (contents.has_versions || contents.has_uploads) throw new CoreError('BucketNotEmpty', name);
      await dropEmptyBucket(q, name);
      await changes?.notify(q, 'buckets', name);
      await changes?.notify(q, 'credentials');
      return;
    }
    throw new CoreError('AccessDenied', 'Only the credential that created a bucket through S3 may delete it through S3.');
  });
}
