import type { ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  BucketService,
  type BucketServiceListBucketsRequest,
  type CorsRule as WireCorsRule,
  type CreateBucketRequest,
  type DeleteBucketRequest,
  type GetBucketRequest,
  type ManagedBucketSchema,
  type UpdateBucketRequest,
} from '../../gen/s3o/admin/v1/buckets_pb.js';
import { Permission } from '../../gen/s3o/admin/v1/credentials_pb.js';
import type { BucketManager, ManagedBucket } from '../core/bucket-admin.js';
import type { CorsRule } from '../core/cors.js';
import type { Logger } from '../log.js';
import { controlCall } from './backends-service.js';

/**
 * s3o.admin.v1.BucketService over core/bucket-admin.ts: converts between wire messages and core's plain
 * objects; errors go through the control-plane mapping (FieldViolation, ConfigOwned details).
 */

function corsFromWire(rules: readonly WireCorsRule[]): CorsRule[] {
  return rules.map((r) => ({
    ...(r.id ? { id: r.id } : {}),
    allowedOrigins: [...r.allowedOrigins],
    allowedMethods: [...r.allowedMethods],
    allowedHeaders: [...r.allowedHeaders],
    exposeHeaders: [...r.exposeHeaders],
    ...(r.maxAgeSeconds !== undefined ? { maxAgeSeconds: r.maxAgeSeconds } : {}),
  }));
}

/** A bucket as the wire message. */
export function bucketToWire(b: ManagedBucket): MessageInitShape<typeof ManagedBucketSchema> {
  return {
    name: b.name,
    createdAt: timestampFromDate(b.createdAt),
    source: b.source,
    configRef: b.configRef ?? '',
    owner: b.owner ?? '',
    replicas: b.replicas ?? 0,
    corsRules: (b.cors ?? []).map((r) => ({
      id: r.id ?? '',
      allowedOrigins: r.allowedOrigins,
      allowedMethods: r.allowedMethods,
      allowedHeaders: r.allowedHeaders,
      exposeHeaders: r.exposeHeaders,
      ...(r.maxAgeSeconds !== undefined ? { maxAgeSeconds: r.maxAgeSeconds } : {}),
    })),
    objectCount: BigInt(Math.max(0, b.objectCount)),
    totalBytes: BigInt(Math.max(0, b.totalBytes)),
    hasUploads: b.hasUploads,
    grants: b.grants.map((g) => ({ accessKeyId: g.accessKeyId, permission: g.permission === 'read' ? Permission.READ : Permission.READ_WRITE, prefix: g.prefix })),
  };
}

export class BucketServiceImpl implements ServiceImpl<typeof BucketService> {
  readonly #buckets: BucketManager;
  readonly #log: Logger;

  constructor(buckets: BucketManager, log: Logger) {
    this.#buckets = buckets;
    this.#log = log;
  }

  #call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    return controlCall(this.#log, method, fn);
  }

  createBucket(req: CreateBucketRequest) {
    return this.#call('CreateBucket', async () => {
      const b = await this.#buckets.create({
        name: req.name,
        ...(req.replicas !== 0 ? { replicas: req.replicas } : {}),
        ...(req.corsRules.length > 0 ? { cors: corsFromWire(req.corsRules) } : {}),
      });
      this.#log.info('bucket created', { bucket: b.name });
      return { bucket: bucketToWire(b) };
    });
  }

  getBucket(req: GetBucketRequest) {
    return this.#call('GetBucket', async () => ({ bucket: bucketToWire(await this.#buckets.get(req.name)) }));
  }

  listBuckets(_req: BucketServiceListBucketsRequest) {
    return this.#call('ListBuckets', async () => ({ buckets: (await this.#buckets.list()).map(bucketToWire) }));
  }

  updateBucket(req: UpdateBucketRequest) {
    return this.#call('UpdateBucket', async () => {
      const set: Parameters<BucketManager['update']>[1] = {};
      if (req.replicas !== undefined) set.replicas = req.replicas === 0 ? null : req.replicas;
      if (req.cors !== undefined) set.cors = corsFromWire(req.cors.rules);
      const b = await this.#buckets.update(req.name, set);
      this.#log.info('bucket updated', { bucket: b.name });
      return { bucket: bucketToWire(b) };
    });
  }

  deleteBucket(req: DeleteBucketRequest) {
    return this.#call('DeleteBucket', async () => {
      const r = await this.#buckets.delete(req.name, req.force);
      this.#log.info(r.deleted ? 'bucket deleted' : 'bucket purge started', { bucket: req.name, ...(r.jobId !== undefined ? { jobId: r.jobId } : {}) });
      return { deleted: r.deleted, jobId: BigInt(r.jobId ?? 0) };
    });
  }
}
