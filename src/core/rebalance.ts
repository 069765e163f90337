import type { Db, Queryable } from '../meta/db.js';
import { run } from '../meta/run.js';
import * as jq from '../meta/queries/jobs.js';
import { createJob, getJob, JobError, MOVE_TASK, openJob, planInTx, recordPage, type FinishDecision, type JobKindImpl, type JobRecord } from './jobs.js';
import type { PlacementStrategy } from './placement.js';
import { enqueueMove } from './replicate.js';

/**
 * Rebalancing: moving copies between ACTIVE backends until their live bytes match what the placement
 * strategy would have produced.
 *
 * Targets. The movable bytes T (live copies on active backends) are shared out:
 * - `spread`: in proportion to the quotas when every active backend has one (equal fill ratios), else
 *   equally (quotas stay hard limits), each share scaled by the backend's weight as placement does; a
 *   backend whose share exceeds its quota is capped and the rest shared among the others (water-filling);
 * - `pack`: poured into the backends in configuration order, each filled up to its quota.
 * A backend of weight 0 takes no new copies, so its target is 0 under both.
 *
 * Moves. A greedy pass (repeated while it moves something, at most 4 passes) takes the sources from the
 * most over target down; for each live copy on a source
 * (version order) it picks the destination furthest under target (`pack`: the first one under target in
 * order) that has room, does not hold a copy of the version already and does not put two copies in one
 * zone that were in two; the move is kept only if it reduces the total distance to the targets. Copies
 * already being moved by some task are left alone. The same simulation answers Plan (a dry run) and drives
 * Apply's planner page by page (its state kept in the job's cursor, so a restart resumes it).
 */

/** One backend in the simulation. */
export interface RebalanceBackend {
  name: string;
  zone: string | null;
  quotaBytes: number;
  /** `backends.weight`: its share is scaled by it (0: it should hold nothing). */
  weight: number;
  /** Used + reserved, all copies counted (a destination's room). */
  usedBytes: number;
  /** Live copies' bytes now (what the targets share out). */
  liveBytes: number;
  liveCopies: number;
  /** Live bytes once the planned moves are made. */
  projectedBytes: number;
  projectedCopies: number;
  targetBytes: number;
}

/** One planned move. */
export interface RebalanceMove {
  versionId: string;
  bucket: string;
  key: string;
  size: number;
  from: string;
  to: string;
}

/** The simulation's whole state: plain JSON, kept in the Apply job's cursor between pages. */
export interface RebalanceState {
  strategy: PlacementStrategy;
  backends: RebalanceBackend[];
  /** Sources left, most over target first, and where the current one's paging stands. */
  sources: string[];
  after: string;
  moves: number;
  movedBytes: number;
  /** Passes over the sources so far, and the moves the current one chose (another pass follows when > 0). */
  round?: number;
  roundMoves?: number;
}

/** Passes over the sources at most: a move made for a later source can leave an earlier one over target. */
const MAX_ROUNDS = 4;

function overTarget(backends: readonly RebalanceBackend[]): string[] {
  return backends
    .filter((b) => b.projectedBytes > b.targetBytes)
    .sort((a, b) => b.projectedBytes - b.targetBytes - (a.projectedBytes - a.targetBytes))
    .map((b) => b.name);
}

/** Starts another pass over the sources still over target when the last one moved something. */
function refill(state: RebalanceState): boolean {
  if ((state.roundMoves ?? 0) === 0 || (state.round ?? 0) + 1 >= MAX_ROUNDS) return false;
  state.round = (state.round ?? 0) + 1;
  state.roundMoves = 0;
  state.sources = overTarget(state.backends);
  state.after = '';
  return state.sources.length > 0;
}

/** Builds the starting state from the backend rows: active backends that are configured, in `order`. */
export async function initialState(q: Queryable, order: readonly string[], strategy: PlacementStrategy): Promise<RebalanceState> {
  const rows = (
    await run<{
      name: string;
      state: string;
      zone: string | null;
      quota_bytes: number;
      used_bytes: number;
      reserved_bytes: number;
      weight: number;
      live_bytes: number;
      live_copies: number;
    }>(
      q,
      jq.liveUsage(),
    )
  ).rows;
  const byName = new Map(rows.map((r) => [r.name, r]));
  const active = order.map((n) => byName.get(n)).filter((r) => r !== undefined && r.state === 'active') as typeof rows;
  const backends: RebalanceBackend[] = active.map((r) => ({
    name: r.name,
    zone: r.zone,
    quotaBytes: Number(r.quota_bytes),
    weight: Number(r.weight ?? 1),
    usedBytes: Number(r.used_bytes) + Number(r.reserved_bytes),
    liveBytes: Number(r.live_bytes),
    liveCopies: Number(r.live_copies),
    projectedBytes: Number(r.live_bytes),
    projectedCopies: Number(r.live_copies),
    targetBytes: 0,
  }));
  setTargets(backends, strategy);
  return { strategy, backends, sources: overTarget(backends), after: '', moves: 0, movedBytes: 0, round: 0, roundMoves: 0 };
}

function setTargets(backends: RebalanceBackend[], strategy: PlacementStrategy): void {
  const total = backends.reduce((n, b) => n + b.liveBytes, 0);
  const cap = (b: RebalanceBackend) => (b.quotaBytes === 0 ? Infinity : Math.max(0, b.quotaBytes - (b.usedBytes - b.liveBytes)));
  if (strategy === 'pack') {
    let rest = total;
    for (const b of backends) {
      b.targetBytes = b.weight === 0 ? 0 : Math.min(rest, cap(b));
      rest -= b.targetBytes;
    }
    return;
  }
  const byQuota = backends.length > 0 && backends.every((b) => b.quotaBytes > 0);
  const weight = (b: RebalanceBackend) => (byQuota ? b.quotaBytes : 1) * b.weight;
  let open = [...backends];
  let rest = total;
  // Water-filling: share out, cap the backends whose share does not fit, share the rest again.
  for (;;) {
    const w = open.reduce((n, b) => n + weight(b), 0);
    const capped = open.filter((b) => w > 0 && (rest * weight(b)) / w > cap(b));
    if (capped.length === 0) {
      for (const b of open) b.targetBytes = w > 0 ? Math.floor((rest * weight(b)) / w) : 0;
      return;
    }
    for (const b of capped) {
      b.targetBytes = cap(b);
      rest -= b.targetBytes;
    }
    open = open.filter((b) => !capped.includes(b));
  }
}

/** A live copy the simulation may move. */
interface Candidate {
  version_id: string;
  size: number;
  bucket: string;
  key: string;
  others: string[];
  other_zones: string[];
}

/** Where `c` (on `from`) should go, or undefined to leave it; updates the projection when it moves. */
function place(state: RebalanceState, from: RebalanceBackend, c: Candidate): RebalanceBackend | undefined {
  const size = Number(c.size);
  const excess = from.projectedBytes - from.targetBytes;
  if (excess <= 0) return undefined;
  const eligible = state.backends.filter((d) => {
    if (d.name === from.name || c.others.includes(d.name)) return false;
    if (d.zone !== null && d.zone !== from.zone && c.other_zones.includes(d.zone)) return false;
    if (d.quotaBytes > 0 && d.usedBytes + (d.projectedBytes - d.liveBytes) + size > d.quotaBytes) return false;
    return d.targetBytes - d.projectedBytes > 0;
  });
  if (eligible.length === 0) return undefined;
  const to =
    state.strategy === 'pack'
      ? eligible[0]!
      : eligible.reduce((best, d) => (d.targetBytes - d.projectedBytes > best.targetBytes - best.projectedBytes ? d : best));
  const deficit = to.targetBytes - to.projectedBytes;
  const gain = excess + deficit - Math.abs(excess - size) - Math.abs(deficit - size);
  if (gain <= 0) return undefined;
  from.projectedBytes -= size;
  from.projectedCopies -= 1;
  to.projectedBytes += size;
  to.projectedCopies += 1;
  state.moves += 1;
  state.movedBytes += size;
  state.roundMoves = (state.roundMoves ?? 0) + 1;
  return to;
}

/** Copies looked at per page. */
const PAGE = 500;

/**
 * Advances the simulation by one page of the current source; returns the moves it chose and whether
 * anything is left to look at. `skip` names versions already moved by this simulation (a dry run, whose
 * moves are not enqueued; an applied plan's moves are tasks, which the page query leaves out).
 */
export async function simulatePage(
  q: Queryable,
  state: RebalanceState,
  skip?: ReadonlySet<string>,
): Promise<{ moves: RebalanceMove[]; more: boolean }> {
  const moves: RebalanceMove[] = [];
  for (;;) {
    if (state.sources.length === 0 && !refill(state)) return { moves, more: false };
    const from = state.backends.find((b) => b.name === state.sources[0])!;
    if (from.projectedBytes <= from.targetBytes) {
      state.sources.shift();
      state.after = '';
      continue;
    }
    const { rows } = await run<Candidate>(q, jq.movablePage(from.name, state.after, PAGE));
    for (const c of rows) {
      if (skip?.has(c.version_id)) continue;
      const to = place(state, from, c);
      if (to) moves.push({ versionId: c.version_id, bucket: c.bucket, key: c.key, size: Number(c.size), from: from.name, to: to.name });
    }
    if (rows.length < PAGE) {
      state.sources.shift();
      state.after = '';
    } else {
      state.after = rows.at(-1)!.version_id;
    }
    const another = (state.roundMoves ?? 0) > 0 && (state.round ?? 0) + 1 < MAX_ROUNDS;
    return { moves, more: state.sources.length > 0 || another };
  }
}

/** The outcome of a dry run. */
export interface RebalancePlan {
  strategy: PlacementStrategy;
  backends: RebalanceBackend[];
  /** The first `maxMoves` moves (all of them are counted in moveCount/moveBytes). */
  moves: RebalanceMove[];
  moveCount: number;
  moveBytes: number;
}

/** A dry run: which versions would move where, and each backend's live bytes before and after. */
export async function planRebalance(db: Db, order: readonly string[], strategy: PlacementStrategy, maxMoves = 1000): Promise<RebalancePlan> {
  if (!Number.isInteger(maxMoves) || maxMoves < 0) throw new JobError('InvalidArgument', 'max_moves must be a non-negative integer', 'max_moves');
  const state = await initialState(db, order, strategy);
  const moves: RebalanceMove[] = [];
  const moved = new Set<string>();
  for (;;) {
    const page = await simulatePage(db, state, moved);
    for (const m of page.moves) {
      moved.add(m.versionId);
      if (moves.length < maxMoves) moves.push(m);
    }
    if (!page.more) break;
  }
  return { strategy, backends: state.backends, moves, moveCount: state.moves, moveBytes: state.movedBytes };
}

/** The rebalance job kind: its planner runs the simulation and enqueues each move with its destination. */
export const rebalanceJob: JobKindImpl = {
  kind: 'rebalance',
  itemKinds: [MOVE_TASK],
  planPage: (db, job) =>
    planInTx(db, async (q) => {
      const state =
        (job.cursor as RebalanceState | null) ??
        (await initialState(q, (job.params.order as string[]) ?? [], (job.params.strategy as PlacementStrategy) ?? 'spread'));
      const page = await simulatePage(q, state);
      let items = 0;
      let bytes = 0;
      for (const m of page.moves) {
        if ((await enqueueMove(q, { versionId: m.versionId, from: m.from, to: m.to, jobId: job.id })) === undefined) continue;
        items++;
        bytes += m.size;
      }
      await recordPage(q, job.id, {
        cursor: state,
        items,
        bytes,
        planned: !page.more,
        message: page.more ? 'planning' : 'moving copies',
      });
      return page.more ? 'more' : 'done';
    }),
  finish: async (): Promise<FinishDecision> => ({ outcome: 'done', message: 'planned moves made' }),
};

/**
 * Starts a rebalance job under `strategy` over the configured backends in `order`. Fails
 * FailedPrecondition when one is already open (its id in the message).
 */
export async function applyRebalance(db: Db, order: readonly string[], strategy: PlacementStrategy, createdBy = ''): Promise<JobRecord> {
  const id = await db.tx(async (q) => {
    const open = await openJob(q, 'rebalance', '');
    if (open) throw new JobError('FailedPrecondition', `rebalance job ${open.id} is already ${open.state}; cancel it or wait for it`);
    const job = await createJob(q, 'rebalance', '', { strategy, order: [...order] }, createdBy);
    if (!job) throw new JobError('FailedPrecondition', 'a rebalance job is already open');
    return Number(job.id);
  });
  return (await getJob(db, id))!;
}

/**
 * `placement.rebalance_on_add`: starts a rebalance when an active backend appears that was never seen
 * before (added to the configuration or through the admin API). Every backend name seen is remembered in
 * the settings row `rebalance.known_backends`, updated under its row lock, so one instance starts the job
 * once; the first call only records the fleet. A backend made active again after a drain is not new. No
 * job is started while a rebalance is open (it is replaced by nothing: its targets were computed before
 * the new backend came, so run another afterwards). Returns the job started, if any.
 */
export async function rebalanceOnAdd(db: Db, order: readonly string[], strategy: PlacementStrategy): Promise<JobRecord | undefined> {
  const id = await db.tx(async (q) => {
    const rows = (await run<{ name: string; state: string }>(q, jq.backendNames())).rows;
    const names = rows.map((r) => r.name);
    if ((await run(q, jq.insertSetting(jq.KNOWN_BACKENDS_KEY, JSON.stringify(names)))).rowCount > 0) return undefined;
    const stored = (await run<{ value: string }>(q, jq.lockSetting(jq.KNOWN_BACKENDS_KEY))).rows[0]?.value ?? '[]';
    const known = new Set(JSON.parse(stored) as string[]);
    const added = rows.filter((r) => !known.has(r.name) && r.state === 'active' && order.includes(r.name)).map((r) => r.name);
    // Only names the configuration knows are recorded as seen: a row created by another instance ahead
    // of this one's configuration is seen again once it is configured here.
    const seen = [...new Set([...known, ...names.filter((n) => order.includes(n))])].sort();
    if (seen.length !== known.size) await run(q, jq.updateSetting(jq.KNOWN_BACKENDS_KEY, JSON.stringify(seen)));
    if (added.length === 0 || (await openJob(q, 'rebalance', ''))) return undefined;
    const job = await createJob(q, 'rebalance', '', { strategy, order: [...order], trigger: `backend added: ${added.join(', ')}` }, 'rebalance_on_add');
    return job ? Number(job.id) : undefined;
  });
  return id === undefined ? undefined : getJob(db, id);
}
