/**
 * Incremental hashers for the checksums S3 defines (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) and MD5, with
 * base64 output as S3 sends it. Shared by the S3 layer (body verification) and core (multipart checksums).
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import type { ChecksumAlgorithm } from './types.js';

/** Every algorithm S3 accepts in `x-amz-checksum-*`, in S3's documentation order. */
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** Digest length in bytes of each algorithm (MD5 included for Content-MD5). */
export const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm | 'MD5', number>> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
  MD5: 16,
};

/** An incremental hasher; `digest()` may be called once. */
export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Promise<Buffer>;
}

class NodeHasher implements Hasher {
  private readonly h: Hash;
  constructor(alg: string) {
    this.h = createHash(alg);
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  digest(): Promise<Buffer> {
    return Promise.resolve(this.h.digest());
  }
}

class Crc32Hasher implements Hasher {
  private value = 0;
  update(data: Uint8Array): void {
    this.value = crc32(data, this.value);
  }
  digest(): Promise<Buffer> {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value >>> 0);
    return Promise.resolve(out);
  }
}

class Crc32cHasher implements Hasher {
  private readonly c = new Crc32c();
  update(data: Uint8Array): void {
    this.c.update(data);
  }
  digest(): Promise<Buffer> {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.c.digest() >>> 0);
    return Promise.resolve(out);
  }
}

class Crc64NvmeHasher implements Hasher {
  private readonly c = new Crc64Nvme();
  update(data: Uint8Array): void {
    this.c.update(data);
  }
  async digest(): Promise<Buffer> {
    return Buffer.from(await this.c.digest());
  }
}

/** A new incremental hasher for `algorithm`. */
export function createHasher(algorithm: ChecksumAlgorithm | 'MD5'): Hasher {
  switch (algorithm) {
    case 'CRC32':
      return new Crc32Hasher();
    case 'CRC32C':
      return new Crc32cHasher();
    case 'CRC64NVME':
      return new Crc64NvmeHasher();
    case 'SHA1':
      return new NodeHasher('sha1');
    case 'SHA256':
      return new NodeHasher('sha256');
    case 'MD5':
      return new NodeHasher('md5');
  }
}

/** Base64 checksum of a whole buffer, as S3 sends it in `x-amz-checksum-*`. */
export async function checksumBase64(algorithm: ChecksumAlgorithm | 'MD5', data: Uint8Array): Promise<string> {
  const h = createHasher(algorithm);
  h.update(data);
  return (await h.digest()).toString('base64');
}

/** The header (and trailer) name carrying `algorithm`'s value: `x-amz-checksum-crc32`. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** The algorithm named by an `x-amz-checksum-<algo>` header name (lower-case), or undefined. */
export function algorithmOfHeader(name: string): ChecksumAlgorithm | undefined {
  if (!name.startsWith('x-amz-checksum-')) return undefined;
  const suffix = name.slice('x-amz-checksum-'.length).toUpperCase();
  return CHECKSUM_ALGORITHMS.find((a) => a === suffix);
}

/** True when `value` is canonical base64 of exactly the digest length of `algorithm`. */
export function isValidDigestBase64(algorithm: ChecksumAlgorithm | 'MD5', value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return false;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === DIGEST_BYTES[algorithm] && bytes.toString('base64') === value;
}

