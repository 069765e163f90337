import type { ChecksumAlgorithm } from './types.js';

/**
 * CRC combination: the CRC of A‖B from crc(A), crc(B) and len(B), without the bytes (zlib's
 * crc32_combine, generalised to any reflected CRC with all-ones init and xor-out). This is how a
 * FULL_OBJECT checksum of a multipart object is computed from its parts' checksums on Complete.
 */
const REFLECTED_POLY: Partial<Record<ChecksumAlgorithm, { poly: bigint; width: number }>> = {
  CRC32: { poly: 0xedb88320n, width: 32 },
  CRC32C: { poly: 0x82f63b78n, width: 32 },
  CRC64NVME: { poly: 0x9a6c9329ac4bc9b5n, width: 64 },
};

/** True for the algorithms whose checksums can be combined (the CRCs). */
export function isCombinable(algorithm: ChecksumAlgorithm): boolean {
  return REFLECTED_POLY[algorithm] !== undefined;
}

function times(mat: bigint[], vec: bigint): bigint {
  let sum = 0n;
  for (let i = 0; vec; i++, vec >>= 1n) if (vec & 1n) sum ^= mat[i]!;
  return sum;
}

function square(mat: bigint[]): bigint[] {
  return mat.map((row) => times(mat, row));
}

/** crc(A‖B) given crc(A), crc(B) and the length of B in bytes. */
export function combineCrc(algorithm: ChecksumAlgorithm, crcA: bigint, crcB: bigint, lenB: number): bigint {
  const spec = REFLECTED_POLY[algorithm];
  if (!spec) throw new Error(`${algorithm} checksums cannot be combined`);
  if (lenB === 0) return crcA;
  // odd = operator for one zero bit; squaring doubles the number of zero bits it applies.
  let odd: bigint[] = [spec.poly];
  for (let n = 1, row = 1n; n < spec.width; n++, row <<= 1n) odd.push(row);
  let even = square(odd); // 2 zero bits
  odd = square(even); // 4 zero bits
  let len = BigInt(lenB);
  let crc = crcA;
  for (;;) {
    even = square(odd);
    if (len & 1n) crc = times(even, crc);
    len >>= 1n;
    if (!len) break;
    odd = square(even);
    if (len & 1n) crc = times(odd, crc);
    len >>= 1n;
    if (!len) break;
  }
  return crc ^ crcB;
}

/** Combines base64 part CRCs (with their sizes) into the base64 CRC of the whole object. */
export function combineCrcBase64(algorithm: ChecksumAlgorithm, parts: readonly { checksum: string; size: number }[]): string {
  const width = REFLECTED_POLY[algorithm]!.width / 8;
  let acc: bigint | undefined;
  for (const p of parts) {
    const v = BigInt('0x' + Buffer.from(p.checksum, 'base64').toString('hex'));
    acc = acc === undefined ? v : combineCrc(algorithm, acc, v, p.size);
  }
  const hex = (acc ?? 0n).toString(16).padStart(width * 2, '0');
  return Buffer.from(hex, 'hex').toString('base64');
}
