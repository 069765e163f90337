/**
 * Strict parsers for the XML request bodies of multipart, tagging, CORS and CreateBucket, on top of the
 * minimal parser in xml.ts. Anything not matching S3's schema is MalformedXML; value rules S3 reports
 * with other codes (tag limits, CORS methods) are checked by the handlers.
 */
import type { CorsRule } from '../core/cors.js';
import { S3Error } from './errors.js';
import { elementsOf, parseXml, textOf, type XmlElement } from './xml.js';

function malformed(why: string): S3Error {
  return new S3Error('MalformedXML', undefined, {}, { cause: new Error(why) });
}

function root(body: string, name: string): XmlElement {
  if (body.trim() === '') throw malformed(`empty body, expected ${name}`);
  const r = parseXml(body);
  if (r.name !== name) throw malformed(`root is ${r.name}, expected ${name}`);
  return r;
}

/** One part as listed in CompleteMultipartUpload (ETag without quotes). */
export interface CompletePart {
  partNumber: number;
  etag: string;
  /** The part's checksum in whichever `Checksum<ALGO>` element was sent. */
  checksum?: string;
}

const PART_CHECKSUMS = new Set(['ChecksumCRC32', 'ChecksumCRC32C', 'ChecksumCRC64NVME', 'ChecksumSHA1', 'ChecksumSHA256']);

/**
 * Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/><ChecksumCRC32/>?</Part>…`: 1 to 10000
 * parts, each with a PartNumber and an ETag. Order is kept (core checks that it ascends).
 */
export function parseCompleteMultipartUpload(body: string): CompletePart[] {
  const parts: CompletePart[] = [];
  for (const p of elementsOf(root(body, 'CompleteMultipartUpload'))) {
    if (p.name !== 'Part') throw malformed(`unknown element ${p.name}`);
    let partNumber: number | undefined;
    let etag: string | undefined;
    let checksum: string | undefined;
    for (const f of elementsOf(p)) {
      const v = textOf(f).trim();
      if (f.name === 'PartNumber') {
        if (!/^\d{1,9}$/.test(v)) throw malformed('PartNumber is not an integer');
        partNumber = Number(v);
      } else if (f.name === 'ETag') {
        etag = v.replace(/^"(.*)"$/, '$1');
      } else if (PART_CHECKSUMS.has(f.name)) {
        if (checksum !== undefined) throw malformed('more than one checksum for a part');
        checksum = v;
      } else throw malformed(`unknown part field ${f.name}`);
    }
    if (partNumber === undefined || etag === undefined) throw malformed('Part without PartNumber or ETag');
    parts.push(checksum === undefined ? { partNumber, etag } : { partNumber, etag, checksum });
  }
  if (parts.length === 0 || parts.length > 10000) throw malformed('CompleteMultipartUpload must list 1 to 10000 parts');
  return parts;
}

/**
 * Parses `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>` into key/value pairs in
 * document order (duplicates kept so validation can report them).
 */
export function parseTagging(body: string): [string, string][] {
  const sets = elementsOf(root(body, 'Tagging'));
  if (sets.length !== 1 || sets[0]!.name !== 'TagSet') throw malformed('Tagging must hold exactly one TagSet');
  const out: [string, string][] = [];
  for (const tag of elementsOf(sets[0]!)) {
    if (tag.name !== 'Tag') throw malformed(`unknown element ${tag.name}`);
    let key: string | undefined;
    let value: string | undefined;
    for (const f of elementsOf(tag)) {
      if (f.name === 'Key' && key === undefined) key = textOf(f);
      else if (f.name === 'Value' && value === undefined) value = textOf(f);
      else throw malformed(`unexpected ${f.name} in Tag`);
    }
    if (key === undefined || value === undefined) throw malformed('Tag without Key or Value');
    out.push([key, value]);
  }
  return out;
}

/**
 * Parses `<CORSConfiguration><CORSRule>…</CORSRule>…</CORSConfiguration>`. Each rule needs at least one
 * AllowedOrigin and AllowedMethod; MaxAgeSeconds must be a whole number. Method names are not checked
 * here (S3 reports unknown ones as InvalidRequest).
 */
export function parseCorsConfiguration(body: string): CorsRule[] {
  const rules: CorsRule[] = [];
  for (const r of elementsOf(root(body, 'CORSConfiguration'))) {
    if (r.name !== 'CORSRule') throw malformed(`unknown element ${r.name}`);
    const rule: CorsRule = { allowedOrigins: [], allowedMethods: [], allowedHeaders: [], exposeHeaders: [] };
    for (const f of elementsOf(r)) {
      const v = textOf(f).trim();
      switch (f.name) {
        case 'ID':
          if (rule.id !== undefined) throw malformed('repeated ID');
          rule.id = v;
          break;
        case 'AllowedOrigin':
          rule.allowedOrigins.push(v);
          break;
        case 'AllowedMethod':
          rule.allowedMethods.push(v);
          break;
        case 'AllowedHeader':
          rule.allowedHeaders.push(v);
          break;
        case 'ExposeHeader':
          rule.exposeHeaders.push(v);
          break;
        case 'MaxAgeSeconds':
          if (!/^\d{1,9}$/.test(v) || rule.maxAgeSeconds !== undefined) throw malformed('MaxAgeSeconds is not a whole number');
          rule.maxAgeSeconds = Number(v);
          break;
        default:
          throw malformed(`unknown CORSRule field ${f.name}`);
      }
    }
    if (rule.allowedOrigins.length === 0 || rule.allowedMethods.length === 0) {
      throw malformed('CORSRule needs AllowedOrigin and AllowedMethod');
    }
    rules.push(rule);
  }
  if (rules.length === 0) throw malformed('CORSConfiguration without CORSRule');
  return rules;
}

/** Parses `<CreateBucketConfiguration><LocationConstraint/>?</CreateBucketConfiguration>`. */
export function parseCreateBucketConfiguration(body: string): { locationConstraint?: string } {
  let locationConstraint: string | undefined;
  for (const f of elementsOf(root(body, 'CreateBucketConfiguration'))) {
    if (f.name === 'LocationConstraint' && locationConstraint === undefined) locationConstraint = textOf(f).trim();
    else throw malformed(`unsupported CreateBucketConfiguration field ${f.name}`);
  }
  return locationConstraint === undefined ? {} : { locationConstraint };
}
