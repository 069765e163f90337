import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import {
  GetStatusRequestSchema,
  GetStatusResponseSchema,
  LocateObjectRequestSchema,
  LocateObjectResponseSchema,
} from '../../../gen/s3o/admin/v1/admin_pb.js';
import * as v1 from '../../../gen/grpc/reflection/v1/reflection_pb.js';
import * as v1alpha from '../../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import type { AdminServer } from '../../../src/admin/server.js';
import { TOKEN, startFixture } from './fixture.js';

/** A grpc-js method definition whose (de)serializers are protobuf-es toBinary/fromBinary. */
function method<I extends DescMessage, O extends DescMessage>(path: string, input: I, output: O, stream = false) {
  return {
    path,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

const AdminClient = grpc.makeGenericClientConstructor(
  {
    GetStatus: method('/s3o.admin.v1.AdminService/GetStatus', GetStatusRequestSchema, GetStatusResponseSchema),
    LocateObject: method('/s3o.admin.v1.AdminService/LocateObject', LocateObjectRequestSchema, LocateObjectResponseSchema),
  },
  'AdminService',
);

const ReflectionV1 = grpc.makeGenericClientConstructor(
  {
    ServerReflectionInfo: method(
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      v1.ServerReflectionRequestSchema,
      v1.ServerReflectionResponseSchema,
      true,
    ),
  },
  'ServerReflectionV1',
);

const ReflectionV1alpha = grpc.makeGenericClientConstructor(
  {
    ServerReflectionInfo: method(
      '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
      v1alpha.ServerReflectionRequestSchema,
      v1alpha.ServerReflectionResponseSchema,
      true,
    ),
  },
  'ServerReflectionV1alpha',
);

type Unary = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

function unary<T>(client: grpc.Client, name: string, req: unknown, token?: string): Promise<T> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  const fn = (client as unknown as Record<string, Unary>)[name]!.bind(client);
  return new Promise((resolve, reject) => fn(req, md, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Sends `requests` on one reflection stream and collects the responses (one per request). */
function reflect<Res>(client: grpc.Client, requests: unknown[]): Promise<Res[]> {
  const call = (client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, Res>>)
    .ServerReflectionInfo!.call(client, new grpc.Metadata());
  const out: Res[] = [];
  return new Promise((resolve, reject) => {
    call.on('data', (r: Res) => out.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const r of requests) call.write(r);
    call.end();
  });
}

let server: AdminServer;
let target: string;
const clients: grpc.Client[] = [];
const newClient = <C extends grpc.Client>(Ctor: new (t: string, c: grpc.ChannelCredentials) => C): C => {
  const c = new Ctor(target, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
};

before(async () => {
  const f = await startFixture(TOKEN);
  server = f.server;
  target = `127.0.0.1:${server.port}`;
});
after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

describe('grpc-js AdminService', () => {
  test('GetStatus_with_token', async () => {
    const res = await unary<MessageShape<typeof GetStatusResponseSchema>>(
      newClient(AdminClient), 'GetStatus', create(GetStatusRequestSchema), TOKEN);
    assert.equal(res.instanceId, 'inst-42');
    assert.equal(res.totalBytes, 7n * 1024n ** 3n);
  });

  test('GetStatus_without_or_with_wrong_token_is_UNAUTHENTICATED', async () => {
    const c = newClient(AdminClient);
    await assert.rejects(unary(c, 'GetStatus', create(GetStatusRequestSchema)), { code: grpc.status.UNAUTHENTICATED });
    await assert.rejects(unary(c, 'GetStatus', create(GetStatusRequestSchema), 'wrong'), { code: grpc.status.UNAUTHENTICATED });
  });

  test('LocateObject_missing_key_is_NOT_FOUND', async () => {
    const c = newClient(AdminClient);
    await assert.rejects(
      unary(c, 'LocateObject', create(LocateObjectRequestSchema, { bucket: 'photos', key: 'nope' }), TOKEN),
      { code: grpc.status.NOT_FOUND },
    );
    const ok = await unary<MessageShape<typeof LocateObjectResponseSchema>>(
      c, 'LocateObject', create(LocateObjectRequestSchema, { bucket: 'photos', key: '2024/cat picture.jpg' }), TOKEN);
    assert.equal(ok.copies.length, 2);
  });
});

describe('grpc-js reflection', () => {
  const fileNames = (r: v1.ServerReflectionResponse | v1alpha.ServerReflectionResponse) => {
    assert.equal(r.messageResponse.case, 'fileDescriptorResponse');
    return r.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
  };

  test('v1_list_services_and_files_with_dependencies_without_token', async () => {
    const responses = await reflect<v1.ServerReflectionResponse>(newClient(ReflectionV1), [
      create(v1.ServerReflectionRequestSchema, { messageRequest: { case: 'listServices', value: '' } }),
      create(v1.ServerReflectionRequestSchema, {
        messageRequest: { case: 'fileContainingSymbol', value: 's3o.admin.v1.AdminService.LocateObject' },
      }),
      create(v1.ServerReflectionRequestSchema, { messageRequest: { case: 'fileByFilename', value: 'google/protobuf/timestamp.proto' } }),
      create(v1.ServerReflectionRequestSchema, { messageRequest: { case: 'fileContainingSymbol', value: 's3o.admin.v1.CopyState' } }),
      create(v1.ServerReflectionRequestSchema, { messageRequest: { case: 'fileContainingSymbol', value: 'no.such.Symbol' } }),
      create(v1.ServerReflectionRequestSchema, { messageRequest: { case: 'allExtensionNumbersOfType', value: 's3o.admin.v1.Bucket' } }),
    ]);
    assert.equal(responses.length, 6);
    const [list, bySymbol, byFile, byEnum, missing, exts] = responses as [
      v1.ServerReflectionResponse, v1.ServerReflectionResponse, v1.ServerReflectionResponse,
      v1.ServerReflectionResponse, v1.ServerReflectionResponse, v1.ServerReflectionResponse];
    assert.equal(list.messageResponse.case, 'listServicesResponse');
    assert.deepEqual(list.messageResponse.value.service.map((s) => s.name), [
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      's3o.admin.v1.AdminService',
    ]);
    assert.deepEqual(fileNames(bySymbol), [
      's3o/admin/v1/admin.proto',
      'google/protobuf/duration.proto',
      'google/protobuf/timestamp.proto',
    ]);
    assert.deepEqual(fileNames(byFile), ['google/protobuf/timestamp.proto']);
    assert.equal(fileNames(byEnum)[0], 's3o/admin/v1/admin.proto');
    assert.equal(missing.messageResponse.case, 'errorResponse');
    assert.equal(missing.messageResponse.value.errorCode, grpc.status.NOT_FOUND);
    assert.equal(exts.messageResponse.case, 'allExtensionNumbersResponse');
    assert.deepEqual(exts.messageResponse.value.extensionNumber, []);
    assert.equal(bySymbol.originalRequest?.messageRequest.value, 's3o.admin.v1.AdminService.LocateObject');
  });

  test('v1alpha_answers_like_v1', async () => {
    const [list, file] = await reflect<v1alpha.ServerReflectionResponse>(newClient(ReflectionV1alpha), [
      create(v1alpha.ServerReflectionRequestSchema, { messageRequest: { case: 'listServices', value: '*' } }),
      create(v1alpha.ServerReflectionRequestSchema, { messageRequest: { case: 'fileByFilename', value: 's3o/admin/v1/admin.proto' } }),
    ]);
    assert.equal(list!.messageResponse.case, 'listServicesResponse');
    assert.ok(list!.messageResponse.value.service.some((s) => s.name === 's3o.admin.v1.AdminService'));
    assert.equal(file!.messageResponse.case, 'fileDescriptorResponse');
    const proto = fromBinary(FileDescriptorProtoSchema, file!.messageResponse.value.fileDescriptorProto[0]!);
    assert.equal(proto.package, 's3o.admin.v1');
    assert.deepEqual(proto.service[0]!.method.map((m) => m.name), ['GetStatus', 'ListBackends', 'ListBuckets', 'LocateObject']);
  });
});
