/**
 * Backends as rows (core/backend-specs.ts): a configuration round-trips through its row with the secret
 * sealed, an unchanged secret keeps its sealed bytes (a sync is then no change), the fingerprint tells a
 * rebuild from a knob change, and rows that cannot be built say why.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { S3BackendConfig } from '../../../src/config/types.js';
import { fingerprint, fromSettingsRow, toSettingsInput, UnbuildableBackend } from '../../../src/core/backend-specs.js';
import { SecretBox } from '../../../src/core/secrets.js';
import type { BackendSettingsRow } from '../../../src/meta/queries/backend-settings.js';

const box = new SecretBox(randomBytes(32), 'test');
const s3: S3BackendConfig = {
  name: 'r2',
  type: 's3',
  quotaBytes: 10,
  zone: 'cf',
  endpoint: 'https://acc.r2.cloudflarestorage.com',
  region: 'auto',
  bucket: 'b',
  prefix: 'p/',
  accessKeyId: 'AK',
  secretAccessKey: 'very-secret',
  forcePathStyle: false,
  connectTimeoutMs: 5000,
};

function rowOf(input: ReturnType<typeof toSettingsInput>): BackendSettingsRow {
  const now = new Date();
  return {
    name: input.name,
    type: input.type,
    quota_bytes: input.quotaBytes,
    used_bytes: 0,
    reserved_bytes: 0,
    object_count: 0,
    state: 'active',
    source: 'api',
    zone: input.zone,
    read_priority: input.readPriority,
    weight: input.weight,
    // As jsonb gives it back: keys reordered.
    settings: JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(input.settings).reverse()))) as Record<string, unknown>,
    secret: input.secret,
    config_ref: null,
    config_index: null,
    removal_requested_at: null,
    created_at: now,
    updated_at: now,
  };
}

describe('backend rows', () => {
  it('an s3 configuration round-trips with its secret sealed and never in the settings', () => {
    const input = toSettingsInput(s3, { quotaBytes: 10, zone: 'cf', readPriority: 2, weight: 3 }, box, null);
    assert.match(input.secret!, /^v1:/);
    assert.ok(!JSON.stringify(input.settings).includes('very-secret'));
    assert.deepEqual(Object.keys(input.settings).sort(), ['accessKeyId', 'bucket', 'connectTimeoutMs', 'endpoint', 'forcePathStyle', 'prefix', 'region']);
    const back = fromSettingsRow(rowOf(input), box);
    assert.deepEqual(back, { ...s3, readPriority: 2, weight: 3 });
    assert.equal(fingerprint(back), fingerprint(s3), 'same settings and secret: no rebuild');
  });

  it('an unchanged secret keeps its sealed value; a changed one is sealed afresh', () => {
    const first = toSettingsInput(s3, { quotaBytes: 10, readPriority: 0, weight: 1 }, box, null);
    const again = toSettingsInput(s3, { quotaBytes: 99, readPriority: 0, weight: 1 }, box, first.secret);
    assert.equal(again.secret, first.secret);
    const rotated = toSettingsInput({ ...s3, secretAccessKey: 'new' }, { quotaBytes: 10, readPriority: 0, weight: 1 }, box, first.secret);
    assert.notEqual(rotated.secret, first.secret);
    assert.equal(box.open(rotated.secret!), 'new');
    // Sealed under another key: sealed afresh under this one.
    const other = new SecretBox(randomBytes(32), 'other');
    const foreign = toSettingsInput(s3, { quotaBytes: 10, readPriority: 0, weight: 1 }, box, other.seal('very-secret'));
    assert.equal(box.open(foreign.secret!), 'very-secret');
  });

  it('knobs do not change the fingerprint; settings and secrets do', () => {
    assert.equal(fingerprint({ ...s3, quotaBytes: 1, zone: 'x', readPriority: 5, weight: 0 }), fingerprint(s3));
    assert.notEqual(fingerprint({ ...s3, prefix: 'q/' }), fingerprint(s3));
    assert.notEqual(fingerprint({ ...s3, secretAccessKey: 'other' }), fingerprint(s3));
    assert.notEqual(fingerprint({ name: 'd', type: 'fs', quotaBytes: 0, path: '/a' }), fingerprint({ name: 'd', type: 'fs', quotaBytes: 0, path: '/b' }));
  });

  it('rows that cannot be built say why', () => {
    const input = toSettingsInput(s3, { quotaBytes: 10, readPriority: 0, weight: 1 }, box, null);
    assert.throws(() => fromSettingsRow(rowOf(input), undefined), (e: Error) => e instanceof UnbuildableBackend && /no master key/.test(e.message));
    assert.throws(() => fromSettingsRow(rowOf(input), new SecretBox(randomBytes(32), 'x')), /cannot be opened/);
    assert.throws(() => fromSettingsRow({ ...rowOf(input), settings: {} }, box), /no complete s3 settings/);
    assert.throws(() => fromSettingsRow({ ...rowOf(input), type: 'fs', settings: {} }, box), /no fs path/);
    assert.throws(() => fromSettingsRow({ ...rowOf(input), type: 'gcs' }, box), /unknown type/);
    const fs = toSettingsInput({ name: 'd', type: 'fs', quotaBytes: 0, path: '/srv/d' }, { quotaBytes: 0, readPriority: 0, weight: 1 }, undefined, null);
    assert.equal(fs.secret, null);
    assert.deepEqual(fromSettingsRow(rowOf(fs), undefined), { name: 'd', type: 'fs', quotaBytes: 0, path: '/srv/d', readPriority: 0, weight: 1 });
  });
});
