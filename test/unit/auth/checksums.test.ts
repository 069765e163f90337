/**
 * Checksum algorithms against published check values and independent implementations (bitwise CRCs
 * written here from the polynomials, the SDK's pure-JS CRCs), incremental vs one-shot, and header parsing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Crc32Js } from '@smithy/core/checksum';
import { Crc32cJs, Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import {
  CHECKSUM_ALGORITHMS,
  checksumBase64,
  checksumPlan,
  createHasher,
  isValidDigestBase64,
} from '../../../src/s3/checksums.js';
import { randomSlices } from './helpers.js';

/** Reflected CRC-32 family, bit by bit. */
function crc32Bitwise(data: Uint8Array, poly: number): number {
  let crc = 0xffffffff;
  for (const b of data) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ poly : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-64/NVME (reflected poly 0x9a6c9329ac4bc9b5, init and xorout all ones), bit by bit. */
function crc64NvmeBitwise(data: Uint8Array): bigint {
  const poly = 0x9a6c9329ac4bc9b5n;
  const mask = 0xffffffffffffffffn;
  let crc = mask;
  for (const b of data) {
    crc ^= BigInt(b);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc ^ mask;
}

const u32b64 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
};
const u64b64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b.toString('base64');
};

const HELLO = Buffer.from('hello world');
const CHECK = Buffer.from('123456789');

describe('checksum values', () => {
  it('published check values of "123456789"', async () => {
    assert.equal(await checksumBase64('CRC32', CHECK), u32b64(0xcbf43926));
    assert.equal(await checksumBase64('CRC32C', CHECK), u32b64(0xe3069283));
    assert.equal(await checksumBase64('CRC64NVME', CHECK), u64b64(0xae8b14860a799888n));
  });

  it('"hello world" in every algorithm', async () => {
    assert.equal(await checksumBase64('CRC32', HELLO), 'DUoRhQ==');
    assert.equal(await checksumBase64('CRC32C', HELLO), 'yZRlqg==');
    assert.equal(await checksumBase64('CRC64NVME', HELLO), u64b64(crc64NvmeBitwise(HELLO)));
    assert.equal(await checksumBase64('SHA1', HELLO), Buffer.from('2aae6c35c94fcfb415dbe95f408b9ce91ee846ed', 'hex').toString('base64'));
    assert.equal(
      await checksumBase64('SHA256', HELLO),
      Buffer.from('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9', 'hex').toString('base64'),
    );
    assert.equal(await checksumBase64('MD5', HELLO), Buffer.from('5eb63bbbe01eeed093cb22bb8f5acdc3', 'hex').toString('base64'));
  });

  it('CRCs agree with bitwise and SDK pure-JS implementations, incrementally over random slices', async () => {
    const data = Buffer.alloc(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const slices = randomSlices(data, 42, 300);
    const incremental = async (alg: (typeof CHECKSUM_ALGORITHMS)[number]) => {
      const h = createHasher(alg);
      for (const s of slices) h.update(s);
      return (await h.digest()).toString('base64');
    };
    assert.equal(await incremental('CRC32'), u32b64(crc32Bitwise(data, 0xedb88320)));
    assert.equal(await incremental('CRC32C'), u32b64(crc32Bitwise(data, 0x82f63b78)));
    assert.equal(await incremental('CRC64NVME'), u64b64(crc64NvmeBitwise(data)));
    for (const [alg, Impl] of [
      ['CRC32', Crc32Js],
      ['CRC32C', Crc32cJs],
      ['CRC64NVME', Crc64NvmeJs],
    ] as const) {
      const ref = new Impl();
      ref.update(data);
      assert.equal(await incremental(alg), Buffer.from(await ref.digest()).toString('base64'), alg);
    }
  });

  it('empty input', async () => {
    assert.equal(await checksumBase64('CRC32', Buffer.alloc(0)), 'AAAAAA==');
    assert.equal(await checksumBase64('CRC64NVME', Buffer.alloc(0)), 'AAAAAAAAAAA=');
  });
});

describe('digest value shape', () => {
  it('accepts canonical base64 of the right length only', () => {
    assert.ok(isValidDigestBase64('CRC32', 'DUoRhQ=='));
    assert.ok(!isValidDigestBase64('CRC32', 'DUoRhQ'));
    assert.ok(!isValidDigestBase64('CRC32', 'DUoRhQ=A'));
    assert.ok(!isValidDigestBase64('CRC32', 'DUoRhR=='));
    assert.ok(!isValidDigestBase64('CRC32C', 'AAAAAAAAAAA='));
    assert.ok(isValidDigestBase64('MD5', 'XrY7u+Ae7tCTyyK7j1rNww=='));
    assert.ok(!isValidDigestBase64('MD5', 'not base64 at all'));
  });
});

describe('checksumPlan', () => {
  it('reads a header value', () => {
    assert.deepEqual(checksumPlan({ 'x-amz-checksum-crc32': 'DUoRhQ==' }), { algorithm: 'CRC32', expected: 'DUoRhQ==' });
  });

  it('reads a trailer declaration and an SDK algorithm', () => {
    assert.deepEqual(checksumPlan({ 'x-amz-trailer': 'x-amz-checksum-crc64nvme', 'x-amz-sdk-checksum-algorithm': 'crc64nvme' }), {
      algorithm: 'CRC64NVME',
      trailer: 'x-amz-checksum-crc64nvme',
    });
  });

  it('computes the SDK algorithm even without a value', () => {
    assert.deepEqual(checksumPlan({ 'x-amz-sdk-checksum-algorithm': 'SHA1' }), { algorithm: 'SHA1' });
  });

  it('ignores unrelated x-amz-checksum-* headers (mode, type, algorithm)', () => {
    assert.deepEqual(checksumPlan({ 'x-amz-checksum-mode': 'ENABLED', 'x-amz-checksum-type': 'FULL_OBJECT' }), {});
  });

  it('rejects multiple checksums, bad values, unknown algorithms and contradictions with InvalidRequest', () => {
    const bad: Array<Record<string, string>> = [
      { 'x-amz-checksum-crc32': 'DUoRhQ==', 'x-amz-checksum-sha1': 'Kq5sNclPz7QV2+lfQIuc6R7oRu0=' },
      { 'x-amz-checksum-crc32': 'DUoRhQ==', 'x-amz-trailer': 'x-amz-checksum-crc32' },
      { 'x-amz-trailer': 'x-amz-checksum-crc32,x-amz-checksum-crc32c' },
      { 'x-amz-trailer': 'x-amz-meta-foo' },
      { 'x-amz-checksum-crc32': 'nope' },
      { 'x-amz-sdk-checksum-algorithm': 'MD5' },
      { 'x-amz-checksum-crc32': 'DUoRhQ==', 'x-amz-sdk-checksum-algorithm': 'CRC32C' },
    ];
    for (const h of bad) assert.throws(() => checksumPlan(h), { code: 'InvalidRequest' }, JSON.stringify(h));
  });
});
