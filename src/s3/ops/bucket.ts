/**
 * Bucket-level operations: ListBuckets, HeadBucket, GetBucketLocation, GetBucketVersioning,
 * CreateBucket and DeleteBucket. Buckets come from the configuration, the admin API, or CreateBucket by
 * a credential allowed to create buckets (which then owns the bucket and may delete it while empty).
 */
import { S3Error } from '../errors.js';
import { isoDate } from '../headers.js';
import type { S3Op } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, xmlDocument } from '../xml.js';
import { ownerXml, readSmallBody, type OpContext } from './common.js';
import { parseCreateBucketConfiguration } from '../xml-requests.js';

type Op<K extends S3Op['op']> = Extract<S3Op, { op: K }>;

async function requireBucket(ctx: OpContext, bucket: string): Promise<void> {
  if (!(await ctx.tenants.getBucket(bucket))) throw new S3Error('NoSuchBucket', undefined, { BucketName: bucket });
}

/** ListBuckets: exactly the buckets the requesting credential has a grant on. */
export async function listBuckets(ctx: OpContext): Promise<S3Result> {
  const buckets = await ctx.tenants.listBuckets(ctx.auth.credential.buckets);
  return xmlResult(
    200,
    xmlDocument('ListAllMyBucketsResult', [
      ownerXml(ctx),
      el(
        'Buckets',
        buckets.map((b) => el('Bucket', [el('Name', b.name), el('CreationDate', isoDate(b.createdAt))])),
      ),
    ]),
  );
}

/** HeadBucket: 200 with the region, 404 without a body when missing. */
export async function headBucket(ctx: OpContext, op: Op<'HeadBucket'>): Promise<S3Result> {
  await requireBucket(ctx, op.bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': ctx.config.region } };
}

/** GetBucketLocation: empty for us-east-1, as S3 answers. */
export async function getBucketLocation(ctx: OpContext, op: Op<'GetBucketLocation'>): Promise<S3Result> {
  await requireBucket(ctx, op.bucket);
  const region = ctx.config.region === 'us-east-1' ? '' : ctx.config.region;
  return xmlResult(200, xmlDocument('LocationConstraint', region));
}

/** GetBucketVersioning: versioning has never been enabled, so the configuration is empty. */
export async function getBucketVersioning(ctx: OpContext, op: Op<'GetBucketVersioning'>): Promise<S3Result> {
  await requireBucket(ctx, op.bucket);
  return xmlResult(200, xmlDocument('VersioningConfiguration', []));
}

/** A CreateBucketConfiguration is a few hundred bytes. */
const MAX_CREATE_BODY = 64 * 1024;

/**
 * CreateBucket: a bucket the credential already has a grant on is the us-east-1 "you already own it"
 * success; otherwise the credential must be allowed to create buckets (AccessDenied otherwise) and the
 * name must be free (BucketAlreadyExists otherwise); the new bucket is owned by the credential, which gets
 * a read-write grant on it. A LocationConstraint must name this endpoint's region (S3 answers
 * IllegalLocationConstraintException otherwise; an empty one means us-east-1).
 */
export async function createBucket(ctx: OpContext, op: Op<'CreateBucket'>): Promise<S3Result> {
  const { text } = await readSmallBody(ctx, MAX_CREATE_BODY);
  if (text.trim() !== '') {
    const { locationConstraint } = parseCreateBucketConfiguration(text);
    const region = locationConstraint === undefined || locationConstraint === '' ? 'us-east-1' : locationConstraint;
    if (!/^[a-z0-9-]{1,64}$/.test(region)) throw new S3Error('InvalidLocationConstraint', undefined, { LocationConstraint: region });
    if (region !== ctx.config.region) {
      throw new S3Error(
        'IllegalLocationConstraintException',
        `The ${region} location constraint is incompatible for the region specific endpoint this request was sent to.`,
      );
    }
  }
  if (!ctx.auth.credential.buckets.includes(op.bucket)) await ctx.tenants.createBucketFor(ctx.auth.credential, op.bucket);
  return { status: 200, headers: { Location: `/${op.bucket}` } };
}

/**
 * DeleteBucket: only an empty bucket the credential created through S3 (BucketNotEmpty when it holds
 * objects or uploads); any other bucket is AccessDenied (they are managed by the configuration and the
 * admin API).
 */
export async function deleteBucket(ctx: OpContext, op: Op<'DeleteBucket'>): Promise<S3Result> {
  if (!ctx.auth.credential.buckets.includes(op.bucket)) throw new S3Error('AccessDenied');
  await ctx.tenants.deleteBucketFor(ctx.auth.credential, op.bucket);
  return { status: 204, headers: {} };
}
