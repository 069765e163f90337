/**
 * Hand-made histories for the checker's tests: values have synthetic ETags (`e-<write id>`) and size 100
 * unless given, and reads see exactly what the arguments say.
 */
import type { Listed, Op, Outcome, Seen } from '../../../src/check/history.js';

export class H {
  readonly ops: Op[] = [];
  private add(o: Omit<Op, 'id' | 'client'> & { client?: number }): Op {
    const op: Op = { client: 0, ...o, id: this.ops.length };
    this.ops.push(op);
    return op;
  }
  put(key: string, write: string, start: number, end: number, outcome: Outcome = 'ok', kind: 'put' | 'mpu' = 'put'): Op {
    return this.add({ kind, key, write, start, end, outcome, size: 100, etags: [`e-${write}`] });
  }
  copy(source: string, key: string, write: string, start: number, end: number, outcome: Outcome = 'ok', copiedFrom?: string, error?: string): Op {
    return this.add({ kind: 'copy', key, source, write, start, end, outcome, ...(copiedFrom ? { etag: `e-${copiedFrom}` } : {}), ...(error ? { error } : {}) });
  }
  del(key: string, start: number, end: number, outcome: Outcome = 'ok'): Op {
    return this.add({ kind: 'delete', key, start, end, outcome });
  }
  /** A GET that saw `write` (null: 404); the body is that write's value (or `origin`, for copies). */
  get(key: string, write: string | null, start: number, end: number, seen: Partial<Seen> = {}): Op {
    const origin = seen.origin ?? write ?? undefined;
    const s: Seen =
      write === null ? { write: null } : { write, ...(origin ? { origin, bodyKey: key, etag: `e-${origin}`, size: 100 } : {}), ...seen };
    return this.add({ kind: 'get', key, start, end, outcome: 'ok', seen: s });
  }
  head(key: string, write: string | null, start: number, end: number, seen: Partial<Seen> = {}): Op {
    const s: Seen = write === null ? { write: null } : { write, etag: `e-${seen.origin ?? write}`, size: 100, ...seen };
    return this.add({ kind: 'head', key, start, end, outcome: 'ok', seen: s });
  }
  failedRead(key: string, start: number, end: number): Op {
    return this.add({ kind: 'get', key, start, end, outcome: 'unknown', error: 'timeout' });
  }
  /** A listing under `prefix` showing `keys` (with the ETag of the write named after `=`: `k1=w1`). */
  list(prefix: string, entries: string[], start: number, end: number): Op {
    const listed: Listed[] = entries.map((e) => {
      const [key, w] = e.split('=');
      return { key: key!, etag: `e-${w ?? '?'}`, size: 100 };
    });
    return this.add({ kind: 'list', key: prefix, start, end, outcome: 'ok', listed });
  }
}
