import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { suggestKey } from '../../../src/config/check.js';
import { ConfigError, bucketNameProblem, resolveConfig } from '../../../src/config/load.js';
import type { BucketConfig } from '../../../src/config/types.js';

const FS = { name: 'disk', type: 'fs', path: '/data/disk' };
const S3 = { name: 'cloud', type: 's3', bucket: 'b', access_key_id: 'id', secret_access_key: 'secret' };
const KEY_A = 'AKIAAAAAAAAAAAAAAAAA';
const KEY_B = 'AKIABBBBBBBBBBBBBBBB';
const SECRET_A = 'secret-aaaaaaaaaaaaaaaa';
const SECRET_B = 'secret-bbbbbbbbbbbbbbbb';

function configError(raw: unknown): ConfigError {
  try {
    resolveConfig(raw, 'cfg.yaml', {}, '/srv');
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  return assert.fail('expected the configuration to be rejected');
}

/** Asserts that a problem line `cfg.yaml: <path>: ...` exists and matches `re`. */
function expectProblem(raw: unknown, path: string, re: RegExp): ConfigError {
  const err = configError(raw);
  const prefix = path ? `cfg.yaml: ${path}: ` : 'cfg.yaml: ';
  const line = err.message.split('\n').find((l) => l.startsWith(prefix));
  assert.ok(line, `no problem at "${path}" in:\n${err.message}`);
  assert.match(line, re);
  return err;
}

const bucket = (name: string, credentials: unknown[] = []) => ({ name, credentials });
const cred = (access_key_id: string, secret_access_key: string) => ({ access_key_id, secret_access_key });

describe('each rule has an error naming the file and key path', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['no backends key', {}, 'backends', /at least one backend/],
    ['empty backends list', { backends: [] }, 'backends', /at least one backend/],
    ['backends is not a list', { backends: 'disk' }, 'backends', /must be a list, got "disk"/],
    ['top level is a list', ['x'], '', /must be a mapping/],
    ['server is a list', { server: [], backends: [FS] }, 'server', /must be a mapping/],
    ['backend is a string', { backends: ['disk'] }, 'backends[0]', /must be a mapping/],
    ['missing type', { backends: [{ name: 'x', path: '/x' }] }, 'backends[0].type', /is required/],
    ['unknown type', { backends: [FS, { name: 'g', type: 'gcs' }] }, 'backends[1].type', /must be "s3" or "fs", got "gcs"/],
    ['type is a number', { backends: [{ name: 'x', type: 3 }] }, 'backends[0].type', /got number/],
    ['missing name', { backends: [{ type: 'fs', path: '/x' }] }, 'backends[0].name', /is required/],
    ['upper-case name', { backends: [{ ...FS, name: 'Disk' }] }, 'backends[0].name', /a-z, 0-9/],
    ['name too long', { backends: [{ ...FS, name: 'a'.repeat(64) }] }, 'backends[0].name', /1-63/],
    ['name starting with "-"', { backends: [{ ...FS, name: '-x' }] }, 'backends[0].name', /starting with a letter or digit/],
    ['fs without path', { backends: [{ name: 'x', type: 'fs' }] }, 'backends[0].path', /is required/],
    ['fs with empty path', { backends: [{ ...FS, path: '' }] }, 'backends[0].path', /must not be empty/],
    ['s3 without bucket', { backends: [{ ...S3, bucket: undefined }] }, 'backends[0].bucket', /is required/],
    ['numeric bucket', { backends: [{ ...S3, bucket: 2024 }] }, 'backends[0].bucket', /must be a string, got number 2024 \(quote it: "2024"\)/],
    ['bucket with "/"', { backends: [{ ...S3, bucket: 'a/b' }] }, 'backends[0].bucket', /not a valid bucket name/],
    ['s3 without access key', { backends: [{ ...S3, access_key_id: undefined }] }, 'backends[0].access_key_id', /is required/],
    ['s3 without secret', { backends: [{ ...S3, secret_access_key: undefined }] }, 'backends[0].secret_access_key', /is required/],
    ['endpoint not a URL', { backends: [{ ...S3, endpoint: 'minio:9000' }] }, 'backends[0].endpoint', /http:\/\/ or https:\/\//],
    ['endpoint garbage', { backends: [{ ...S3, endpoint: 'not a url' }] }, 'backends[0].endpoint', /not a valid URL/],
    ['endpoint with credentials', { backends: [{ ...S3, endpoint: 'https://u:p@h' }] }, 'backends[0].endpoint', /must not contain credentials/],
    ['endpoint with query', { backends: [{ ...S3, endpoint: 'https://h/?x=1' }] }, 'backends[0].endpoint', /query/],
    ['prefix starting with "/"', { backends: [{ ...S3, prefix: '/p' }] }, 'backends[0].prefix', /must not start with "\/"/],
    ['bad region', { backends: [{ ...S3, region: 'us east' }] }, 'backends[0].region', /not a valid region/],
    ['force_path_style as string', { backends: [{ ...S3, force_path_style: 'yes' }] }, 'backends[0].force_path_style', /true or false/],
    ['negative quota', { backends: [{ ...FS, quota_bytes: -1 }] }, 'backends[0].quota_bytes', /non-negative/],
    ['fractional quota', { backends: [{ ...FS, quota_bytes: '0.5B' }] }, 'backends[0].quota_bytes', /whole number of bytes/],
    ['ambiguous quota unit', { backends: [{ ...FS, quota_bytes: '10G' }] }, 'backends[0].quota_bytes', /"GB".*"GiB"/],
    ['null value', { backends: [{ ...FS, quota_bytes: null }] }, 'backends[0].quota_bytes', /must be a size/],
    ['bad region on server', { server: { s3: { region: '' } }, backends: [FS] }, 'server.s3.region', /must not be empty/],
    ['domains not a list', { server: { s3: { virtual_host_domains: 'a.com' } }, backends: [FS] }, 'server.s3.virtual_host_domains', /must be a list/],
    ['domain is an IP', { server: { s3: { virtual_host_domains: ['10.0.0.1'] } }, backends: [FS] }, 'server.s3.virtual_host_domains[0]', /domain name/],
    ['idle_timeout without unit', { server: { s3: { idle_timeout: 60 } }, backends: [FS] }, 'server.s3.idle_timeout', /needs a unit/],
    ['idle_timeout zero', { server: { s3: { idle_timeout: '0s' } }, backends: [FS] }, 'server.s3.idle_timeout', /greater than 0/],
    ['mysql url', { database: { url: 'mysql://h/d' }, backends: [FS] }, 'database.url', /postgres:\/\/ or postgresql:\/\/.*"mysql"/],
    ['url not a URL', { database: { url: 'localhost:5432' }, backends: [FS] }, 'database.url', /postgres/],
    ['schema with "-"', { database: { schema: 'my-schema' }, backends: [FS] }, 'database.schema', /SQL identifier/],
    ['schema with quote', { database: { schema: 'x"; drop' }, backends: [FS] }, 'database.schema', /SQL identifier/],
    ['pool_size zero', { database: { pool_size: 0 }, backends: [FS] }, 'database.pool_size', /whole number from 1 to 1000, got number 0/],
    ['pool_size fraction', { database: { pool_size: 2.5 }, backends: [FS] }, 'database.pool_size', /whole number from 1 to 1000/],
    ['pool_size text', { database: { pool_size: 'many' }, backends: [FS] }, 'database.pool_size', /whole number from 1 to 1000, got "many"/],
    ['statement_timeout without unit', { database: { statement_timeout: 30 }, backends: [FS] }, 'database.statement_timeout', /needs a unit/],
    ['lock_timeout beyond PostgreSQL', { database: { lock_timeout: '30d' }, backends: [FS] }, 'database.lock_timeout', /at most 24d/],
    ['connect_timeout zero', { database: { connect_timeout: '0s' }, backends: [FS] }, 'database.connect_timeout', /greater than 0/],
    ['strategy', { placement: { strategy: 'fill' }, backends: [FS] }, 'placement.strategy', /"pack" or "spread", got "fill"/],
    ['cleanup_interval zero', { workers: { cleanup_interval: 0 }, backends: [FS] }, 'workers.cleanup_interval', /greater than 0/],
    ['cleanup_delay without unit', { workers: { cleanup_delay: 30 }, backends: [FS] }, 'workers.cleanup_delay', /needs a unit/],
    ['stale_write_timeout junk', { workers: { stale_write_timeout: 'later' }, backends: [FS] }, 'workers.stale_write_timeout', /must be a duration/],
    ['repair_bandwidth ambiguous unit', { workers: { repair_bandwidth: '50M' }, backends: [FS] }, 'workers.repair_bandwidth', /"MB".*"MiB"/],
    ['scrub_bandwidth negative', { workers: { scrub_bandwidth: -1 }, backends: [FS] }, 'workers.scrub_bandwidth', /non-negative/],
    ['scrub_interval without unit', { workers: { scrub_interval: 3600 }, backends: [FS] }, 'workers.scrub_interval', /needs a unit/],
    ['scrub_deep_interval junk', { workers: { scrub_deep_interval: 'monthly' }, backends: [FS] }, 'workers.scrub_deep_interval', /must be a duration/],
    ['scrub_rate zero', { workers: { scrub_rate: 0 }, backends: [FS] }, 'workers.scrub_rate', /greater than 0 and at most 100000, got number 0/],
    ['scrub_rate text', { workers: { scrub_rate: 'fast' }, backends: [FS] }, 'workers.scrub_rate', /items per second.*got "fast"/],
    ['buckets is a mapping', { backends: [FS], buckets: { photos: {} } }, 'buckets', /must be a list, got a mapping/],
    ['bucket without name', { backends: [FS], buckets: [{ credentials: [] }] }, 'buckets[0].name', /is required/],
    ['credentials not a list', { backends: [FS], buckets: [{ name: 'photos', credentials: 'x' }] }, 'buckets[0].credentials', /must be a list/],
    ['short access key', { backends: [FS], buckets: [bucket('photos', [cred('AKIA', SECRET_A)])] }, 'buckets[0].credentials[0].access_key_id', /16-128.*has 4/],
    ['access key with "-"', { backends: [FS], buckets: [bucket('photos', [cred('AKIA-AAAAAAAAAAAAAAA', SECRET_A)])] }, 'buckets[0].credentials[0].access_key_id', /other characters/],
    ['long access key', { backends: [FS], buckets: [bucket('photos', [cred('A'.repeat(129), SECRET_A)])] }, 'buckets[0].credentials[0].access_key_id', /16-128/],
    ['short secret', { backends: [FS], buckets: [bucket('photos', [cred(KEY_A, 'short')])] }, 'buckets[0].credentials[0].secret_access_key', /at least 16 characters, got 5/],
    ['missing secret', { backends: [FS], buckets: [bucket('photos', [{ access_key_id: KEY_A }])] }, 'buckets[0].credentials[0].secret_access_key', /is required/],
  ];
  for (const [name, raw, path, re] of cases) {
    test(name, () => {
      expectProblem(raw, path, re);
    });
  }
});

describe('S3 bucket names', () => {
  test('valid names pass', () => {
    for (const n of ['abc', 'my-bucket', 'my.bucket.1', 'a'.repeat(63), '1bucket']) assert.equal(bucketNameProblem(n), undefined, n);
  });
  test('invalid names fail with a reason', () => {
    const bad: [string, RegExp][] = [
      ['ab', /3-63/], ['a'.repeat(64), /3-63/], ['My-Bucket', /lower-case/], ['my_bucket', /lower-case/], ['-abc', /start and end/],
      ['abc-', /start and end/], ['a..b', /adjacent periods/], ['192.168.1.1', /IP address/], ['xn--abc', /xn--/],
      ['sthree-x', /sthree-/], ['amzn-s3-demo-x', /amzn-s3-demo-/], ['abc-s3alias', /suffix/], ['abc--ol-s3', /suffix/],
      ['abc.mrap', /suffix/], ['abc--x-s3', /suffix/], ['abc--table-s3', /suffix/],
    ];
    for (const [n, re] of bad) assert.match(bucketNameProblem(n) ?? '', re, n);
  });
  test('a bad bucket name in the file names the key path', () => {
    expectProblem({ backends: [FS], buckets: [bucket('Photos')] }, 'buckets[0].name', /lower-case.*got "Photos"/);
  });
});

describe('unknown keys', () => {
  const cases: [string, unknown, string, RegExp][] = [
    ['top-level typo', { backend: [FS], backends: [FS] }, 'backend', /did you mean "backends"/],
    ['camelCase spelling', { backends: [{ ...FS, quotaBytes: 5 }] }, 'backends[0].quotaBytes', /did you mean "quota_bytes"/],
    ['transposed letters', { server: { s3: { lsiten: ':1' } }, backends: [FS] }, 'server.s3.lsiten', /did you mean "listen"/],
    ['missing letter', { workers: { cleanup_intervl: '1s' }, backends: [FS] }, 'workers.cleanup_intervl', /did you mean "cleanup_interval"/],
    ['key of the other backend type', { backends: [{ ...FS, bucket: 'x' }] }, 'backends[0].bucket', /unknown key for an fs backend/],
    ['nothing close lists known keys', { database: { host: 'x' }, backends: [FS] }, 'database.host', /known: "url", "path", "schema", "pool_size"/],
    ['in a credential', { backends: [FS], buckets: [bucket('photos', [{ ...cred(KEY_A, SECRET_A), secret: 'x' }])] }, 'buckets[0].credentials[0].secret', /unknown key/],
  ];
  for (const [name, raw, path, re] of cases) {
    test(name, () => {
      expectProblem(raw, path, re);
    });
  }
  test('suggestKey stays quiet for unrelated words', () => {
    assert.equal(suggestKey('colour', ['url', 'path', 'schema']), undefined);
    assert.equal(suggestKey('pth', ['url', 'path', 'schema']), 'path');
  });
});

describe('uniqueness', () => {
  test('duplicate backend names', () => {
    expectProblem({ backends: [FS, { ...FS, path: '/other' }] }, 'backends[1].name', /"disk" is already the name of backends\[0\]/);
  });
  test('fs backends may not share or nest directories', () => {
    expectProblem({ backends: [FS, { ...FS, name: 'two' }] }, 'backends[1].path', /overlaps backends\[0\] \("disk"\)/);
    expectProblem({ backends: [FS, { ...FS, name: 'two', path: '/data/disk/sub' }] }, 'backends[1].path', /overlaps/);
    expectProblem({ backends: [{ ...FS, path: '/data/disk/sub' }, { ...FS, name: 'two' }] }, 'backends[1].path', /overlaps/);
    resolveConfig({ backends: [FS, { ...FS, name: 'two', path: '/data/disk2' }] }, 'cfg.yaml', {}, '/srv');
  });
  test('s3 backends may not share a bucket with overlapping prefixes', () => {
    expectProblem({ backends: [S3, { ...S3, name: 'two' }] }, 'backends[1].bucket', /overlaps backends\[0\]/);
    expectProblem({ backends: [{ ...S3, prefix: 'a/' }, { ...S3, name: 'two', prefix: 'a/b' }] }, 'backends[1].bucket', /overlaps/);
    resolveConfig({ backends: [{ ...S3, prefix: 'a' }, { ...S3, name: 'two', prefix: 'ab' }] }, 'cfg.yaml', {}, '/srv');
    resolveConfig({ backends: [S3, { ...S3, name: 'two', endpoint: 'http://other:9000' }] }, 'cfg.yaml', {}, '/srv');
  });
  test('duplicate bucket names', () => {
    expectProblem({ backends: [FS], buckets: [bucket('photos'), bucket('photos')] }, 'buckets[1].name', /already the name of buckets\[0\]/);
  });
  test('duplicate virtual host domains (after normalising case)', () => {
    expectProblem({ server: { s3: { virtual_host_domains: ['a.com', 'A.com'] } }, backends: [FS] }, 'server.s3.virtual_host_domains[1]', /listed twice/);
  });
  test('one access key in several buckets with the same secret sees them all', () => {
    const c = resolveConfig({
      backends: [FS],
      buckets: [bucket('photos', [cred(KEY_A, SECRET_A)]), bucket('backups', [cred(KEY_A, SECRET_A), cred(KEY_B, SECRET_B)])],
    }, 'cfg.yaml', {}, '/srv');
    const with_ = (key: string) => c.buckets.filter((b: BucketConfig) => b.credentials.some((k) => k.accessKeyId === key)).map((b) => b.name);
    assert.deepEqual(with_(KEY_A), ['photos', 'backups']);
    assert.deepEqual(with_(KEY_B), ['backups']);
  });
  test('one access key with two secrets is rejected without printing either', () => {
    const err = expectProblem({
      backends: [FS],
      buckets: [bucket('photos', [cred(KEY_A, SECRET_A)]), bucket('backups', [cred(KEY_A, SECRET_B)])],
    }, 'buckets[1].credentials[0].secret_access_key', /differs from .* buckets\[0\]\.credentials\[0\]/);
    assert.ok(!err.message.includes(SECRET_A) && !err.message.includes(SECRET_B));
  });
  test('the same access key twice in one bucket', () => {
    expectProblem({ backends: [FS], buckets: [bucket('photos', [cred(KEY_A, SECRET_A), cred(KEY_A, SECRET_A)])] }, 'buckets[0].credentials[1].access_key_id', /listed twice/);
  });
});

describe('ConfigError', () => {
  test('collects every problem, in order, one line each', () => {
    const err = configError({
      server: { s3: { listen: 'nope' } },
      placement: { strategy: 'x' },
      backends: [{ name: 'Bad', type: 'gcs' }],
      workers: { cleanup_interval: 5 },
    });
    assert.deepEqual(err.problems.map((p) => p.path), ['server.s3.listen', 'placement.strategy', 'backends[0].type', 'backends[0].name', 'workers.cleanup_interval']);
    const lines = err.message.split('\n');
    assert.equal(lines[0], '5 configuration problems:');
    assert.equal(lines.length, 6);
    for (const l of lines.slice(1)) assert.match(l, /^cfg\.yaml: \S+: /);
    assert.equal(err.source, 'cfg.yaml');
    assert.equal(err.name, 'ConfigError');
  });

  test('a single problem is the whole message', () => {
    assert.equal(configError({ backends: [FS, { ...FS, name: 'x', type: 'gcs' }] }).message, 'cfg.yaml: backends[1].type: must be "s3" or "fs", got "gcs"');
  });

  test('messages never contain secrets or database passwords', () => {
    const err = configError({
      database: { url: 'mysql://user:hunter2-password@h/d' },
      backends: [{ ...S3, secret_access_key: 'tiny-secret-9', bucket: 3 }],
      buckets: [bucket('photos', [cred(KEY_A, 'short-pass')])],
    });
    for (const secret of ['hunter2-password', 'tiny-secret-9', 'short-pass']) assert.ok(!err.message.includes(secret), secret);
    const numeric = configError({ backends: [{ ...S3, secret_access_key: 12345678 }] });
    assert.ok(!numeric.message.includes('12345678'), numeric.message);
  });

  test('without a source the label is "configuration"', () => {
    assert.throws(() => resolveConfig({}, undefined, {}), /^ConfigError: configuration: backends: at least one backend/m);
  });
});

describe('the resolved Config is deeply frozen', () => {
  test('no level can be changed', () => {
    const c = resolveConfig({ backends: [S3], buckets: [bucket('photos', [cred(KEY_A, SECRET_A)])] }, 'cfg.yaml', {}, '/srv');
    for (const part of [c, c.server, c.server.s3, c.server.s3.virtualHostDomains, c.database, c.backends, c.backends[0], c.buckets[0], c.buckets[0]!.credentials[0], c.workers]) {
      assert.ok(Object.isFrozen(part));
    }
    assert.throws(() => {
      (c.server.s3 as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (c.backends as unknown[]).push({});
    }, TypeError);
  });
});
