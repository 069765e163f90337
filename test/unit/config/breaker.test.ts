/**
 * `breaker.*` and the per-backend `read_priority`, `connect_timeout`, `first_byte_timeout`: defaults,
 * values carried through, and every bad value refused with an error naming the file and the key.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, resolveConfig } from '../../../src/config/load.js';
import type { S3BackendConfig } from '../../../src/config/types.js';

const FS = { name: 'disk', type: 'fs', path: '/data/disk' };
const S3 = { name: 'cloud', type: 's3', bucket: 'b', access_key_id: 'id', secret_access_key: 'secret' };

function problems(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    resolveConfig(raw, 'cfg.yaml', env, '/srv');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message.split('\n').filter((l) => l.startsWith('cfg.yaml: '));
  }
  return assert.fail('expected the configuration to be rejected');
}

describe('breaker configuration', () => {
  test('defaults', () => {
    const c = resolveConfig({ backends: [FS, S3] }, 'cfg.yaml', {}, '/srv');
    assert.deepEqual(c.breaker, { failures: 3, errorRate: 0.5, windowMs: 60_000, minRequests: 20, cooldownMs: 10_000, probes: 1 });
    assert.equal(c.backends[0]!.readPriority, 0);
    const s3 = c.backends[1] as S3BackendConfig;
    assert.equal(s3.connectTimeoutMs, 5_000);
    assert.equal(s3.firstByteTimeoutMs, 15_000);
  });

  test('every key carried through, numbers from the environment too', () => {
    const c = resolveConfig(
      {
        breaker: { failures: 5, error_rate: '${RATE}', window: '2m', min_requests: 50, cooldown: '30s', probes: 3 },
        backends: [{ ...FS, read_priority: -2 }, { ...S3, read_priority: 7, connect_timeout: '2s', first_byte_timeout: '1m' }],
      },
      'cfg.yaml',
      { RATE: '0.25' },
      '/srv',
    );
    assert.deepEqual(c.breaker, { failures: 5, errorRate: 0.25, windowMs: 120_000, minRequests: 50, cooldownMs: 30_000, probes: 3 });
    assert.equal(c.backends[0]!.readPriority, -2);
    const s3 = c.backends[1] as S3BackendConfig;
    assert.deepEqual([s3.readPriority, s3.connectTimeoutMs, s3.firstByteTimeoutMs], [7, 2_000, 60_000]);
  });

  test('bad values name the file and the key', () => {
    const lines = problems({
      breaker: { failures: 0, error_rate: 1.5, window: '0s', min_requests: 2.5, cooldown: 30, probes: 'many', trips: 1 },
      backends: [
        { ...FS, read_priority: 'first', connect_timeout: '1s' },
        { ...S3, connect_timeout: '0s', first_byte_timeout: '2d' },
      ],
    });
    const expect = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `no line matches ${re}:\n${lines.join('\n')}`);
    expect(/^cfg\.yaml: breaker\.failures: must be a whole number from 1 to 1000, got number 0$/);
    expect(/^cfg\.yaml: breaker\.error_rate: must be a number greater than 0 and at most 1, got number 1\.5$/);
    expect(/^cfg\.yaml: breaker\.window: must be greater than 0$/);
    expect(/^cfg\.yaml: breaker\.min_requests: must be a whole number from 1 to 1000000, got number 2\.5$/);
    expect(/^cfg\.yaml: breaker\.cooldown: /);
    expect(/^cfg\.yaml: breaker\.probes: must be a whole number from 1 to 100, got "many"$/);
    expect(/^cfg\.yaml: breaker\.trips: unknown key/);
    expect(/^cfg\.yaml: backends\[0\]\.read_priority: must be a whole number from -1000000 to 1000000, got "first"$/);
    expect(/^cfg\.yaml: backends\[0\]\.connect_timeout: unknown key for an fs backend/);
    expect(/^cfg\.yaml: backends\[1\]\.connect_timeout: must be greater than 0$/);
    expect(/^cfg\.yaml: backends\[1\]\.first_byte_timeout: must be at most 1d, got "2d"$/);
  });

  test('error_rate 0 is refused (it would open on the first failure of every window)', () => {
    const lines = problems({ breaker: { error_rate: 0 }, backends: [FS] });
    assert.deepEqual(lines, ['cfg.yaml: breaker.error_rate: must be a number greater than 0 and at most 1, got number 0']);
  });
});
