import type { Logger } from '../log.js';
import { isDbBusy, isDbUnavailable, type Db, type Queryable } from '../meta/db.js';
import { listen, notifySql, type Listener } from '../meta/notify.js';
import { run } from '../meta/run.js';

/**
 * The change bus: how a change committed by one instance reaches every instance's caches (backends,
 * credentials, buckets…) within a second. A writer calls {@link ChangeBus.notify} inside the transaction
 * of its change (a pg_notify, delivered at commit, never for a rollback); every instance LISTENs on one
 * dedicated session (meta/notify.ts) and runs the subscribers of the topic.
 *
 * Notifications can be lost (the listening session was down, the instance was starting), so a subscriber
 * is a *refresh* — it re-reads what it caches from the database — and the bus also runs every subscriber
 * right after (re)connecting and every `fallbackMs` (default 5 s) whatever happened: a missed notification
 * costs at most one fallback period, never a stale cache for good.
 *
 * Calls of one subscriber never overlap: a trigger that arrives while it runs makes it run once more when
 * it finishes (coalesced, with `detail` undefined: "refresh everything"). A subscriber that throws is
 * logged and retried at the next trigger; it never breaks the bus.
 */

/** Well-known topics; any string is accepted. */
export type ChangeTopic = 'backends' | 'credentials' | 'buckets' | (string & {});

/**
 * Refreshes a cache. `detail` is the writer's hint (e.g. the changed entry's name) for a notification;
 * undefined for a periodic, reconnect or coalesced run, which must refresh everything.
 */
export type ChangeHandler = (detail: string | undefined) => void | Promise<void>;

export interface ChangeBusOptions {
  log?: Logger;
  /** Period of the fallback refresh of every subscriber, ms (default 5000; 0 disables it). */
  fallbackMs?: number;
}

interface Subscriber {
  topic: string;
  fn: ChangeHandler;
  running: boolean;
  /** A trigger arrived while running: run again afterwards; `pendingDetail` null means "everything". */
  again: boolean;
  pendingDetail: string | undefined | null;
  active: boolean;
}

export class ChangeBus {
  readonly #db: Db;
  readonly #log: Logger | undefined;
  readonly #fallbackMs: number;
  readonly #subs = new Set<Subscriber>();
  #listener: Listener | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(db: Db, opts: ChangeBusOptions = {}) {
    this.#db = db;
    this.#log = opts.log;
    this.#fallbackMs = opts.fallbackMs ?? 5000;
  }

  /**
   * Announces a change of `topic` in the caller's transaction `q` (delivered to every instance when it
   * commits). With the Db itself instead of a transaction it is sent at once.
   */
  async notify(q: Queryable, topic: ChangeTopic, detail?: string): Promise<void> {
    if (topic.includes('\n')) throw new Error(`change topic ${JSON.stringify(topic)} contains a newline`);
    await run(q, notifySql(detail === undefined ? topic : `${topic}\n${detail}`));
  }

  /**
   * Runs `fn` for every notification of `topic`, after every (re)connection and every fallback period.
   * Returns the unsubscribe function.
   */
  subscribe(topic: ChangeTopic, fn: ChangeHandler): () => void {
    const sub: Subscriber = { topic, fn, running: false, again: false, pendingDetail: null, active: true };
    this.#subs.add(sub);
    return () => {
      sub.active = false;
      this.#subs.delete(sub);
    };
  }

  /** Starts listening and the fallback timer (idempotent). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#listener = listen(
      this.#db,
      {
        onNotify: (payload) => this.#deliver(payload),
        onListening: () => this.refreshAll(),
      },
      this.#log ? { log: this.#log } : {},
    );
    if (!this.#listener) this.#log?.warn('change bus has no dedicated database session: caches refresh only periodically');
    if (this.#fallbackMs > 0) {
      this.#timer = setInterval(() => {
        void this.#listener?.check();
        this.refreshAll();
      }, this.#fallbackMs);
      this.#timer.unref();
    }
  }

  /** Stops listening and the timer (idempotent). Subscribers already running finish on their own. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const l = this.#listener;
    this.#listener = undefined;
    await l?.close();
  }

  /** Whether the LISTEN session is up (false: only the fallback refresh keeps caches current). */
  get listening(): boolean {
    return this.#listener?.listening ?? false;
  }

  /** Runs every subscriber now (a full refresh). */
  refreshAll(): void {
    for (const s of this.#subs) this.#trigger(s, undefined);
  }

  /** Runs the subscribers of `topic` now, as a notification with `detail` would. */
  refresh(topic: ChangeTopic, detail?: string): void {
    for (const s of this.#subs) if (s.topic === topic) this.#trigger(s, detail);
  }

  #deliver(payload: string): void {
    const nl = payload.indexOf('\n');
    const topic = nl < 0 ? payload : payload.slice(0, nl);
    const detail = nl < 0 ? undefined : payload.slice(nl + 1);
    this.refresh(topic, detail);
  }

  #trigger(s: Subscriber, detail: string | undefined): void {
    if (!s.active) return;
    if (s.running) {
      // A second trigger while one is pending folds into a full refresh.
      s.pendingDetail = s.again ? undefined : detail;
      s.again = true;
      return;
    }
    s.running = true;
    void (async () => {
      let d: string | undefined = detail;
      for (;;) {
        try {
          await s.fn(d);
        } catch (err) {
          // While the database is down every refresh fails; the outage itself is logged once elsewhere.
          const level = isDbUnavailable(err) || isDbBusy(err) ? 'debug' : 'warn';
          this.#log?.[level]('change subscriber failed; it runs again at the next change or refresh', { topic: s.topic, err });
        }
        if (!s.again || !s.active) break;
        s.again = false;
        d = s.pendingDetail ?? undefined;
        s.pendingDetail = null;
      }
      s.running = false;
    })();
  }
}
