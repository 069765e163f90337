/**
 * DeleteObject and DeleteObjects (POST ?delete with an XML key list; quiet mode reports only errors).
 */
import type { S3Op } from '../router.js';
import { MAX_KEY_BYTES } from '../router.js';
import { xmlResult, type S3Result } from '../result.js';
import { el, parseDeleteRequest, xmlDocument, type Xml } from '../xml.js';
import { checkContentMd5, readSmallBody, type OpContext } from './common.js';
import { grantOf, keyAllowed } from '../access.js';

/** 1000 keys of at most 1024 bytes, generously escaped, fit in this. */
const MAX_DELETE_BODY = 8 * 1024 * 1024;

/** DeleteObject: 204 whether or not the key existed. */
export async function deleteObject(ctx: OpContext, op: Extract<S3Op, { op: 'DeleteObject' }>): Promise<S3Result> {
  await ctx.store.deleteObject(op.bucket, op.key);
  return { status: 204, headers: {} };
}

/** DeleteObjects. */
export async function deleteObjects(ctx: OpContext, op: Extract<S3Op, { op: 'DeleteObjects' }>): Promise<S3Result> {
  const { text, digests } = await readSmallBody(ctx, MAX_DELETE_BODY);
  checkContentMd5(ctx, digests.md5);
  const req = parseDeleteRequest(text);
  const grant = grantOf(ctx.auth.credential, op.bucket);
  const results: Xml[] = [];
  const keys: string[] = [];
  for (const o of req.objects) {
    if (o.versionId !== undefined && o.versionId !== 'null') {
      results.push(errorEntry(o.key, 'NotImplemented', 'Deleting object versions is not implemented.'));
    } else if (Buffer.byteLength(o.key) > MAX_KEY_BYTES) {
      results.push(errorEntry(o.key, 'KeyTooLongError', 'Your key is too long'));
    } else if (o.key === '') {
      results.push(errorEntry(o.key, 'UserKeyMustBeSpecified', 'The key must be specified.'));
    } else if (grant && !keyAllowed(grant, o.key)) {
      // A credential confined to a prefix deletes only under it; each other key is refused on its own.
      results.push(errorEntry(o.key, 'AccessDenied', 'Access Denied'));
    } else {
      keys.push(o.key);
    }
  }
  const outcomes = keys.length > 0 ? await ctx.store.deleteObjects(op.bucket, keys) : [];
  for (const out of outcomes) {
    if (out.error) results.push(errorEntry(out.key, out.error.code, out.error.message));
    else if (!req.quiet) results.push(el('Deleted', [el('Key', out.key)]));
  }
  return xmlResult(200, xmlDocument('DeleteResult', results));
}

function errorEntry(key: string, code: string, message: string): Xml {
  return el('Error', [el('Key', key), el('Code', code), el('Message', message)]);
}
