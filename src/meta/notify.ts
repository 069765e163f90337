import type pg from 'pg';
import type { Logger } from '../log.js';
import type { Db, Sql } from './db.js';

/**
 * LISTEN/NOTIFY for the change bus (core/changes.ts). One channel per orchestrator schema: NOTIFY channels
 * are database-wide, and several independent orchestrators (tests, tenants) may share one database under
 * different schemas, so the channel is derived from the schema name in SQL on both sides
 * (`s3o_` + md5(current_schema()), always a valid 36-byte identifier). The same code runs on the embedded
 * server and on an external PostgreSQL: both are real PostgreSQL.
 */

/** SQL expression of this schema's channel name. */
const CHANNEL = `'s3o_' || md5(current_schema())`;

/**
 * Sends `payload` on this schema's channel. Inside a transaction the notification is delivered when (and
 * only if) the transaction commits, so listeners never see a change that was rolled back.
 */
export function notifySql(payload: string): Sql {
  return { text: `SELECT pg_notify(${CHANNEL}, $1)`, values: [payload] };
}

/** What a listener reports. */
export interface ListenHandlers {
  /** A notification's payload. */
  onNotify(payload: string): void;
  /**
   * The session is (again) listening: called after the first connection and after every reconnection.
   * Notifications sent while it was down are lost, so the caller refreshes everything here.
   */
  onListening(): void;
}

export interface ListenOptions {
  log?: Logger;
  /** First wait before reconnecting, ms (doubles up to maxRetryMs). Default 250. */
  retryMs?: number;
  /** Longest wait between reconnection attempts, ms. Default 5000. */
  maxRetryMs?: number;
}

/** A running LISTEN session; close() ends it for good. */
export interface Listener {
  /** Whether the session is currently connected and listening. */
  readonly listening: boolean;
  /**
   * Checks the session with a round trip (a connection silently cut by the network would otherwise look
   * alive until TCP keepalive notices); a session that does not answer within `timeoutMs` is replaced.
   */
  check(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps one dedicated connection LISTENing on this schema's channel, reconnecting with backoff after any
 * failure (server restart, network loss, an idle connection killed). Returns undefined when the database
 * cannot give a dedicated session ({@link Db.sessionClient} absent).
 */
export function listen(db: Db, handlers: ListenHandlers, opts: ListenOptions = {}): Listener | undefined {
  if (!db.sessionClient) return undefined;
  const makeClient = db.sessionClient.bind(db);
  const retryMs = opts.retryMs ?? 250;
  const maxRetryMs = opts.maxRetryMs ?? 5000;
  const log = opts.log;
  let closed = false;
  let client: pg.Client | undefined;
  let listening = false;
  let wait = retryMs;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;

  const scheduleReconnect = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, wait);
    timer.unref();
    wait = Math.min(wait * 2, maxRetryMs);
  };

  const drop = (c: pg.Client, err?: unknown) => {
    if (client !== c) return;
    client = undefined;
    listening = false;
    c.removeAllListeners('notification');
    c.end().catch(() => {});
    if (closed) return;
    if (failures++ === 0) log?.warn('change listener lost its database session; reconnecting', { err });
    scheduleReconnect();
  };

  const connect = async () => {
    if (closed) return;
    const c = makeClient();
    client = c;
    c.on('error', (err) => drop(c, err));
    c.on('end', () => drop(c));
    c.on('notification', (msg) => {
      if (msg.payload !== undefined) handlers.onNotify(msg.payload);
    });
    try {
      await c.connect();
      const { rows } = await c.query<{ channel: string }>(`SELECT ${CHANNEL} AS channel`);
      await c.query(`LISTEN "${rows[0]!.channel}"`);
    } catch (err) {
      drop(c, err);
      return;
    }
    if (client !== c || closed) return;
    listening = true;
    wait = retryMs;
    if (failures > 0) log?.info('change listener listening again');
    failures = 0;
    handlers.onListening();
  };

  void connect();
  return {
    get listening() {
      return listening;
    },
    async check(timeoutMs = 5000) {
      const c = client;
      if (!c || !listening) return;
      let t: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          c.query('SELECT 1'),
          new Promise((_, reject) => {
            t = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
      } catch (err) {
        drop(c, err);
      } finally {
        clearTimeout(t);
      }
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const c = client;
      client = undefined;
      listening = false;
      if (c) await c.end().catch(() => {});
    },
  };
}
