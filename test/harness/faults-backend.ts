/**
 * A fault-injection seam over a real Backend, for tests only:
 *
 *   const f = faultyBackend(backend);
 *   const gate = f.block('put');          // the next put waits until gate.release() (or gate.fail(err))
 *   await gate.reached;                    // … resolves once a call is parked there
 *   f.failNext('delete', () => new BackendError(...));   // the next delete throws
 *   f.slow('get', 200);                    // every get waits 200 ms first
 *   f.reset();
 *
 * A blocked call holds its arguments (the body stream of a put stays unread: backpressure reaches the
 * client as it would with a stalled provider). Calls are counted per method in `calls`.
 */
import { BackendError, type Backend } from '../../src/backends/backend.js';

type Method = Exclude<keyof Backend, 'name' | 'type'>;

export interface Gate {
  /** Resolves when a call has reached the gate and is waiting. */
  reached: Promise<void>;
  /** Lets the waiting call (and later ones) proceed to the real backend. */
  release(): void;
  /** Makes the waiting call fail with `err`. */
  fail(err: Error): void;
}

export interface FaultyBackend extends Backend {
  block(method: Method): Gate;
  failNext(method: Method, error?: () => Error, times?: number): void;
  slow(method: Method, ms: number): void;
  reset(): void;
  readonly calls: Record<string, number>;
  /** The real backend underneath (bypasses every fault). */
  readonly inner: Backend;
}

export function faultyBackend(inner: Backend): FaultyBackend {
  const gates = new Map<Method, { wait: Promise<void>; arrived: () => void }>();
  const failures = new Map<Method, { error: () => Error; left: number }>();
  const delays = new Map<Method, number>();
  const calls: Record<string, number> = {};

  const before = async (m: Method): Promise<void> => {
    calls[m] = (calls[m] ?? 0) + 1;
    const f = failures.get(m);
    if (f) {
      if (--f.left <= 0) failures.delete(m);
      throw f.error();
    }
    const d = delays.get(m);
    if (d) await new Promise((r) => setTimeout(r, d));
    const g = gates.get(m);
    if (g) {
      g.arrived();
      await g.wait;
    }
  };
  const wrap =
    <A extends unknown[], R>(m: Method, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      await before(m);
      return fn(...a);
    };

  const b = inner;
  return {
    name: b.name,
    type: b.type,
    put: wrap('put', b.put.bind(b)),
    get: wrap('get', b.get.bind(b)),
    head: wrap('head', b.head.bind(b)),
    delete: wrap('delete', b.delete.bind(b)),
    copy: wrap('copy', b.copy.bind(b)),
    list: wrap('list', b.list.bind(b)),
    check: wrap('check', b.check.bind(b)),
    close: () => b.close(),
    createMultipart: wrap('createMultipart', b.createMultipart.bind(b)),
    uploadPart: wrap('uploadPart', b.uploadPart.bind(b)),
    uploadPartCopy: wrap('uploadPartCopy', b.uploadPartCopy.bind(b)),
    completeMultipart: wrap('completeMultipart', b.completeMultipart.bind(b)),
    abortMultipart: wrap('abortMultipart', b.abortMultipart.bind(b)),
    block(method) {
      let arrived!: () => void;
      const reached = new Promise<void>((r) => (arrived = r));
      let release!: () => void;
      let fail!: (e: Error) => void;
      const wait = new Promise<void>((res, rej) => {
        release = res;
        fail = rej;
      });
      wait.catch(() => {});
      gates.set(method, { wait, arrived });
      return {
        reached,
        release: () => {
          gates.delete(method);
          release();
        },
        fail: (e) => {
          gates.delete(method);
          fail(e);
        },
      };
    },
    failNext(method, error = () => new BackendError(inner.name, 'Unavailable', `injected failure of ${method}`), times = 1) {
      failures.set(method, { error, left: times });
    },
    slow(method, ms) {
      delays.set(method, ms);
    },
    reset() {
      failures.clear();
      delays.clear();
      for (const [m] of gates) gates.delete(m);
    },
    calls,
    inner,
  };
}
