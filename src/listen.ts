/**
 * Listener pre-flight: checks that a host:port can be bound before anything else starts, and turns a bind
 * failure into a message that says why (address in use, permission, address not on this machine).
 *
 * Why a probe: the uWS build binds with SO_REUSEPORT unless asked otherwise, so a second instance used to
 * start silently beside the first and share its port. The S3 listener now binds exclusively too (see
 * src/s3/uws-adapter.ts), but uWS reports a failed bind without an errno; this probe, with Node's net
 * module (which never sets SO_REUSEPORT), is how the reason is learnt.
 */
import net from 'node:net';

/** A listener that cannot be bound: `key` names the configuration key or flag it came from. */
export class ListenError extends Error {
  readonly code: string;
  constructor(key: string, host: string, port: number, code: string, detail: string) {
    super(`cannot listen on ${formatHostPort(host, port)} (${key}): ${reason(code, port)}${detail ? ` [${detail}]` : ''}`);
    this.name = 'ListenError';
    this.code = code;
  }
}

/** `host:port`, with IPv6 hosts in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function reason(code: string, port: number): string {
  switch (code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use by another process (another s3-orchestrator instance?); stop it or choose another port`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied (ports below 1024 need privileges); choose a port of 1024 or above`;
    case 'EADDRNOTAVAIL':
      return `the address is not one of this machine's addresses; use 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `the host name does not resolve`;
    default:
      return `the bind failed`;
  }
}

/**
 * Binds host:port with Node's net (exclusively) and releases it at once. Resolves when the port is free;
 * rejects with a {@link ListenError} saying why it is not. Port 0 is probed too (the address may be bad).
 */
export function probeListen(key: string, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(new ListenError(key, host, port, err.code ?? 'UNKNOWN', err.code ? '' : err.message));
    });
    srv.listen({ host, port, exclusive: true }, () => {
      srv.close(() => resolve());
    });
  });
}

/** Turns a bind error raised by a listener (`err.code` set by Node) into a {@link ListenError}. */
export function listenError(key: string, host: string, port: number, err: unknown): ListenError {
  if (err instanceof ListenError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new ListenError(key, host, port, code ?? 'UNKNOWN', code ? '' : err instanceof Error ? err.message : String(err));
}
