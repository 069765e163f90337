import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, resolveConfig } from '../../../src/config/load.js';
import type { Config, S3BackendConfig } from '../../../src/config/types.js';

const FS = { name: 'disk', type: 'fs', path: '/data/disk' };
const S3 = { name: 'cloud', type: 's3', bucket: 'b', access_key_id: 'id', secret_access_key: 'secret' };

type Env = Record<string, string | undefined>;

function resolve(raw: unknown, env: Env = {}): Config {
  return resolveConfig(raw, 'cfg.yaml', env, '/srv');
}

function configError(raw: unknown, env: Env = {}): ConfigError {
  try {
    resolve(raw, env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  return assert.fail('expected the configuration to be rejected');
}

/** Asserts that a problem line `cfg.yaml: <path>: ...` exists and matches `re`. */
function expectProblem(raw: unknown, path: string, re: RegExp, env: Env = {}): ConfigError {
  const err = configError(raw, env);
  const line = err.message.split('\n').find((l) => l.startsWith(`cfg.yaml: ${path}: `));
  assert.ok(line, `no problem at "${path}" in:\n${err.message}`);
  assert.match(line, re);
  return err;
}

describe('defaults', () => {
  test('a file with one fs backend gets every default', () => {
    const c = resolve({ backends: [{ ...FS, path: 'rel/disk' }] });
    assert.deepEqual(c, {
      source: 'cfg.yaml',
      server: {
        s3: { host: '0.0.0.0', port: 9000, region: 'us-east-1', virtualHostDomains: [], idleTimeoutMs: 60_000 },
        admin: { host: '127.0.0.1', port: 9001 },
        shutdownTimeoutMs: 30_000,
      },
      database: { path: '/srv/data/pg', schema: 'public', poolSize: 20, statementTimeoutMs: 30_000, lockTimeoutMs: 10_000, connectTimeoutMs: 10_000 },
      placement: { strategy: 'pack', replicas: 1 },
      backends: [{ name: 'disk', type: 'fs', path: '/srv/rel/disk', quotaBytes: 0, readPriority: 0 }],
      buckets: [],
      workers: {
        cleanupIntervalMs: 1000,
        cleanupDelayMs: 30_000,
        staleWriteMs: 600_000,
        abandonedUploadMs: 604_800_000,
        repairBandwidth: 0,
        scrubIntervalMs: 604_800_000,
        scrubRate: 10,
        scrubDeepIntervalMs: 2_592_000_000,
        scrubBandwidth: 10_485_760,
      },
      breaker: { failures: 3, errorRate: 0.5, windowMs: 60_000, minRequests: 20, cooldownMs: 10_000, probes: 1 },
      demo: false,
    });
  });

  test('an s3 backend gets region, prefix, path style and quota defaults', () => {
    const b = resolve({ backends: [S3] }).backends[0] as S3BackendConfig;
    assert.deepEqual(b, {
      name: 'cloud', type: 's3', quotaBytes: 0, region: 'us-east-1', bucket: 'b', prefix: '',
      accessKeyId: 'id', secretAccessKey: 'secret', forcePathStyle: false,
      readPriority: 0, connectTimeoutMs: 5_000, firstByteTimeoutMs: 15_000,
    });
    assert.equal('endpoint' in b, false);
  });

  test('every key set explicitly is carried through', () => {
    const c = resolve({
      server: {
        s3: { listen: '127.0.0.1:0', region: 'eu-west-1', virtual_host_domains: ['S3.Example.com.'], idle_timeout: '2m' },
        admin: { listen: ':9101', token: 'tok' },
        shutdown_timeout: '45s',
      },
      database: {
        url: 'postgresql://u:p@db/x', path: '/var/pg', schema: 'tenant_1',
        pool_size: 5, statement_timeout: '1m', lock_timeout: '0', connect_timeout: '2s',
      },
      placement: { strategy: 'spread' },
      backends: [{
        ...S3, endpoint: 'https://minio.local:9000/', region: 'auto', prefix: 'a/b', force_path_style: true, quota_bytes: '5GB',
      }],
      workers: {
        cleanup_interval: '250ms',
        cleanup_delay: '0s',
        stale_write_timeout: '1h',
        abandoned_upload_timeout: '2d',
        repair_bandwidth: '50MiB',
        scrub_interval: '1d',
        scrub_rate: 2.5,
        scrub_deep_interval: '0s',
        scrub_bandwidth: 0,
      },
    });
    assert.deepEqual(c.server, {
      s3: { host: '127.0.0.1', port: 0, region: 'eu-west-1', virtualHostDomains: ['s3.example.com'], idleTimeoutMs: 120_000 },
      admin: { host: '0.0.0.0', port: 9101, token: 'tok' },
      shutdownTimeoutMs: 45_000,
    });
    assert.deepEqual(c.database, {
      url: 'postgresql://u:p@db/x', path: '/var/pg', schema: 'tenant_1',
      poolSize: 5, statementTimeoutMs: 60_000, lockTimeoutMs: 0, connectTimeoutMs: 2_000,
    });
    assert.equal(c.placement.strategy, 'spread');
    assert.deepEqual(c.workers, {
      cleanupIntervalMs: 250,
      cleanupDelayMs: 0,
      staleWriteMs: 3_600_000,
      abandonedUploadMs: 172_800_000,
      repairBandwidth: 52_428_800,
      scrubIntervalMs: 86_400_000,
      scrubRate: 2.5,
      scrubDeepIntervalMs: 0,
      scrubBandwidth: 0,
    });
    const b = c.backends[0] as S3BackendConfig;
    assert.equal(b.endpoint, 'https://minio.local:9000');
    assert.equal(b.region, 'auto');
    assert.equal(b.prefix, 'a/b/');
    assert.equal(b.forcePathStyle, true);
    assert.equal(b.quotaBytes, 5_000_000_000);
  });

  test('an empty database.url means the embedded PostgreSQL, so ${VAR:-} can make an external one optional', () => {
    const c = resolve({ database: { url: '${DATABASE_URL:-}' }, backends: [FS] });
    assert.equal(c.database.url, undefined);
    assert.equal(resolve({ database: { url: '${DATABASE_URL:-}' }, backends: [FS] }, { DATABASE_URL: 'postgres://h/d' }).database.url, 'postgres://h/d');
  });

  test('quota_bytes 0 and absent both mean unlimited', () => {
    const c = resolve({ backends: [{ ...FS, quota_bytes: 0 }, { ...FS, name: 'other', path: '/data/other' }] });
    assert.deepEqual(c.backends.map((b) => b.quotaBytes), [0, 0]);
  });

  test('a prefix already ending in "/" is kept as is', () => {
    assert.equal((resolve({ backends: [{ ...S3, prefix: 'x/' }] }).backends[0] as S3BackendConfig).prefix, 'x/');
  });
});

describe('listen addresses', () => {
  const good: [string, string, number][] = [
    ['0.0.0.0:9000', '0.0.0.0', 9000],
    [':8080', '0.0.0.0', 8080],
    ['localhost:0', 'localhost', 0],
    ['[::]:9000', '::', 9000],
    ['[::1]:9000', '::1', 9000],
    ['s3.internal:443', 's3.internal', 443],
  ];
  for (const [listen, host, port] of good) {
    test(`${listen} → ${host} port ${port}`, () => {
      assert.deepEqual(resolve({ server: { s3: { listen } }, backends: [FS] }).server.s3, {
        host, port, region: 'us-east-1', virtualHostDomains: [], idleTimeoutMs: 60_000,
      });
    });
  }
  const bad: [unknown, RegExp][] = [
    ['9000', /must be "host:port"/],
    ['::1:9000', /brackets/],
    ['host:99999', /port must be 0-65535/],
    ['[nope]:9000', /not an IPv6 address/],
    ['bad_host!:9000', /not a valid host name/],
    [9000, /must be a string, got number 9000/],
  ];
  for (const [listen, re] of bad) {
    test(`${JSON.stringify(listen)} is rejected`, () => {
      expectProblem({ server: { s3: { listen } }, backends: [FS] }, 'server.s3.listen', re);
    });
  }

  test('the admin API off loopback needs a token', () => {
    expectProblem({ server: { admin: { listen: '0.0.0.0:9001' } }, backends: [FS] }, 'server.admin.token', /required.*loopback/);
    const c = resolve({ server: { admin: { listen: '[::1]:9001' } }, backends: [FS] });
    assert.equal(c.server.admin.token, undefined);
  });

  test('an empty admin token is rejected rather than meaning "no auth"', () => {
    expectProblem({ server: { admin: { token: '${T:-}' } }, backends: [FS] }, 'server.admin.token', /must not be empty/);
  });

  test('the S3 and admin listeners may not share a port', () => {
    expectProblem({ server: { admin: { listen: '127.0.0.1:9000' } }, backends: [FS] }, 'server.admin.listen', /port 9000 is already used/);
    resolve({ server: { s3: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } }, backends: [FS] });
  });
});

describe('environment expansion', () => {
  const withSecret = (secret: unknown) => ({ backends: [{ ...S3, secret_access_key: secret }] });
  const secretOf = (c: Config) => (c.backends[0] as S3BackendConfig).secretAccessKey;

  test('${VAR} is replaced, several times in one value', () => {
    assert.equal(secretOf(resolve(withSecret('${A}-${B}'), { A: 'one', B: 'two' })), 'one-two');
  });

  test('${VAR:-default} uses the default when unset or empty', () => {
    assert.equal(secretOf(resolve(withSecret('${A:-fallback}'))), 'fallback');
    assert.equal(secretOf(resolve(withSecret('${A:-fallback}'), { A: '' })), 'fallback');
    assert.equal(secretOf(resolve(withSecret('${A:-fallback}'), { A: 'set' })), 'set');
    assert.equal(secretOf(resolve(withSecret('${A:-a:b-c}'))), 'a:b-c');
  });

  test('$${ is a literal ${ and a lone $ is kept', () => {
    assert.equal(secretOf(resolve(withSecret('p$${X}q$r'))), 'p${X}q$r');
  });

  test('an unset variable is an error naming the variable and the key path', () => {
    const err = expectProblem(withSecret('${MISSING_SECRET}'), 'backends[0].secret_access_key', /MISSING_SECRET is not set/);
    assert.equal(err.problems.length, 1);
  });

  test('every unset variable is reported', () => {
    const err = configError({ server: { admin: { token: '${T1}' } }, backends: [{ ...S3, access_key_id: '${T2}', secret_access_key: '${T3}' }] });
    assert.deepEqual(err.problems.map((p) => p.path), ['server.admin.token', 'backends[0].access_key_id', 'backends[0].secret_access_key']);
  });

  test('malformed references are errors', () => {
    expectProblem(withSecret('${1BAD}'), 'backends[0].secret_access_key', /invalid reference "\$\{1BAD\}"/);
    expectProblem(withSecret('abc${OPEN'), 'backends[0].secret_access_key', /unterminated/);
  });

  test('expansion feeds sizes, durations, booleans, lists and listen addresses', () => {
    const env = { Q: '10GiB', T: '5m', PS: 'true', DOM: 's3.example.org', PORT: '9100' };
    const c = resolve({
      server: { s3: { listen: ':${PORT}', virtual_host_domains: ['${DOM}'], idle_timeout: '${T}' } },
      backends: [{ ...S3, quota_bytes: '${Q}', force_path_style: '${PS}' }],
    }, env);
    assert.equal(c.server.s3.port, 9100);
    assert.deepEqual(c.server.s3.virtualHostDomains, ['s3.example.org']);
    assert.equal(c.server.s3.idleTimeoutMs, 300_000);
    assert.equal(c.backends[0]!.quotaBytes, 10 * 2 ** 30);
    assert.equal((c.backends[0] as S3BackendConfig).forcePathStyle, true);
    expectProblem({ backends: [{ ...S3, force_path_style: '${PS}' }] }, 'backends[0].force_path_style', /true or false.*"yes"/, { PS: 'yes' });
    expectProblem({ backends: [{ ...S3, quota_bytes: '${Q}' }] }, 'backends[0].quota_bytes', /unknown unit "G"/, { Q: '10G' });
  });

  test('a literal "true" string is not a boolean', () => {
    expectProblem({ backends: [{ ...S3, force_path_style: 'true' }] }, 'backends[0].force_path_style', /must be true or false, got "true"/);
  });
});
