/**
 * The S3 data plane: the request pipeline ({@link createS3Handler}) served by the uWS adapter.
 */
import { S3Error } from './errors.js';
import { createS3Handler, type S3Deps } from './request.js';
import { startUws } from './uws-adapter.js';

export type { S3Deps } from './request.js';

/** A running S3 server. */
export interface S3Server {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting connections. */
  close(): Promise<void>;
}

/** Starts the S3 server on config.host/config.port (0 = a free port). */
export async function startS3Server(deps: S3Deps): Promise<S3Server> {
  const server = await startUws(createS3Handler(deps), {
    host: deps.config.host,
    port: deps.config.port,
    idleTimeoutMs: deps.config.idleTimeoutMs,
    idleError: () => new S3Error('RequestTimeout'),
  });
  deps.log.info('s3 server listening', { host: deps.config.host, port: server.port });
  return server;
}
