import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runConfigValidate } from '../../../src/cli/config-cmd.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SECRETS = {
  B2_KEY_ID: '004b2keyidvalue0000000001',
  B2_APPLICATION_KEY: 'K004-b2-application-key-secret',
  DB_PASSWORD: 'db-password-secret',
  ADMIN_TOKEN: 'admin-token-secret-value',
};
const BUCKET_SECRET = 'bucket-secret-wJalrXUtnFEMI';

const GOOD = `
server:
  s3:
    listen: ":9000"
  admin:
    listen: "[::1]:9001"
    token: \${ADMIN_TOKEN}
database:
  url: postgres://orch:\${DB_PASSWORD}@db.internal:5432/orchestrator
backends:
  - name: b2
    type: s3
    endpoint: https://s3.us-west-004.backblazeb2.com
    region: us-west-004
    bucket: my-orchestrator
    access_key_id: \${B2_KEY_ID}
    secret_access_key: \${B2_APPLICATION_KEY}
    quota_bytes: 10GB
  - name: disk
    type: fs
    path: /srv/s3o
buckets:
  - name: photos
    credentials:
      - access_key_id: AKIAIOSFODNN7EXAMPLE
        secret_access_key: ${BUCKET_SECRET}
  - name: backups
    credentials: []
`;

const BAD = `
backends:
  - name: b2
    type: gcs
  - name: b2
    type: fs
    path: /x
    quota_bytes: 10G
buckets:
  - name: Photos
`;

class Collect {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

let dir: string;
let good: string;
let bad: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 's3o-config-cmd-'));
  good = path.join(dir, 'good.yaml');
  bad = path.join(dir, 'bad.yaml');
  await writeFile(good, GOOD);
  await writeFile(bad, BAD);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertNoSecrets(text: string): void {
  for (const secret of [...Object.values(SECRETS), BUCKET_SECRET]) assert.ok(!text.includes(secret), `output contains ${secret}:\n${text}`);
}

describe('runConfigValidate', () => {
  test('a valid file: exit 0 and a summary of listeners, backends, quotas and buckets', async () => {
    const out = new Collect();
    const err = new Collect();
    assert.equal(await runConfigValidate(good, out, err, SECRETS), 0);
    assert.equal(err.text, '');
    assert.match(out.text, new RegExp(`^${good}: OK\n`));
    assert.match(out.text, /S3 API\s+0\.0\.0\.0:9000, region us-east-1/);
    assert.match(out.text, /admin API\s+\[::1\]:9001, bearer token required/);
    assert.match(out.text, /metadata\s+PostgreSQL db\.internal:5432\/orchestrator, schema public/);
    assert.match(out.text, /b2\s+s3\s+s3\.us-west-004\.backblazeb2\.com bucket my-orchestrator\s+quota 10 GB/);
    assert.match(out.text, /disk\s+fs\s+\/srv\/s3o\s+no quota/);
    assert.match(out.text, /total quota 10 GB plus 1 unlimited/);
    assert.match(out.text, /buckets \(2\):\n\s+photos\s+1 credential\n\s+backups\s+0 credentials/);
    assertNoSecrets(out.text);
  });

  test('an invalid file: exit 1 and every problem, each naming file and key path', async () => {
    const out = new Collect();
    const err = new Collect();
    assert.equal(await runConfigValidate(bad, out, err, {}), 1);
    assert.equal(out.text, '');
    const lines = err.text.trim().split('\n');
    assert.equal(lines[0], '4 configuration problems:');
    assert.deepEqual(lines.slice(1).map((l) => l.split(': ').slice(0, 2).join(': ')), [
      `${bad}: backends[0].type`,
      `${bad}: backends[1].name`,
      `${bad}: backends[1].quota_bytes`,
      `${bad}: buckets[0].name`,
    ]);
  });

  test('failures print no secrets either', async () => {
    const leaky = path.join(dir, 'leaky.yaml');
    await writeFile(leaky, GOOD.replace('listen: "[::1]:9001"', 'listen: "0.0.0.0:9000"').replace('bucket: my-orchestrator', 'bucket: 42'));
    const err = new Collect();
    assert.equal(await runConfigValidate(leaky, new Collect(), err, SECRETS), 1);
    assert.match(err.text, /server\.admin\.listen: port 9000 is already used/);
    assert.match(err.text, /backends\[0\]\.bucket: must be a string/);
    assertNoSecrets(err.text);
  });

  test('the full example in docs/configuration.md validates', async () => {
    const doc = await readFile(path.join(ROOT, 'docs/configuration.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(yaml, 'docs/configuration.md has a yaml example');
    const file = path.join(dir, 'docs-example.yaml');
    await writeFile(file, yaml);
    const names = [...new Set([...yaml.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))];
    const env = Object.fromEntries(names.map((n, i) => [n, `VALUE${String(i).padStart(12, '0')}`]));
    const out = new Collect();
    const err = new Collect();
    assert.equal(await runConfigValidate(file, out, err, env), 0, err.text);
    assert.match(out.text, /backends \(6\):/);
    for (const [name, quota] of [['b2', '10 GB'], ['r2', '10 GB'], ['oci', '20 GB'], ['aws', '5 GB']]) {
      assert.match(out.text, new RegExp(`\\n    ${name} .*quota ${quota}\\n`));
    }
  });

  test('a missing file: exit 1 with the reason', async () => {
    const err = new Collect();
    assert.equal(await runConfigValidate(path.join(dir, 'missing.yaml'), new Collect(), err, {}), 1);
    assert.match(err.text, /missing\.yaml: cannot read the configuration file: no such file/);
  });
});

describe('s3-orchestrator config validate (the real binary)', () => {
  const mainExists = existsSync(path.join(ROOT, 'src/cli/main.ts'));
  const skip = mainExists ? false : 'src/cli/main.ts does not exist yet (written by another engineer); the CLI cannot run';
  const run = async (file: string) => {
    try {
      const r = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/s3-orchestrator.js'), 'config', 'validate', file], {
        cwd: ROOT,
        env: { ...process.env, ...SECRETS },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout: string; stderr: string };
      return { code: x.code ?? -1, stdout: x.stdout, stderr: x.stderr };
    }
  };
  /** While other parts of the project are still being written, main.ts may import a file that does not exist. */
  const missingSource = (stderr: string): string | undefined => {
    const m = /\[ERR_MODULE_NOT_FOUND\]: Cannot find module '([^']+)'/.exec(stderr);
    return m && m[1]!.startsWith(path.join(ROOT, 'src')) ? m[1] : undefined;
  };

  test('exit 0 and the summary on stdout for a valid file', { skip }, async (t) => {
    const r = await run(good);
    const missing = missingSource(r.stderr);
    if (missing) return t.skip(`the CLI cannot load yet: ${missing} does not exist (another engineer's file)`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: OK\n/);
    assert.match(r.stdout, /quota 10 GB/);
    assertNoSecrets(r.stdout + r.stderr);
  });

  test('exit 1 and every problem on stderr for an invalid file', { skip }, async (t) => {
    const r = await run(bad);
    const missing = missingSource(r.stderr);
    if (missing) return t.skip(`the CLI cannot load yet: ${missing} does not exist (another engineer's file)`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backends\[0\]\.type: must be "s3" or "fs", got "gcs"/);
    assert.match(r.stderr, /buckets\[0\]\.name: /);
  });
});
