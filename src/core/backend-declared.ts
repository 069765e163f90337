import type { BackendConfig } from '../config/types.js';
import type { Db, Queryable } from '../meta/db.js';
import * as sq from '../meta/queries/backend-settings.js';
import { run } from '../meta/run.js';
import { DEFAULT_READ_PRIORITY, DEFAULT_WEIGHT, toSettingsInput, type Sealer } from './backend-specs.js';
import type { ChangeBus } from './changes.js';
import { identitySettingKey } from './fs-upkeep.js';

/**
 * The config file's backends as a desired state, applied at start and on SIGHUP to the rows it declares:
 * each declared entry's row gets the file's settings and knobs and becomes config-owned (the admin API
 * refuses to change it, naming the file and key). Rows created through the API are never touched.
 *
 * An entry naming a backend the API owns is refused ({@link DeclaredBackendConflict}), nothing applied.
 *
 * A config-owned row the file no longer declares goes through the same checks as an API removal: when it
 * holds nothing (no copies, uploads, queued work, used or reserved bytes) it is marked removed; otherwise
 * it is handed to the API (no longer config-owned), stops taking new copies (read_only) and is reported,
 * waiting for a drain or purge. Nothing is deleted.
 */

/** Label of the configuration's origin in messages and `config_ref` when it has no file (zero-config). */
export const BUILT_IN_CONFIG = '(built-in zero-config defaults)';

/** A config-owned backend the file dropped that still holds data. */
export interface PendingRemoval {
  name: string;
  copies: number;
  uploads: number;
  tasks: number;
  usedBytes: number;
}

export interface DeclaredBackendsOutcome {
  /** Rows created or changed by the file. */
  changed: string[];
  /** Rows the file dropped that held nothing: now removed. */
  removed: string[];
  /** Rows the file dropped that still hold data: read-only, waiting for a drain or purge. */
  pendingRemoval: PendingRemoval[];
}

/** The file declares backends the admin API owns; nothing was applied. */
export class DeclaredBackendConflict extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'DeclaredBackendConflict';
    this.problems = problems;
  }
}

/** The `config_ref` of entry `index` of `file`. */
export function configRef(file: string | undefined, index: number): string {
  return `${file ?? BUILT_IN_CONFIG}: backends[${index}]`;
}

/**
 * Applies the declared backends in one transaction (serialised across instances by an advisory lock) and
 * announces a change on the bus when anything changed.
 */
export async function applyDeclaredBackends(
  db: Db,
  bus: ChangeBus | undefined,
  declared: readonly BackendConfig[],
  file: string | undefined,
  sealer: Sealer | undefined,
): Promise<DeclaredBackendsOutcome> {
  return db.tx(async (q) => {
    await q.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':s3o-declared-backends'))`);
    const { rows } = await run<sq.BackendSettingsRow>(q, sq.selectBackendSettings());
    const byName = new Map(rows.map((r) => [r.name, r]));
    const out: DeclaredBackendsOutcome = { changed: [], removed: [], pendingRemoval: [] };
    // The file never takes over a backend the admin API owns (one it handed over itself, after the entry
    // was dropped, it may take back).
    const taken = declared.map((cfg, i) => ({ cfg, i, row: byName.get(cfg.name) })).filter(
      ({ row }) => row && row.source === 'api' && row.state !== 'removed' && row.removal_requested_at === null,
    );
    if (taken.length > 0) {
      throw new DeclaredBackendConflict(
        taken.map(({ cfg, i }) => `${file ?? BUILT_IN_CONFIG}: backends[${i}].name: backend "${cfg.name}" was added through the admin API; remove it there or use another name`),
      );
    }
    for (let i = 0; i < declared.length; i++) {
      const cfg = declared[i]!;
      const input = toSettingsInput(
        cfg,
        {
          quotaBytes: cfg.quotaBytes,
          ...(cfg.zone !== undefined ? { zone: cfg.zone } : {}),
          readPriority: cfg.readPriority ?? DEFAULT_READ_PRIORITY,
          weight: cfg.weight ?? DEFAULT_WEIGHT,
        },
        sealer,
        byName.get(cfg.name)?.secret ?? null,
      );
      const res = await run(q, sq.upsertDeclaredBackend(input, configRef(file, i), i));
      if (res.rowCount > 0) out.changed.push(cfg.name);
    }
    const names = new Set(declared.map((b) => b.name));
    for (const r of rows) {
      if (r.source !== 'config' || r.state === 'removed' || names.has(r.name)) continue;
      const h = await holdings(q, r.name);
      if (h && isEmpty(h)) {
        await run(q, sq.markBackendRemoved(r.name));
        await forgetFsIdentity(q, r.name);
        out.removed.push(r.name);
      } else {
        await run(q, sq.markBackendUndeclared(r.name));
        out.pendingRemoval.push({
          name: r.name,
          copies: h?.copies ?? 0,
          uploads: h?.uploads ?? 0,
          tasks: h?.tasks ?? 0,
          usedBytes: h?.used_bytes ?? 0,
        });
      }
    }
    if (bus && (out.changed.length || out.removed.length || out.pendingRemoval.length)) await bus.notify(q, 'backends');
    return out;
  });
}

/** What a backend holds, read under its row lock. */
export async function holdings(q: Queryable, name: string): Promise<sq.BackendHoldingsRow | undefined> {
  await run(q, sq.selectBackendSettingsByName(name, true));
  return (await run<sq.BackendHoldingsRow>(q, sq.selectBackendHoldings(name))).rows[0];
}

/** A backend can be removed only when nothing ties it to data. */
export function isEmpty(h: sq.BackendHoldingsRow): boolean {
  return h.copies === 0 && h.uploads === 0 && h.tasks === 0 && h.used_bytes === 0 && h.reserved_bytes === 0;
}

/** A removed fs backend's recorded directory identity is forgotten: the name may be used again elsewhere. */
export async function forgetFsIdentity(q: Queryable, name: string): Promise<void> {
  await run(q, sq.deleteSetting(identitySettingKey(name)));
}
