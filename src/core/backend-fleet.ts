import { BackendError, type Backend } from '../backends/backend.js';
import { FsBackend } from '../backends/fs.js';
import { createBackend } from '../backends/index.js';
import type { BackendConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Db } from '../meta/db.js';
import { BackendCatalog } from './backend-catalog.js';
import { BackendControl } from './backend-control.js';
import { applyDeclaredBackends, type DeclaredBackendsOutcome } from './backend-declared.js';
import type { Sealer } from './backend-specs.js';
import type { BackendRegistry } from './backends.js';
import type { ChangeBus } from './changes.js';
import { expectFsIdentities } from './fs-upkeep.js';
import type { HealthTracker } from './health.js';

/**
 * The runtime fleet of one instance, wired together: the catalog that keeps the registry equal to the
 * backend rows (reloaded on every `backends` change-bus notification and its periodic fallback), the
 * control behind BackendService, and the application of the config file's declared backends (at start
 * and on SIGHUP).
 */
export interface BackendFleetDeps {
  db: Db;
  bus: ChangeBus;
  registry: BackendRegistry;
  health?: HealthTracker;
  secrets?: Sealer;
  log: Logger;
  /** Builds a backend (default createBackend). */
  build?: (cfg: BackendConfig) => Backend;
  /**
   * The fs backends this instance sweeps for crash leftovers (core/fs-upkeep.ts): kept up to date in
   * place as fs backends come and go.
   */
  fsBackends?: FsBackend[];
  /** Delay before a replaced or dropped backend is closed, ms (default 60 s). */
  closeGraceMs?: number;
  /** Longest time the probe of an Add may take, ms. */
  probeTimeoutMs?: number;
}

export class BackendFleet {
  readonly catalog: BackendCatalog;
  readonly control: BackendControl;
  readonly #deps: BackendFleetDeps;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: BackendFleetDeps) {
    this.#deps = deps;
    const build = deps.build ?? ((cfg: BackendConfig) => createBackend(cfg));
    const fs = deps.fsBackends;
    this.catalog = new BackendCatalog({
      db: deps.db,
      registry: deps.registry,
      ...(deps.secrets ? { secrets: deps.secrets } : {}),
      build,
      log: deps.log,
      ...(deps.closeGraceMs !== undefined ? { closeGraceMs: deps.closeGraceMs } : {}),
      hooks: {
        added: (b) => {
          deps.health?.track(b.name);
          if (fs && b instanceof FsBackend) fs.push(b);
        },
        removed: (name) => {
          deps.health?.untrack(name);
          if (fs) {
            const i = fs.findIndex((b) => b.name === name);
            if (i >= 0) fs.splice(i, 1);
          }
        },
      },
    });
    this.control = new BackendControl({
      db: deps.db,
      registry: deps.registry,
      catalog: this.catalog,
      bus: deps.bus,
      ...(deps.secrets ? { secrets: deps.secrets } : {}),
      build,
      log: deps.log,
      ...(deps.probeTimeoutMs !== undefined ? { probeTimeoutMs: deps.probeTimeoutMs } : {}),
    });
  }

  /**
   * Applies the config file's backends (the desired state of the entries it declares), then reloads the
   * registry from the rows. Backends the file dropped are logged: removed when they held nothing, else
   * read-only and waiting for a drain.
   */
  async applyDeclared(declared: readonly BackendConfig[], file: string | undefined): Promise<DeclaredBackendsOutcome> {
    const { db, bus, secrets, log } = this.#deps;
    const out = await applyDeclaredBackends(db, bus, declared, file, secrets);
    for (const name of out.removed) log.info('backend no longer declared by the configuration and empty: removed', { backend: name });
    for (const p of out.pendingRemoval) {
      log.warn('backend no longer declared by the configuration but still holds data: it takes no new copies; drain it, then remove it', {
        backend: p.name,
        copies: p.copies,
        usedBytes: p.usedBytes,
        uploads: p.uploads,
        tasks: p.tasks,
      });
    }
    await this.catalog.reload();
    return out;
  }

  /**
   * Checks the declared backends this instance does not already run with the same settings (new ones,
   * changed ones), as a start does: a backend that is misconfigured (bucket missing, credentials refused,
   * a directory that is not the one recorded) throws an error naming it, so a reload can refuse the whole
   * file; one that is merely unreachable passes (its breaker deals with it), as at start.
   */
  async checkDeclared(declared: readonly BackendConfig[]): Promise<void> {
    const build = this.#deps.build ?? ((cfg: BackendConfig) => createBackend(cfg));
    const fresh = declared.filter((cfg) => !this.catalog.runs(cfg));
    await Promise.all(
      fresh.map(async (cfg) => {
        const b = build(cfg);
        try {
          if (b instanceof FsBackend) await expectFsIdentities(this.#deps.db, [b]);
          await b.check();
        } catch (err) {
          if (err instanceof BackendError && err.kind === 'Unavailable') return;
          throw new Error(`backend ${cfg.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        } finally {
          await b.close().catch(() => {});
        }
      }),
    );
  }

  /** Follows the `backends` topic of the change bus (and its periodic fallback). Idempotent. */
  follow(): void {
    this.#unsubscribe ??= this.#deps.bus.subscribe('backends', () => this.catalog.reload());
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.catalog.close();
  }
}
