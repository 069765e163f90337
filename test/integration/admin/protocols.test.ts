import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import {
  AdminService,
  BackendState,
  BackendType,
  CopyState,
  GetStatusResponseSchema,
  GetStatusRequestSchema,
} from '../../../gen/s3o/admin/v1/admin_pb.js';
import type { AdminServer } from '../../../src/admin/server.js';
import { STARTED_AT, TOKEN, startFixture, type FixtureState } from './fixture.js';

/** Every protocol the admin port speaks, through connect-node's client transports. */
const PROTOCOLS: Record<string, (baseUrl: string) => Transport> = {
  'Connect over HTTP/1.1': (baseUrl) => createConnectTransport({ baseUrl, httpVersion: '1.1' }),
  'Connect over HTTP/2': (baseUrl) => createConnectTransport({ baseUrl, httpVersion: '2' }),
  'gRPC (h2c)': (baseUrl) => createGrpcTransport({ baseUrl }),
  'gRPC-Web over HTTP/1.1': (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: '1.1' }),
  'gRPC-Web over HTTP/2': (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: '2' }),
};

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

async function codeOf(p: Promise<unknown>): Promise<Code> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e).code;
  }
  assert.fail('expected the call to fail');
}

let server: AdminServer;
let url: string;
let state: FixtureState;

before(async () => {
  ({ server, url, state } = await startFixture(TOKEN));
});
after(async () => {
  await server.close();
});

for (const [name, make] of Object.entries(PROTOCOLS)) {
  describe(name, () => {
    let client: Client<typeof AdminService>;
    before(() => {
      client = createClient(AdminService, make(url));
    });

    test('GetStatus_returns_instance_and_totals', async () => {
      const s = await client.getStatus({}, auth(TOKEN));
      assert.equal(s.version, '0.1.0-test');
      assert.equal(s.instanceId, 'inst-42');
      assert.equal(s.databaseEngine, 'embedded');
      assert.equal(s.schemaVersion, 3);
      assert.equal(s.s3ListenAddress, '127.0.0.1:9000');
      assert.equal(s.adminListenAddress, '127.0.0.1:9001');
      assert.deepEqual(timestampDate(s.startedAt!), STARTED_AT);
      assert.ok(s.uptime !== undefined && s.uptime.seconds > 0n);
      assert.equal(s.backendCount, 2);
      assert.equal(s.healthyBackendCount, 1);
      assert.equal(s.bucketCount, 2);
      assert.equal(s.objectCount, 15n);
      assert.equal(s.totalBytes, 7n * 1024n ** 3n);
    });

    test('ListBackends_maps_types_and_usage', async () => {
      const { backends } = await client.listBackends({}, auth(TOKEN));
      assert.deepEqual(
        backends.map((b) => [b.name, b.type, b.quotaBytes, b.usedBytes, b.reservedBytes, b.objectCount, b.healthy, b.state, b.source, b.zone]),
        [
          ['disk-a', BackendType.FS, 10n * 1024n ** 3n, 1536n * 1024n ** 2n, 2048n, 12n, true, BackendState.ACTIVE, 'config', 'home'],
          ['cloud-b', BackendType.S3, 0n, 5n * 1024n ** 2n, 0n, 3n, false, BackendState.DRAINING, 'config', ''],
        ],
      );
    });

    test('ListBuckets_has_key_ids_sorted_and_no_secrets', async () => {
      const { buckets } = await client.listBuckets({}, auth(TOKEN));
      assert.deepEqual(buckets.map((b) => b.name), ['backups', 'photos']);
      const photos = buckets[1]!;
      assert.deepEqual(photos.accessKeyIds, ['AKAAA', 'AKZZZ']);
      assert.equal(photos.objectCount, 15n);
      assert.deepEqual(timestampDate(photos.createdAt!), new Date('2024-11-30T12:00:00Z'));
    });

    test('LocateObject_returns_version_and_copies', async () => {
      const r = await client.locateObject({ bucket: 'photos', key: '2024/cat picture.jpg' }, auth(TOKEN));
      assert.equal(r.versionId, 'v-0001');
      assert.equal(r.size, 3n * 1024n * 1024n);
      assert.equal(r.etag, 'd41d8cd98f00b204e9800998ecf8427e');
      assert.deepEqual(
        r.copies.map((c) => [c.backend, c.physicalKey, c.state]),
        [
          ['disk-a', 'photos/v-0001', CopyState.LIVE],
          ['cloud-b', 'photos/v-0001', CopyState.PENDING],
        ],
      );
    });

    test('LocateObject_missing_key_and_bucket_are_NotFound', async () => {
      assert.equal(await codeOf(client.locateObject({ bucket: 'photos', key: 'nope' }, auth(TOKEN))), Code.NotFound);
      assert.equal(await codeOf(client.locateObject({ bucket: 'nope', key: 'k' }, auth(TOKEN))), Code.NotFound);
    });

    test('LocateObject_empty_key_is_InvalidArgument', async () => {
      assert.equal(await codeOf(client.locateObject({ bucket: 'photos', key: '' }, auth(TOKEN))), Code.InvalidArgument);
    });

    test('token_missing_or_wrong_is_Unauthenticated', async () => {
      assert.equal(await codeOf(client.getStatus({})), Code.Unauthenticated);
      assert.equal(await codeOf(client.getStatus({}, auth('not-the-token'))), Code.Unauthenticated);
      assert.equal(await codeOf(client.getStatus({}, auth(TOKEN + 'x'))), Code.Unauthenticated);
      assert.equal(await codeOf(client.getStatus({}, { headers: { authorization: TOKEN } })), Code.Unauthenticated);
    });
  });
}

test('unexpected_error_is_Internal_and_its_cause_is_logged_not_sent', async () => {
  const client = createClient(AdminService, createConnectTransport({ baseUrl: url, httpVersion: '1.1' }));
  state.backendsError = new Error('db password is hunter2');
  try {
    const err = await client.listBackends({}, auth(TOKEN)).then(
      () => assert.fail('expected failure'),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.Internal);
    assert.doesNotMatch(err.message, /hunter2/);
    assert.ok(state.logs.some((l) => l.includes('hunter2') && l.includes('ListBackends')));
  } finally {
    delete state.backendsError;
  }
});

/** gRPC-Web as a browser sends it: a plain fetch with 5-byte-framed protobuf and trailers in the body. */
describe('gRPC-Web raw fetch', () => {
  const frame = (payload: Uint8Array) => {
    const out = new Uint8Array(5 + payload.length);
    new DataView(out.buffer).setUint32(1, payload.length);
    out.set(payload, 5);
    return out;
  };
  const call = (token?: string) =>
    fetch(`${url}/s3o.admin.v1.AdminService/GetStatus`, {
      method: 'POST',
      headers: {
        'content-type': 'application/grpc-web+proto',
        'x-grpc-web': '1',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: frame(toBinary(GetStatusRequestSchema, { $typeName: 's3o.admin.v1.GetStatusRequest' })),
    });

  /** Splits a gRPC-Web body into its data frame and its trailer frame (flag 0x80). */
  function parse(body: Uint8Array): { data?: Uint8Array; trailers: string } {
    let data: Uint8Array | undefined;
    let trailers = '';
    for (let off = 0; off < body.length; ) {
      const len = new DataView(body.buffer, body.byteOffset + off + 1, 4).getUint32(0);
      const chunk = body.subarray(off + 5, off + 5 + len);
      if (body[off]! & 0x80) trailers += new TextDecoder().decode(chunk);
      else data = chunk;
      off += 5 + len;
    }
    return { data, trailers };
  }

  test('GetStatus_with_token_succeeds', async () => {
    const res = await call(TOKEN);
    assert.equal(res.status, 200);
    const { data, trailers } = parse(new Uint8Array(await res.arrayBuffer()));
    assert.match(trailers, /grpc-status: ?0/);
    assert.equal(fromBinary(GetStatusResponseSchema, data!).instanceId, 'inst-42');
  });

  test('GetStatus_without_token_is_status_16', async () => {
    const res = await call();
    // Trailers-only responses carry the status as a header; otherwise it is in the trailer frame.
    const header = res.headers.get('grpc-status');
    if (header !== null) assert.equal(header, '16');
    else assert.match(parse(new Uint8Array(await res.arrayBuffer())).trailers, /grpc-status: ?16\b/);
  });
});
