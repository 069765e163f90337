/**
 * The history the consistency checker reads: every operation a client invoked, when (a monotonic clock,
 * milliseconds from the start of the run) and how it ended.
 *
 * Outcomes:
 * - `ok`: the service acknowledged it.
 * - `fail`: a definite "not applied": an S3 error answer in the 4xx range (PreconditionFailed, NoSuchKey,
 *   InvalidPart, …) or a connection that was refused (no byte reached the server).
 * - `unknown`: a timeout, a reset connection or a 5xx answer: the operation may or may not have taken effect,
 *   possibly after the client gave up, so its effect is bounded by its start only.
 *
 * Writes (`put`, `mpu`, `copy`) carry a write id, stored with the object as user metadata (`x-amz-meta-chk`).
 * PUT and multipart values also carry it in their bytes (value.ts); a copy's bytes are its source's value,
 * so a read of a copied object sees the copy's write id in the metadata and the source write's id in the
 * body.
 */

export type Outcome = 'ok' | 'fail' | 'unknown';
export type OpKind = 'put' | 'mpu' | 'copy' | 'delete' | 'get' | 'head' | 'list';

/** What a successful GET or HEAD saw. */
export interface Seen {
  /** The write id in the object's metadata; null for 404; '' when the object carries none. */
  write: string | null;
  /** GET: the write id the body names (its value's origin), when the body verified. */
  origin?: string;
  /** GET: why the body cannot be trusted (short, spliced, unparseable…). */
  bodyError?: string;
  /** GET: the key the body names. */
  bodyKey?: string;
  etag?: string;
  size?: number;
}

/** One entry of a listing. */
export interface Listed {
  key: string;
  etag: string;
  size: number;
}

export interface Op {
  /** Position in the history (assigned by the recorder). */
  id: number;
  /** The client (worker) that ran it. */
  client: number;
  kind: OpKind;
  /** The object key; for `list`, the prefix. */
  key: string;
  start: number;
  end: number;
  outcome: Outcome;
  /** Error code or message when not ok. */
  error?: string;
  /** put / mpu / copy: the write id. */
  write?: string;
  /** put / mpu: the value's size and the ETags an object holding it may show. */
  size?: number;
  etags?: string[];
  /** copy: the source key, and the ETag the service answered (ok only). */
  source?: string;
  etag?: string;
  /** get / head (ok): the observation. */
  seen?: Seen;
  /** list (ok): the whole listing under the prefix (all pages). */
  listed?: Listed[];
}

/** Records operations as they run. */
export class HistoryRecorder {
  readonly ops: Op[] = [];
  private readonly t0 = performance.now();

  /** Milliseconds since the recorder was made (monotonic). */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  /** Starts an operation; complete it with {@link finish}. */
  begin(client: number, kind: OpKind, key: string, extra: Partial<Op> = {}): Op {
    const op: Op = { id: this.ops.length, client, kind, key, start: this.now(), end: Number.NaN, outcome: 'unknown', ...extra };
    this.ops.push(op);
    return op;
  }

  finish(op: Op, outcome: Outcome, extra: Partial<Op> = {}): Op {
    Object.assign(op, extra);
    op.outcome = outcome;
    op.end = this.now();
    return op;
  }

  /** Operations still running (no end) become `unknown` ending now (a run cut short). */
  closeOpen(): void {
    for (const op of this.ops) if (Number.isNaN(op.end)) this.finish(op, 'unknown', { error: 'still running at the end of the run' });
  }
}

/** One JSON object per line, in id order. */
export function historyToJsonl(ops: readonly Op[]): string {
  return ops.map((o) => JSON.stringify(o)).join('\n') + (ops.length ? '\n' : '');
}

export function historyFromJsonl(text: string): Op[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      const o = JSON.parse(l) as Op;
      if (typeof o.kind !== 'string' || typeof o.start !== 'number') throw new Error(`history line ${i + 1}: not an operation`);
      return o;
    });
}

/** One line per operation, for anomaly reports: `#12 c3 put k1 [10.5, 12.0] ok w=c3-7`. */
export function describeOp(o: Op): string {
  const t = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '∞');
  const parts = [`#${o.id}`, `c${o.client}`, o.kind, o.source ? `${o.source}→${o.key}` : o.key, `[${t(o.start)}, ${t(o.end)}]`, o.outcome];
  if (o.write) parts.push(`w=${o.write}`);
  if (o.error) parts.push(`(${o.error})`);
  if (o.seen) {
    const s = o.seen;
    if (s.write === null) parts.push('→ 404');
    else {
      parts.push(`→ ${s.write === '' ? '(no write id)' : s.write}`);
      if (s.origin && s.origin !== s.write) parts.push(`body=${s.origin}`);
      if (s.bodyError) parts.push(`BODY: ${s.bodyError}`);
    }
  }
  if (o.kind === 'copy' && o.etag) parts.push(`etag=${o.etag}`);
  if (o.listed) parts.push(`→ [${o.listed.map((l) => l.key).join(' ')}]`);
  return parts.join(' ');
}
