import { createHash, randomBytes } from 'node:crypto';

/**
 * Physical layout of copies on a backend (relative to the backend's own prefix):
 *
 *   <bucket>/<h[0..2]>/<h[2..32]>/<versionId>
 *
 * where h = hex SHA-256 of the UTF-8 key. Properties:
 * - every copy of one logical key sits under one prefix, findable without the database (degraded reads);
 * - the key length is bounded (bucket ≤ 63 + 36 + version id 32) whatever the user's key length;
 * - the version id is unique per write, so deleting a physical key never touches bytes another version owns;
 * - the logical bucket/key are stored with each object (see PhysicalMeta) so the database can be rebuilt.
 */
export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32);
}

/** The prefix under which all copies of `bucket/key` live. Ends with '/'. */
export function logicalPrefix(bucket: string, key: string): string {
  const h = keyHash(key);
  return `${bucket}/${h.slice(0, 2)}/${h.slice(2)}/`;
}

/** The physical key of one version of `bucket/key`. */
export function physicalKey(bucket: string, key: string, versionId: string): string {
  return logicalPrefix(bucket, key) + versionId;
}

/**
 * The physical key of an additional copy of an existing version, made by repair or a move: the version's
 * key plus `.` and 6 random hex digits, so a copy made later on a backend that once held this version can
 * never collide with bytes a queued deletion still targets. The version id stays the first 32 characters of
 * the last path segment (see {@link versionIdOf}).
 */
export function copyKey(bucket: string, key: string, versionId: string): string {
  return `${physicalKey(bucket, key, versionId)}.${randomBytes(3).toString('hex')}`;
}

/** The version id named by a physical key's last segment (its first 32 characters), or undefined. */
export function versionIdOf(physical: string): string | undefined {
  const last = physical.slice(physical.lastIndexOf('/') + 1);
  const id = last.split('.', 1)[0]!;
  return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/**
 * A new generation id: 12 hex digits of milliseconds since the epoch, then 20 hex digits of randomness.
 * Sortable by creation time (newest generation wins when reading without the database), unique without
 * coordination between instances.
 */
export function newVersionId(now = Date.now()): string {
  return now.toString(16).padStart(12, '0') + randomBytes(10).toString('hex');
}
