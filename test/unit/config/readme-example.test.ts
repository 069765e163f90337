import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { resolveConfig } from '../../../src/config/load.js';

const ROOT = new URL('../../../', import.meta.url);

test('the configuration example in the README validates', async () => {
  const readme = await readFile(new URL('README.md', ROOT), 'utf8');
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(yaml, 'README.md has a yaml example');
  const names = [...new Set([...yaml.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))];
  const env = Object.fromEntries(names.map((n, i) => [n, `VALUE${String(i).padStart(12, '0')}`]));
  const config = resolveConfig(parse(yaml), 'README.md', env);
  assert.deepEqual(config.backends.map((b) => b.name), ['b2', 'r2', 'nas']);
  assert.equal(config.buckets[0]!.credentials.length, 1);
});
