import type { Db } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as mq from '../meta/queries/multipart.js';
import * as oq from '../meta/queries/objects.js';
import { dropPendingIn, dropUpload } from './copies.js';
import { systemClock, type Clock } from './tasks.js';

/**
 * Recovery sweepers: each finds work left behind by a process that died (or a client that went away) and
 * hands it to the copy layer, claiming rows with FOR UPDATE SKIP LOCKED so any number of instances can
 * sweep at once without doing anything twice.
 */

/**
 * Aborts pending writes whose heartbeat stopped (their instance died mid-upload, or lost the database for
 * longer than `staleMs`): drops their rows, turns their reservations into used bytes and queues their
 * partial bytes for deletion. A writer that is in fact still streaming notices at its next heartbeat and
 * stops; see core/writes.ts. Returns the count.
 */
export async function abortStaleWrites(db: Db, staleMs: number, clock: Clock = systemClock, limit = 100): Promise<number> {
  return db.tx(async (q) => {
    const { rows } = await run<{ version_id: string }>(q, oq.selectStalePending(staleMs, limit, clock.skewMs()));
    for (const r of rows) await dropPendingIn(q, r.version_id, 'stale-write');
    return rows.length;
  });
}

/** Aborts multipart uploads started more than `maxAgeMs` ago (their parts go through the task queue). */
export async function abortAbandonedUploads(db: Db, maxAgeMs: number, clock: Clock = systemClock, limit = 100): Promise<number> {
  return db.tx(async (q) => {
    const { rows } = await run<{ upload_id: string }>(q, mq.selectAbandoned(maxAgeMs, limit, clock.skewMs()));
    for (const u of rows) await dropUpload(q, u.upload_id, ['active'], 'abandoned-upload');
    return rows.length;
  });
}

/**
 * Rolls back multipart completions that stalled (their completer died between claiming the upload and
 * publishing it): the upload row goes, its reservation becomes used bytes, and a task aborts the native
 * upload and deletes the physical key (which may hold the assembled object) before releasing them. A
 * client's retried Complete then answers NoSuchUpload, as for any upload that no longer exists.
 */
export async function rollBackStuckCompletions(db: Db, staleMs: number, clock: Clock = systemClock, limit = 100): Promise<number> {
  return db.tx(async (q) => {
    const { rows } = await run<{ upload_id: string }>(q, mq.selectStuckCompletions(staleMs, limit, clock.skewMs()));
    for (const u of rows) await dropUpload(q, u.upload_id, ['completing'], 'stuck-completion');
    return rows.length;
  });
}
