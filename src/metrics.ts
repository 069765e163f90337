import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * All Prometheus metrics, on one Registry passed around (never the global default). Labels are bounded:
 * operation names, backend names from config and status classes, never bucket names or keys.
 */
export interface Metrics {
  readonly registry: Registry;
  /** S3 requests by operation (router op name) and HTTP status code. */
  readonly s3Requests: Counter<'op' | 'status'>;
  /** S3 request latency until the response is fully sent, seconds. */
  readonly s3Duration: Histogram<'op'>;
  /** Body bytes received from S3 clients, by operation. */
  readonly bytesIn: Counter<'op'>;
  /** Body bytes sent to S3 clients, by operation. */
  readonly bytesOut: Counter<'op'>;
  /** Backend call latency by backend, call (put/get/head/delete/copy/list) and outcome (ok/error). */
  readonly backendDuration: Histogram<'backend' | 'call' | 'outcome'>;
  /** Calls this instance made to each backend's provider, by S3 request class (A, B; core/usage.ts). */
  readonly backendRequests: Counter<'backend' | 'class'>;
  /** Bytes this instance streamed to (`in`) and from (`out`) each backend. */
  readonly backendBytes: Counter<'backend' | 'direction'>;
  /** Tasks run by this instance, by kind and outcome (done/retry/dead/lease_lost). */
  readonly tasks: Counter<'kind' | 'outcome'>;
  /** Tasks in the queue (all instances) by kind and state (queued/active/dead), read at every scrape. */
  readonly taskQueue: Gauge<'kind' | 'state'>;
  /** Live health of each backend as seen by this instance: 1 for its current state, 0 for the others. */
  readonly backendHealth: Gauge<'backend' | 'state'>;
  /** Sets where the backend-health and breaker-state gauges read their values when /metrics is scraped. */
  setBackendHealth(source: () => Array<{ name: string; state: string; breaker?: string }>): void;
  /** Each backend's circuit breaker as this instance sees it: 0 closed, 1 half-open, 2 open (read at every scrape). */
  readonly backendBreakerState: Gauge<'backend'>;
  /** Transitions of each backend's circuit breaker, by the state entered (closed, half_open, open). */
  readonly backendBreakerTransitions: Counter<'backend' | 'to'>;
  /** Sets where the task-queue gauge reads its values when /metrics is scraped. */
  setTaskCounts(source: () => Promise<Array<{ kind: string; state: string; n: number }>>): void;
  /** Bytes stored per backend, read from the database at every scrape (see {@link Metrics.setBackendUsage}). */
  readonly backendUsedBytes: Gauge<'backend'>;
  /** Sets where the backend-usage gauge reads its values when /metrics is scraped. */
  setBackendUsage(source: () => Promise<Array<{ backend: string; usedBytes: number }>>): void;
  /** The metadata database breaker of this instance: 1 for its current state (closed, open), 0 for the other. */
  readonly dbBreakerState: Gauge<'state'>;
  /** Breaker transitions, by the state entered. */
  readonly dbBreakerTransitions: Counter<'to'>;
  /** GET/HEAD answered from the backends alone while the database was unavailable, by operation and outcome. */
  readonly degradedReads: Counter<'op' | 'outcome'>;
  /** Copies made by copy-version tasks (repair adds, moves), by kind (add, move) and outcome (published, dropped, failed). */
  readonly repairCopies: Counter<'kind' | 'outcome'>;
  /** Bytes streamed by copy-version tasks. */
  readonly repairBytes: Counter;
  /** Copies retired by repair (surplus, bad, move), by reason. */
  readonly repairRetired: Counter<'reason'>;
  /** Copies scrub verified, by pass (cheap, deep) and outcome (ok, bad, error). */
  readonly scrubChecked: Counter<'pass' | 'outcome'>;
  /** Bytes the deep scrub re-read. */
  readonly scrubBytes: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  let usage: (() => Promise<Array<{ backend: string; usedBytes: number }>>) | undefined;
  let health: (() => Array<{ name: string; state: string; breaker?: string }>) | undefined;
  let taskCounts: (() => Promise<Array<{ kind: string; state: string; n: number }>>) | undefined;
  collectDefaultMetrics({ register: registry, prefix: 's3o_' });
  return {
    registry,
    s3Requests: new Counter({
      name: 's3o_s3_requests_total',
      help: 'S3 requests by operation and HTTP status.',
      labelNames: ['op', 'status'] as const,
      registers: [registry],
    }),
    s3Duration: new Histogram({
      name: 's3o_s3_request_duration_seconds',
      help: 'S3 request latency until the response is sent.',
      labelNames: ['op'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    bytesIn: new Counter({
      name: 's3o_s3_bytes_in_total',
      help: 'Request body bytes received from S3 clients.',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
    bytesOut: new Counter({
      name: 's3o_s3_bytes_out_total',
      help: 'Response body bytes sent to S3 clients.',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
    backendDuration: new Histogram({
      name: 's3o_backend_call_duration_seconds',
      help: 'Backend call latency (until the call resolves; streaming bodies are not included).',
      labelNames: ['backend', 'call', 'outcome'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    backendRequests: new Counter({
      name: 's3o_backend_requests_total',
      help: 'Calls made to each backend provider by this instance, by S3 request class (A: put, copy, list, multipart; B: get, head, delete, check).',
      labelNames: ['backend', 'class'] as const,
      registers: [registry],
    }),
    backendBytes: new Counter({
      name: 's3o_backend_bytes_total',
      help: 'Bytes streamed to (direction="in") and from (direction="out") each backend by this instance.',
      labelNames: ['backend', 'direction'] as const,
      registers: [registry],
    }),
    tasks: new Counter({
      name: 's3o_tasks_total',
      help: 'Tasks run by this instance, by kind and outcome (done, retry, dead, lease_lost).',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    taskQueue: new Gauge({
      name: 's3o_task_queue',
      help: 'Tasks in the queue by kind and state (queued, active, dead), all instances.',
      labelNames: ['kind', 'state'] as const,
      registers: [registry],
      async collect() {
        const rows = await taskCounts?.().catch(() => undefined);
        if (!rows) return;
        this.reset();
        for (const kind of ['delete-copy']) for (const state of ['queued', 'active', 'dead']) this.set({ kind, state }, 0);
        for (const r of rows) this.set({ kind: r.kind, state: r.state }, r.n);
      },
    }),
    backendUsedBytes: new Gauge({
      name: 's3o_backend_used_bytes',
      help: 'Bytes stored on each backend (committed plus pending deletion).',
      labelNames: ['backend'] as const,
      registers: [registry],
      async collect() {
        // A database that cannot be read leaves the last values; /readyz reports the outage.
        const rows = await usage?.().catch(() => undefined);
        for (const r of rows ?? []) this.set({ backend: r.backend }, r.usedBytes);
      },
    }),
    setBackendUsage: (source) => {
      usage = source;
    },
    backendHealth: new Gauge({
      name: 's3o_backend_health',
      help: 'Live health of each backend as this instance sees it: 1 for its state (healthy, degraded, unavailable), 0 for the others.',
      labelNames: ['backend', 'state'] as const,
      registers: [registry],
      collect() {
        // Reset first: a backend removed at runtime must not keep its last values.
        this.reset();
        for (const h of health?.() ?? []) {
          for (const state of ['healthy', 'degraded', 'unavailable']) this.set({ backend: h.name, state }, h.state === state ? 1 : 0);
        }
      },
    }),
    setBackendHealth: (source) => {
      health = source;
    },
    backendBreakerState: new Gauge({
      name: 's3o_backend_breaker_state',
      help: "Each backend's circuit breaker as this instance sees it: 0 closed, 1 half-open (trial calls), 2 open (no new writes, read last).",
      labelNames: ['backend'] as const,
      registers: [registry],
      collect() {
        // Reset first: a backend removed at runtime must not keep its last value.
        this.reset();
        const code: Record<string, number> = { closed: 0, half_open: 1, open: 2 };
        for (const h of health?.() ?? []) if (h.breaker !== undefined) this.set({ backend: h.name }, code[h.breaker] ?? 0);
      },
    }),
    backendBreakerTransitions: new Counter({
      name: 's3o_backend_breaker_transitions_total',
      help: "Transitions of each backend's circuit breaker, by the state entered (closed, half_open, open).",
      labelNames: ['backend', 'to'] as const,
      registers: [registry],
    }),
    setTaskCounts: (source) => {
      taskCounts = source;
    },
    dbBreakerState: (() => {
      const g = new Gauge({
        name: 's3o_db_breaker_state',
        help: 'Metadata database breaker of this instance: 1 for its current state (closed, open), 0 for the other.',
        labelNames: ['state'] as const,
        registers: [registry],
      });
      g.set({ state: 'closed' }, 1);
      g.set({ state: 'open' }, 0);
      return g;
    })(),
    dbBreakerTransitions: new Counter({
      name: 's3o_db_breaker_transitions_total',
      help: 'Metadata database breaker transitions, by the state entered (open, closed).',
      labelNames: ['to'] as const,
      registers: [registry],
    }),
    degradedReads: new Counter({
      name: 's3o_degraded_reads_total',
      help: 'GET/HEAD answered from the backends alone while the metadata database was unavailable, by operation and outcome (served, not_found, unavailable).',
      labelNames: ['op', 'outcome'] as const,
      registers: [registry],
    }),
    repairCopies: new Counter({
      name: 's3o_repair_copies_total',
      help: 'Copies made by copy-version tasks (repair, moves), by kind (add, move) and outcome (published, dropped, failed).',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    repairBytes: new Counter({
      name: 's3o_repair_bytes_total',
      help: 'Bytes streamed from one backend to another by copy-version tasks.',
      registers: [registry],
    }),
    repairRetired: new Counter({
      name: 's3o_repair_retired_total',
      help: 'Copies retired by repair and moves, by reason (surplus, bad, move).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    scrubChecked: new Counter({
      name: 's3o_scrub_checked_total',
      help: 'Copies verified by scrub, by pass (cheap: HEAD and size; deep: bytes and ETag) and outcome (ok, bad, error).',
      labelNames: ['pass', 'outcome'] as const,
      registers: [registry],
    }),
    scrubBytes: new Counter({
      name: 's3o_scrub_bytes_total',
      help: 'Bytes re-read by the deep scrub.',
      registers: [registry],
    }),
  };
}
