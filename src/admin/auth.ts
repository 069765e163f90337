import { createHash, timingSafeEqual } from 'node:crypto';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';

/**
 * Services reachable without the token. Reflection only describes the schema, which is public (proto/ in
 * the repository) and carries no instance data; `buf curl` does not send `-H` headers on its reflection
 * calls unless told to (`--reflect-header`), so guarding it would break every ad-hoc call for no gain.
 */
const OPEN_SERVICE_PREFIXES = ['grpc.reflection.'];

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * A Connect interceptor requiring `authorization: Bearer <token>` on every RPC except reflection.
 * Comparison is on SHA-256 digests with timingSafeEqual, so neither the content nor the length of the
 * token leaks through timing. Failures are Unauthenticated; the message says missing vs. wrong, never why.
 */
export function bearerAuth(token: string): Interceptor {
  if (token === '') throw new Error('admin token must not be empty');
  const expected = digest(token);
  return (next) => async (req) => {
    if (OPEN_SERVICE_PREFIXES.some((p) => req.service.typeName.startsWith(p))) return next(req);
    const header = req.header.get('authorization');
    const m = header === null ? null : /^Bearer +(.*\S)\s*$/i.exec(header);
    if (m === null) {
      throw new ConnectError('missing bearer token', Code.Unauthenticated);
    }
    if (!timingSafeEqual(digest(m[1]!), expected)) {
      throw new ConnectError('invalid bearer token', Code.Unauthenticated);
    }
    return next(req);
  };
}
