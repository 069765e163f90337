import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, resolveConfig } from '../../../src/config/load.js';

const FS = { name: 'disk', type: 'fs', path: '/data/disk' };

test('placement.rebalance_on_add: false by default, true when set, a non-boolean names the key', () => {
  assert.equal(resolveConfig({ backends: [FS] }, 'cfg.yaml', {}, '/srv').placement.rebalanceOnAdd, undefined);
  assert.equal(resolveConfig({ backends: [FS], placement: { rebalance_on_add: true } }, 'cfg.yaml', {}, '/srv').placement.rebalanceOnAdd, true);
  assert.equal(resolveConfig({ backends: [FS], placement: { rebalance_on_add: false } }, 'cfg.yaml', {}, '/srv').placement.rebalanceOnAdd, undefined);
  assert.throws(
    () => resolveConfig({ backends: [FS], placement: { rebalance_on_add: 'yes please' } }, 'cfg.yaml', {}, '/srv'),
    (e: unknown) => e instanceof ConfigError && /cfg\.yaml: placement\.rebalance_on_add: /.test(e.message),
  );
});
