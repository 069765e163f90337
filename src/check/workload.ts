/**
 * The load generator: many concurrent clients doing PUT / GET / HEAD / DELETE / multipart / CopyObject /
 * ListObjectsV2 on a small set of keys under a prefix of their own, so that operations collide, each
 * value unique and self-identifying (value.ts), every operation recorded (history.ts). Then a quiet phase:
 * every key read and the prefix listed once more, after everything else, which is where a lost write
 * or a resurrected delete shows.
 *
 * Keys: `<prefix>k<i>` take every kind of write; `<prefix>c<j>` are the destinations of copies (whose
 * sources are the k keys), so a copy's ETag always names the source value it copied.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { HistoryRecorder, type Op } from './history.js';
import { clientFor, Ops, type Target } from './s3ops.js';
import { minValueSize } from './value.js';

export interface WorkloadOptions {
  /** One or more endpoints of the same deployment: each operation goes to one of them at random. */
  targets: Target[];
  /** Key prefix of this run (default `s3chk-<time>-<random>/`): nothing outside it is touched. */
  prefix?: string;
  clients: number;
  keys: number;
  copyKeys: number;
  durationMs: number;
  /** Per request; a request still running then counts as unknown. */
  opTimeoutMs: number;
  /** Multipart uploads (a 5 MiB first part each) are about 1 % of the operations; off when false. */
  multipart: boolean;
  /** Some PUTs are 256 KiB–1 MiB (beyond the orchestrator's replay window); off when false. */
  large: boolean;
  /** Called every few seconds with a status line. */
  progress?: (line: string) => void;
  /** Ends the load phase early. */
  signal?: AbortSignal;
  /** Random seed for operation choice (default: random). */
  seed?: number;
}

const WEIGHTS: Array<[kind: 'put' | 'get' | 'head' | 'delete' | 'copy' | 'list' | 'mpu', weight: number]> = [
  ['put', 22],
  ['get', 26],
  ['head', 12],
  ['delete', 9],
  ['copy', 8],
  ['list', 6],
  ['mpu', 1],
];

export class Workload {
  readonly rec = new HistoryRecorder();
  readonly prefix: string;
  readonly keys: string[];
  readonly copyKeys: string[];
  private readonly clients: S3Client[];
  private seq = 0;
  private rand: () => number;

  constructor(private readonly opts: WorkloadOptions) {
    if (opts.targets.length === 0) throw new Error('no target');
    this.prefix = opts.prefix ?? `s3chk-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}/`;
    this.keys = Array.from({ length: opts.keys }, (_, i) => `${this.prefix}k${i}`);
    this.copyKeys = Array.from({ length: opts.copyKeys }, (_, i) => `${this.prefix}c${i}`);
    this.clients = opts.targets.map((t) => clientFor(t, opts.clients + 4, opts.opTimeoutMs));
    let s = (opts.seed ?? Math.floor(Math.random() * 2 ** 31)) >>> 0;
    this.rand = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  private ops(client: number): Ops {
    const i = Math.floor(this.rand() * this.clients.length);
    return new Ops(this.rec, this.clients[i]!, this.opts.targets[i]!.bucket, client, this.opts.opTimeoutMs);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private size(write: string, key: string): number {
    const r = this.rand();
    const min = minValueSize(write, key);
    if (r < 0.6 || !this.opts.large) return min + Math.floor(this.rand() * 4096);
    if (r < 0.9) return 4096 + Math.floor(this.rand() * 124 * 1024);
    return 256 * 1024 + Math.floor(this.rand() * 768 * 1024);
  }

  private async one(client: number): Promise<Op> {
    const weights = WEIGHTS.filter(([k]) => k !== 'mpu' || this.opts.multipart);
    let x = this.rand() * weights.reduce((a, [, w]) => a + w, 0);
    const kind = weights.find(([, w]) => (x -= w) < 0)![0];
    const all = [...this.keys, ...this.copyKeys];
    const o = this.ops(client);
    const write = () => `c${client}.${++this.seq}`;
    switch (kind) {
      case 'put': {
        const key = this.pick(this.keys);
        const w = write();
        return o.put(key, w, this.size(w, key));
      }
      case 'mpu':
        return o.multipart(this.pick(this.keys), write(), 1 + Math.floor(this.rand() * 64 * 1024));
      case 'copy':
        return this.copyKeys.length ? o.copy(this.pick(this.keys), this.pick(this.copyKeys), write()) : o.get(this.pick(all));
      case 'delete':
        return o.delete(this.pick(all));
      case 'get':
        return o.get(this.pick(all));
      case 'head':
        return o.head(this.pick(all));
      case 'list':
        return o.list(this.prefix, this.rand() < 0.3 ? 2 : 1000);
    }
  }

  /** Runs the clients until the duration has passed (or the signal fires). */
  async run(): Promise<void> {
    const until = Date.now() + this.opts.durationMs;
    const stopped = () => Date.now() >= until || !!this.opts.signal?.aborted;
    const timer = this.opts.progress ? setInterval(() => this.opts.progress!(this.status()), 5000) : undefined;
    try {
      await Promise.all(
        Array.from({ length: this.opts.clients }, async (_, c) => {
          while (!stopped()) {
            const op = await this.one(c);
            // Nothing listening (an instance restarting): do not spin; the history needs no thousand refusals.
            if (op.error === 'ECONNREFUSED') await new Promise((r) => setTimeout(r, 100 + this.rand() * 200));
          }
        }),
      );
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  /** One status line: operations so far by outcome. */
  status(): string {
    const n = { ok: 0, fail: 0, unknown: 0 };
    for (const o of this.rec.ops) if (!Number.isNaN(o.end)) n[o.outcome]++;
    return `t=${(this.rec.now() / 1000).toFixed(0)}s ops=${this.rec.ops.length} ok=${n.ok} failed=${n.fail} unknown=${n.unknown}`;
  }

  /**
   * The quiet phase: GET and HEAD of every key, then a listing, each retried (up to `attempts` times, a
   * second apart) until it gets an answer. Returns whether every read got one.
   */
  async finalReads(attempts = 30): Promise<boolean> {
    const o = new Ops(this.rec, this.clients[0]!, this.opts.targets[0]!.bucket, -1, this.opts.opTimeoutMs);
    const answered = async (f: () => Promise<Op>) => {
      for (let i = 0; i < attempts; i++) {
        if ((await f()).outcome === 'ok') return true;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return false;
    };
    let all = true;
    for (const k of [...this.keys, ...this.copyKeys]) {
      all = (await answered(() => o.get(k))) && all;
      all = (await answered(() => o.head(k))) && all;
    }
    all = (await answered(() => o.list(this.prefix, 1000))) && all;
    return all;
  }

  /** Deletes every key of the run and aborts its multipart uploads (not part of the history). */
  async cleanup(): Promise<void> {
    const s3 = this.clients[0]!;
    const o = new Ops(new HistoryRecorder(), s3, this.opts.targets[0]!.bucket, -1, this.opts.opTimeoutMs);
    await o.abortUploads(this.prefix).catch(() => 0);
    for (const k of [...this.keys, ...this.copyKeys]) await o.delete(k);
  }

  close(): void {
    for (const c of this.clients) c.destroy();
  }
}
