import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { AdminService, file_s3o_admin_v1_admin } from '../../gen/s3o/admin/v1/admin_pb.js';
import { BackendService, file_s3o_admin_v1_backends } from '../../gen/s3o/admin/v1/backends_pb.js';
import { file_s3o_admin_v1_jobs, JobService } from '../../gen/s3o/admin/v1/jobs_pb.js';
import { listenError } from '../listen.js';
import { bearerAuth } from './auth.js';
import { BackendServiceImpl } from './backends-service.js';
import { BucketService, file_s3o_admin_v1_buckets } from '../../gen/s3o/admin/v1/buckets_pb.js';
import { CredentialService, file_s3o_admin_v1_credentials } from '../../gen/s3o/admin/v1/credentials_pb.js';
import { BucketServiceImpl } from './buckets-service.js';
import { CredentialServiceImpl } from './credentials-service.js';
import type { AdminDeps } from './deps.js';
import { registerReflection } from './reflection.js';
import { JobServiceImpl } from './jobs-service.js';
import { file_s3o_admin_v1_usage, UsageService } from '../../gen/s3o/admin/v1/usage_pb.js';
import { UsageServiceImpl } from './usage-service.js';
import { AdminServiceImpl } from './service.js';

/** Where the admin server listens. Port 0 picks a free port. */
export interface AdminListenOptions {
  host: string;
  port: number;
}

/** A running admin server. */
export interface AdminServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops listening and destroys open connections. Idempotent. */
  close(): Promise<void>;
}

/** The HTTP/2 client connection preface (RFC 9113 §3.4); h2c prior-knowledge clients open with it. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type NodeHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * GET /healthz, /readyz and /metrics in front of the Connect handler. They are plain HTTP and outside
 * the RPC interceptors, so probes and scrapers need no token (they expose no secrets).
 */
function withProbes(deps: AdminDeps, rpc: NodeHandler): NodeHandler {
  const send = (res: Parameters<NodeHandler>[1], status: number, type: string, body: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return rpc(req, res);
    if (path === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    if (path === '/readyz') {
      deps.ready().then(
        (r) => {
          const { ready, reasons, backends } = typeof r === 'boolean' ? { ready: r, reasons: r ? [] : ['metadata database unreachable'], backends: [] } : r;
          const lines = [ready ? 'ready' : `not ready: ${reasons.join('; ')}`, ...backends.map((b) => `backend ${b}`)];
          send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', lines.join('\n') + '\n');
        },
        (err: unknown) => {
          deps.log.warn('readiness check failed', { err });
          send(res, 503, 'text/plain; charset=utf-8', 'not ready: readiness check failed\n');
        },
      );
      return;
    }
    if (path === '/metrics') {
      deps.registry.metrics().then(
        (text) => send(res, 200, deps.registry.contentType, text),
        (err: unknown) => {
          deps.log.error('metrics collection failed', { err });
          send(res, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n');
        },
      );
      return;
    }
    return rpc(req, res);
  };
}

/**
 * Reads the first bytes of a connection and decides its protocol: a connection that opens with the
 * HTTP/2 preface goes to `onH2`, anything else to `onH1`. The bytes read are pushed back before handing
 * over, so the chosen server parses the connection from its first byte.
 */
function sniff(socket: net.Socket, onH1: (s: net.Socket) => void, onH2: (s: net.Socket) => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isPrefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    // Undecided while the bytes so far are a strict prefix of the preface (a client may trickle them).
    if (isPrefix && n < H2_PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(seen);
    (isPrefix ? onH2 : onH1)(socket);
  };
  socket.on('data', onData);
}

/**
 * Starts the admin plane on one port: Connect (HTTP/1.1 and h2c), gRPC (h2c with prior knowledge) and
 * gRPC-Web, plus grpc.reflection v1/v1alpha, /healthz, /readyz and /metrics on both HTTP versions.
 * A net.Server sniffs each connection and hands it to an http1 or an http2 server sharing one handler.
 */
export async function startAdminServer(deps: AdminDeps, opts: AdminListenOptions): Promise<AdminServer> {
  const interceptors: Interceptor[] = deps.token !== undefined ? [bearerAuth(deps.token)] : [];
  const routes = (router: ConnectRouter) => {
    // A worker-mode instance serves only the probes and metrics on this port.
    if (deps.rpcs === false) return;
    router.service(AdminService, new AdminServiceImpl(deps));
    if (deps.jobs) router.service(JobService, new JobServiceImpl(deps.jobs, deps.log));
    if (deps.backendControl) router.service(BackendService, new BackendServiceImpl(deps.backendControl, deps.log));
    if (deps.credentials) router.service(CredentialService, new CredentialServiceImpl(deps.credentials, deps.log));
    if (deps.buckets) router.service(BucketService, new BucketServiceImpl(deps.buckets, deps.log));
    if (deps.usage) router.service(UsageService, new UsageServiceImpl(deps.usage, deps.log));
    registerReflection(router, [
      file_s3o_admin_v1_admin,
      ...(deps.jobs ? [file_s3o_admin_v1_jobs] : []),
      ...(deps.backendControl ? [file_s3o_admin_v1_backends] : []),
      ...(deps.credentials ? [file_s3o_admin_v1_credentials] : []),
      ...(deps.buckets ? [file_s3o_admin_v1_buckets] : []),
      ...(deps.usage ? [file_s3o_admin_v1_usage] : []),
    ]);
  };
  const handler = withProbes(deps, connectNodeAdapter({ routes, interceptors }) as NodeHandler);

  const h1 = http.createServer(handler as http.RequestListener);
  const h2 = http2.createServer(handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset connection must not become an uncaught 'error' event before a server owns the socket.
    socket.on('error', () => socket.destroy());
    sniff(
      socket,
      (s) => {
        h1.emit('connection', s);
        // http.Server only reads new bytes; the sniffed bytes sit in the paused stream until resumed.
        s.resume();
      },
      (s) => h2.emit('connection', s),
    );
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenError('server.admin.listen', opts.host, opts.port, err));
    front.once('error', onError);
    // exclusive: never share the port with another process, whatever the platform's defaults.
    front.listen({ port: opts.port, host: opts.host, exclusive: true }, () => {
      front.off('error', onError);
      resolve();
    });
  });
  front.on('error', (err) => deps.log.error('admin listener error', { err }));
  const port = (front.address() as net.AddressInfo).port;
  deps.log.info('admin server listening', { host: opts.host, port, auth: deps.token !== undefined });

  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        front.close(() => resolve());
        h1.close();
        h2.close();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
