import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfigFile } from '../../../src/config/load.js';
import { zeroConfig } from '../../../src/config/defaults.js';
import type { FsBackendConfig, S3BackendConfig } from '../../../src/config/types.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 's3o-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

async function rejection(file: string, env: Record<string, string> = {}): Promise<ConfigError> {
  try {
    await loadConfigFile(file, env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e;
  }
  return assert.fail('expected loadConfigFile to reject');
}

describe('loadConfigFile', () => {
  test('reads a real YAML file with env expansion, snake_case keys and sizes', async () => {
    const file = await write('good.yaml', [
      'server:',
      '  s3:',
      '    listen: "127.0.0.1:0"',
      '  admin:',
      '    token: ${ADMIN_TOKEN}',
      'backends:',
      '  - name: r2',
      '    type: s3',
      '    endpoint: https://${R2_ACCOUNT}.r2.cloudflarestorage.com',
      '    region: auto',
      '    bucket: orchestrator',
      '    access_key_id: ${R2_KEY}',
      '    secret_access_key: ${R2_SECRET}',
      '    quota_bytes: 10GB',
      '  - name: local',
      '    type: fs',
      '    path: /srv/s3o',
      '    quota_bytes: 512 MiB',
      'buckets:',
      '  - name: photos',
      '    credentials:',
      '      - access_key_id: AKIAIOSFODNN7EXAMPLE',
      '      - secret_access_key: misplaced',
      '',
    ].join('\n'));
    // The list item above is deliberately split wrongly: one credential per mapping is required.
    const err = await rejection(file, { ADMIN_TOKEN: 't', R2_ACCOUNT: 'acc', R2_KEY: 'k', R2_SECRET: 's' });
    assert.match(err.message, new RegExp(`${file}: buckets\\[0\\]\\.credentials\\[0\\]\\.secret_access_key: is required`));
    assert.match(err.message, new RegExp(`${file}: buckets\\[0\\]\\.credentials\\[1\\]\\.access_key_id: is required`));

    const fixed = await write('good2.yaml', (await readFile(file, 'utf8')).replace('      - secret_access_key: misplaced', '        secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'));
    const c = await loadConfigFile(fixed, { ADMIN_TOKEN: 't', R2_ACCOUNT: 'acc', R2_KEY: 'k', R2_SECRET: 's' });
    assert.equal(c.source, fixed);
    assert.equal(c.demo, false);
    assert.equal(c.server.admin.token, 't');
    const [r2, local] = c.backends as [S3BackendConfig, FsBackendConfig];
    assert.equal(r2.endpoint, 'https://acc.r2.cloudflarestorage.com');
    assert.equal(r2.quotaBytes, 10_000_000_000);
    assert.equal(r2.secretAccessKey, 's');
    assert.equal(local.quotaBytes, 512 * 2 ** 20);
    assert.deepEqual(c.buckets, [{ name: 'photos', credentials: [{ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }] }]);
    assert.ok(Object.isFrozen(c.buckets[0]!.credentials));
  });

  test('uses process.env by default', async () => {
    const file = await write('env.yaml', 'backends:\n  - {name: d, type: fs, path: "${S3O_TEST_CONFIG_DIR}"}\n');
    process.env.S3O_TEST_CONFIG_DIR = '/tmp/from-env';
    try {
      assert.equal(((await loadConfigFile(file)).backends[0] as FsBackendConfig).path, '/tmp/from-env');
    } finally {
      delete process.env.S3O_TEST_CONFIG_DIR;
    }
  });

  test('a YAML syntax error names the file, line and column', async () => {
    const file = await write('syntax.yaml', 'backends:\n  - name: a\n    type: fs\n   path: /x\n');
    const err = await rejection(file);
    assert.match(err.message, new RegExp(`^${file}: line 4, column \\d+: invalid YAML: `));
  });

  test('an unclosed flow list is a syntax error with its position', async () => {
    const file = await write('flow.yaml', 'backends: [\n');
    assert.match((await rejection(file)).message, /flow\.yaml: line \d+, column \d+: invalid YAML/);
  });

  test('a duplicate key is an error, not a silent override', async () => {
    const file = await write('dup.yaml', 'backends:\n  - {name: a, type: fs, path: /a}\nbackends:\n  - {name: b, type: fs, path: /b}\n');
    assert.match((await rejection(file)).message, /dup\.yaml: line 3, column 1: invalid YAML: Map keys must be unique/);
  });

  test('several YAML documents in one file are rejected', async () => {
    const file = await write('multi.yaml', 'backends: []\n---\nbackends: []\n');
    assert.match((await rejection(file)).message, /multi\.yaml: line \d+, column \d+: invalid YAML/);
  });

  test('an empty file only lacks backends', async () => {
    const err = await rejection(await write('empty.yaml', ''));
    assert.equal(err.message, `${path.join(dir, 'empty.yaml')}: backends: at least one backend is required`);
  });

  test('a missing file and a directory are reported with the name', async () => {
    const missing = path.join(dir, 'nope.yaml');
    assert.equal((await rejection(missing)).message, `${missing}: cannot read the configuration file: no such file`);
    assert.equal((await rejection(dir)).message, `${dir}: cannot read the configuration file: is a directory`);
  });

  test('an unset variable names the variable, file and key path', async () => {
    const file = await write('unset.yaml', 'backends:\n  - name: b2\n    type: s3\n    bucket: x\n    access_key_id: ${B2_KEY_ID}\n    secret_access_key: ${B2_APPLICATION_KEY}\n');
    const err = await rejection(file, { B2_KEY_ID: 'id' });
    assert.equal(err.message, `${file}: backends[0].secret_access_key: environment variable B2_APPLICATION_KEY is not set (use \${B2_APPLICATION_KEY:-default} for a default)`);
  });

  test('relative paths resolve against the current directory, not the file', async () => {
    const file = await write('rel.yaml', 'database: {path: meta}\nbackends:\n  - {name: d, type: fs, path: disk}\n');
    const c = await loadConfigFile(file, {});
    assert.equal(c.database.path, path.resolve('meta'));
    assert.equal((c.backends[0] as FsBackendConfig).path, path.resolve('disk'));
  });
});

describe('zeroConfig', () => {
  test('embedded PostgreSQL, two local backends, demo mode, default listeners', () => {
    const c = zeroConfig(path.join(dir, 'zc'));
    const root = path.join(dir, 'zc');
    assert.deepEqual(c, {
      server: {
        // Zero-config listens on loopback only (the banner says how to expose it).
        s3: { host: '127.0.0.1', port: 9000, region: 'us-east-1', virtualHostDomains: [], idleTimeoutMs: 60_000 },
        admin: { host: '127.0.0.1', port: 9001 },
        shutdownTimeoutMs: 30_000,
      },
      database: {
        path: path.join(root, 'pg'),
        schema: 'public',
        poolSize: 20,
        statementTimeoutMs: 30_000,
        lockTimeoutMs: 10_000,
        connectTimeoutMs: 10_000,
      },
      placement: { strategy: 'pack', replicas: 1 },
      backends: [
        { name: 'local1', type: 'fs', path: path.join(root, 'backends', 'local1'), quotaBytes: 0 },
        { name: 'local2', type: 'fs', path: path.join(root, 'backends', 'local2'), quotaBytes: 0 },
      ],
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
      demo: true,
    });
    assert.equal(c.source, undefined);
    assert.ok(Object.isFrozen(c.backends[1]));
  });

  test('the default data directory is ./data under the current directory', () => {
    const c = zeroConfig();
    assert.equal(c.database.path, path.resolve('data', 'pg'));
    assert.equal((c.backends[0] as FsBackendConfig).path, path.resolve('data', 'backends', 'local1'));
  });
});
