/**
 * CRC combination (src/core/crc-combine.ts) against CRCs of the concatenated bytes computed directly by
 * independent implementations: zlib's crc32 (CRC32), @aws-crypto/crc32c (CRC32C) and @aws-sdk/crc64-nvme
 * (CRC64NVME) — the libraries the S3 clients themselves use.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { combineCrc, combineCrcBase64, isCombinable } from '../../../src/core/crc-combine.js';
import type { ChecksumAlgorithm } from '../../../src/core/types.js';

type Crc = 'CRC32' | 'CRC32C' | 'CRC64NVME';
const ALGORITHMS: Crc[] = ['CRC32', 'CRC32C', 'CRC64NVME'];

/** The CRC of `data` by the reference implementation, as a bigint. */
async function crcOf(alg: Crc, data: Uint8Array): Promise<bigint> {
  if (alg === 'CRC32') return BigInt((zlib as unknown as { crc32(d: Uint8Array): number }).crc32(data));
  if (alg === 'CRC32C') return BigInt(crc32c(data));
  const h = new Crc64Nvme();
  h.update(data);
  return BigInt('0x' + Buffer.from(await h.digest()).toString('hex'));
}

const toBase64 = (alg: Crc, v: bigint) => Buffer.from(v.toString(16).padStart(alg === 'CRC64NVME' ? 16 : 8, '0'), 'hex').toString('base64');

/** Deterministic bytes (xorshift32). */
function bytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

describe('CRC combination', () => {
  it('reference implementations agree with the published check values', async () => {
    // CRC catalogue check values of "123456789": the references compute the CRCs S3 means.
    const check = Buffer.from('123456789');
    assert.equal(await crcOf('CRC32', check), 0xcbf43926n);
    assert.equal(await crcOf('CRC32C', check), 0xe3069283n);
    assert.equal(await crcOf('CRC64NVME', check), 0xae8b14860a799888n);
  });

  it('crc(A‖B) from crc(A), crc(B) and len(B), for every split of a buffer', async () => {
    const data = bytes(70, 3);
    for (const alg of ALGORITHMS) {
      const whole = await crcOf(alg, data);
      for (let cut = 0; cut <= data.length; cut++) {
        const a = await crcOf(alg, data.subarray(0, cut));
        const b = await crcOf(alg, data.subarray(cut));
        assert.equal(combineCrc(alg, a, b, data.length - cut), whole, `${alg} split at ${cut}`);
      }
    }
  });

  it('lengths around powers of two and a 1 MiB + 1 part', async () => {
    for (const alg of ALGORITHMS) {
      for (const lenB of [1, 2, 3, 7, 8, 255, 256, 257, 4095, 4096, 65537, 1024 * 1024 + 1]) {
        const a = bytes(13, lenB);
        const b = bytes(lenB, lenB + 1);
        const got = combineCrc(alg, await crcOf(alg, a), await crcOf(alg, b), lenB);
        assert.equal(got, await crcOf(alg, Buffer.concat([a, b])), `${alg} lenB=${lenB}`);
      }
    }
  });

  it('combineCrcBase64 over many parts equals the CRC of the whole object', async () => {
    const sizes = [5, 1, 0, 1000, 17, 4096, 3];
    const parts = sizes.map((n, i) => bytes(n, 100 + i));
    for (const alg of ALGORITHMS) {
      const listed = await Promise.all(parts.map(async (p) => ({ checksum: toBase64(alg, await crcOf(alg, p)), size: p.length })));
      assert.equal(combineCrcBase64(alg, listed), toBase64(alg, await crcOf(alg, Buffer.concat(parts))), alg);
      assert.equal(combineCrcBase64(alg, listed.slice(0, 1)), listed[0]!.checksum, `${alg}: one part is itself`);
    }
  });

  it('is associative at lengths too large to hash (multi-GiB parts)', () => {
    const GiB = 1024 ** 3;
    for (const alg of ALGORITHMS) {
      const [a, b, c] = [0x1234567n, 0x89abcdefn, 0x0fedcban];
      const left = combineCrc(alg, combineCrc(alg, a, b, 5 * GiB), c, 3 * GiB + 7);
      const right = combineCrc(alg, a, combineCrc(alg, b, c, 3 * GiB + 7), 8 * GiB + 7);
      assert.equal(left, right, alg);
    }
  });

  it('only CRCs combine', () => {
    for (const alg of ALGORITHMS) assert.equal(isCombinable(alg), true);
    for (const alg of ['SHA1', 'SHA256'] as ChecksumAlgorithm[]) {
      assert.equal(isCombinable(alg), false);
      assert.throws(() => combineCrc(alg, 1n, 2n, 3), /cannot be combined/);
    }
  });
});
