import { create, fromBinary, toBinary, type DescFile, type DescMessage, type DescEnum } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';
import * as v1 from '../../gen/grpc/reflection/v1/reflection_pb.js';
import * as v1alpha from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';

/** gRPC status codes used in ErrorResponse (the reflection protocol carries them as int32). */
const GRPC_NOT_FOUND = 5;
const GRPC_INVALID_ARGUMENT = 3;

/** The reflection services themselves; always served alongside the application files. */
export const REFLECTION_FILES: readonly DescFile[] = [
  v1.file_grpc_reflection_v1_reflection,
  v1alpha.file_grpc_reflection_v1alpha_reflection,
];

/**
 * An index over a set of generated file descriptors and their transitive imports (well-known types
 * included): by file name, by fully-qualified symbol, and the serialized FileDescriptorProto of each file.
 */
export class DescriptorIndex {
  readonly #files = new Map<string, DescFile>();
  readonly #bytes = new Map<string, Uint8Array>();
  readonly #symbols = new Map<string, DescFile>();
  readonly #extensions = new Map<string, { file: DescFile; number: number }[]>();
  /** Fully-qualified names of the services served, sorted (the list_services answer). */
  readonly services: readonly string[];

  constructor(files: readonly DescFile[]) {
    const services: string[] = [];
    const visit = (file: DescFile): void => {
      // DescFile.name drops the ".proto" suffix; reflection clients ask by the full path in proto.name.
      const name = file.proto.name;
      if (this.#files.has(name)) return;
      this.#files.set(name, file);
      // Serialized once: descriptors are immutable for the life of the process.
      this.#bytes.set(name, toBinary(FileDescriptorProtoSchema, file.proto));
      file.dependencies.forEach(visit);
      for (const svc of file.services) {
        this.#symbols.set(svc.typeName, file);
        for (const m of svc.methods) this.#symbols.set(`${svc.typeName}.${m.name}`, file);
      }
      file.messages.forEach((m) => this.#addMessage(m, file));
      file.enums.forEach((e) => this.#addEnum(e, file));
      for (const ext of file.extensions) {
        this.#symbols.set(ext.typeName, file);
        this.#addExtension(ext.extendee.typeName, file, ext.number);
      }
    };
    files.forEach(visit);
    // Only services of the files asked for are "registered"; imports contribute types, not services.
    for (const f of files) for (const s of f.services) services.push(s.typeName);
    this.services = [...new Set(services)].sort();
  }

  #addMessage(m: DescMessage, file: DescFile): void {
    this.#symbols.set(m.typeName, file);
    m.nestedMessages.forEach((n) => this.#addMessage(n, file));
    m.nestedEnums.forEach((e) => this.#addEnum(e, file));
    for (const ext of m.nestedExtensions) {
      this.#symbols.set(ext.typeName, file);
      this.#addExtension(ext.extendee.typeName, file, ext.number);
    }
  }

  #addEnum(e: DescEnum, file: DescFile): void {
    this.#symbols.set(e.typeName, file);
  }

  #addExtension(extendee: string, file: DescFile, number: number): void {
    const list = this.#extensions.get(extendee) ?? [];
    list.push({ file, number });
    this.#extensions.set(extendee, list);
  }

  /** The file and all its transitive imports, requested file first, as serialized FileDescriptorProtos. */
  closure(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const walk = (f: DescFile): void => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(this.#bytes.get(f.proto.name)!);
      f.dependencies.forEach(walk);
    };
    walk(file);
    return out;
  }

  /** The file with this path (e.g. `google/protobuf/timestamp.proto`). */
  fileByName(name: string): DescFile | undefined {
    return this.#files.get(name);
  }

  /** The file declaring a service, method, message, enum or extension; a leading dot is accepted. */
  fileBySymbol(symbol: string): DescFile | undefined {
    return this.#symbols.get(symbol.replace(/^\./, ''));
  }

  /** Known extensions of a message type ([] if none), or undefined when the type is unknown. */
  extensionsOf(typeName: string): { file: DescFile; number: number }[] | undefined {
    if (!this.#symbols.has(typeName)) return undefined;
    return this.#extensions.get(typeName) ?? [];
  }
}

type Answer = v1.ServerReflectionResponse['messageResponse'];

function notFound(what: string): Answer {
  return { case: 'errorResponse', value: create(v1.ErrorResponseSchema, { errorCode: GRPC_NOT_FOUND, errorMessage: `${what} not found` }) };
}

function files(list: Uint8Array[]): Answer {
  return { case: 'fileDescriptorResponse', value: create(v1.FileDescriptorResponseSchema, { fileDescriptorProto: list }) };
}

/** Answers one v1 reflection request from the index. Unknown names are answered, not thrown. */
export function answer(index: DescriptorIndex, req: v1.ServerReflectionRequest): v1.ServerReflectionResponse {
  const q = req.messageRequest;
  let result: Answer;
  switch (q.case) {
    case 'listServices':
      result = {
        case: 'listServicesResponse',
        value: create(v1.ListServiceResponseSchema, { service: index.services.map((name) => ({ name })) }),
      };
      break;
    case 'fileByFilename': {
      const f = index.fileByName(q.value);
      result = f ? files(index.closure(f)) : notFound(`file ${q.value}`);
      break;
    }
    case 'fileContainingSymbol': {
      const f = index.fileBySymbol(q.value);
      result = f ? files(index.closure(f)) : notFound(`symbol ${q.value}`);
      break;
    }
    case 'fileContainingExtension': {
      const hit = index.extensionsOf(q.value.containingType)?.find((e) => e.number === q.value.extensionNumber);
      result = hit ? files(index.closure(hit.file)) : notFound(`extension ${q.value.containingType}(${q.value.extensionNumber})`);
      break;
    }
    case 'allExtensionNumbersOfType': {
      const exts = index.extensionsOf(q.value);
      result = exts
        ? {
            case: 'allExtensionNumbersResponse',
            value: create(v1.ExtensionNumberResponseSchema, { baseTypeName: q.value, extensionNumber: exts.map((e) => e.number) }),
          }
        : notFound(`type ${q.value}`);
      break;
    }
    default:
      result = {
        case: 'errorResponse',
        value: create(v1.ErrorResponseSchema, { errorCode: GRPC_INVALID_ARGUMENT, errorMessage: 'empty reflection request' }),
      };
  }
  return create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: result });
}

/**
 * Registers grpc.reflection.v1 and v1alpha `ServerReflection` on a Connect router, describing `files`
 * (plus the reflection files and all imports). Bidirectional streaming: needs HTTP/2 (gRPC, or Connect
 * over h2); each request gets one response, in order.
 */
export function registerReflection(router: ConnectRouter, appFiles: readonly DescFile[]): DescriptorIndex {
  const index = new DescriptorIndex([...appFiles, ...REFLECTION_FILES]);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield answer(index, req);
    },
  });
  // v1alpha is wire-identical to v1 (same fields and numbers), so it is answered by re-decoding the bytes
  // rather than by a second copy of the logic; grpcurl and older clients still ask v1alpha first.
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        const asV1 = fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, req));
        yield fromBinary(
          v1alpha.ServerReflectionResponseSchema,
          toBinary(v1.ServerReflectionResponseSchema, answer(index, asV1)),
        );
      }
    },
  });
  return index;
}
