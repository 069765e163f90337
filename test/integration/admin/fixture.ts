import { Registry, Counter } from 'prom-client';
import { CoreError } from '../../../src/core/errors.js';
import type { CopyLocation, ObjectVersion } from '../../../src/core/types.js';
import { createLogger } from '../../../src/log.js';
import type { AdminDeps } from '../../../src/admin/deps.js';
import { startAdminServer, type AdminServer } from '../../../src/admin/server.js';

/** The token the auth tests configure. */
export const TOKEN = 's3cr3t-admin-token';

/** Fixed start time, so status assertions do not depend on the clock. */
export const STARTED_AT = new Date('2025-01-02T03:04:05.678Z');

const VERSION: ObjectVersion = {
  bucket: 'photos',
  key: '2024/cat picture.jpg',
  versionId: 'v-0001',
  size: 3 * 1024 * 1024,
  etag: 'd41d8cd98f00b204e9800998ecf8427e',
  userMeta: {},
  tagCount: 0,
  lastModified: new Date('2025-02-03T04:05:06.000Z'),
};

const COPIES: CopyLocation[] = [
  { backend: 'disk-a', physicalKey: 'photos/v-0001', size: 3 * 1024 * 1024, state: 'live' },
  { backend: 'cloud-b', physicalKey: 'photos/v-0001', size: 3 * 1024 * 1024, state: 'pending' },
];

/** Mutable knobs a test may flip (readiness, failures), plus log lines captured from the server. */
export interface FixtureState {
  /** What deps.ready() answers; 'throw' makes it reject. */
  ready: boolean | 'throw';
  /** When set, listBackends throws it (to check error mapping). */
  backendsError?: unknown;
  logs: string[];
}

/**
 * An AdminDeps over fixed data: a real prom-client Registry and real logger, with in-test answers for the
 * parts the orchestrator will provide (its end-to-end admin test comes with the full harness).
 */
export function fixtureDeps(token?: string): { deps: AdminDeps; state: FixtureState } {
  const state: FixtureState = { ready: true, logs: [] };
  const registry = new Registry();
  const counter = new Counter({ name: 's3o_test_admin_total', help: 'A counter the admin tests read back.', registers: [registry] });
  counter.inc(7);
  const deps: AdminDeps = {
    async status() {
      return {
        version: '0.1.0-test',
        startedAt: STARTED_AT,
        dbEngine: 'embedded',
        schemaVersion: 3,
        s3Listen: '127.0.0.1:9000',
        adminListen: '127.0.0.1:9001',
        instanceId: 'inst-42',
      };
    },
    async listBackends() {
      if (state.backendsError !== undefined) throw state.backendsError;
      return [
        { name: 'disk-a', type: 'fs', quotaBytes: 10 * 1024 ** 3, usedBytes: 1.5 * 1024 ** 3, reservedBytes: 2048, objectCount: 12, healthy: true, state: 'active', source: 'config', zone: 'home' },
        { name: 'cloud-b', type: 's3', quotaBytes: 0, usedBytes: 5 * 1024 ** 2, reservedBytes: 0, objectCount: 3, healthy: false, state: 'draining', source: 'config' },
      ];
    },
    async listBuckets() {
      return [
        { name: 'backups', createdAt: new Date('2024-12-01T00:00:00Z'), objectCount: 0, totalBytes: 0, accessKeyIds: [] },
        { name: 'photos', createdAt: new Date('2024-11-30T12:00:00Z'), objectCount: 15, totalBytes: 7 * 1024 ** 3, accessKeyIds: ['AKZZZ', 'AKAAA'] },
      ];
    },
    async locate(bucket, key) {
      if (bucket !== 'photos') throw new CoreError('NoSuchBucket', `bucket ${bucket} does not exist`);
      if (key !== VERSION.key) throw new CoreError('NoSuchKey', `no such key ${key}`);
      return { version: VERSION, copies: COPIES };
    },
    async ready() {
      if (state.ready === 'throw') throw new Error('database connection refused');
      return state.ready;
    },
    registry,
    token,
    log: createLogger({ component: 'admin-test' }, 'debug', (line) => state.logs.push(line)),
  };
  return { deps, state };
}

/** Starts a real admin server on a free loopback port. */
export async function startFixture(token?: string): Promise<{ server: AdminServer; state: FixtureState; url: string }> {
  const { deps, state } = fixtureDeps(token);
  const server = await startAdminServer(deps, { host: '127.0.0.1', port: 0 });
  return { server, state, url: `http://127.0.0.1:${server.port}` };
}
