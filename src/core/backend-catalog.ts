import type { Backend } from '../backends/backend.js';
import { FsBackend } from '../backends/fs.js';
import type { BackendConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Db } from '../meta/db.js';
import * as sq from '../meta/queries/backend-settings.js';
import { run } from '../meta/run.js';
import { fingerprint, fromSettingsRow, UnbuildableBackend, type Sealer } from './backend-specs.js';
import type { BackendRegistry } from './backends.js';
import { expectFsIdentities, recordFsIdentities } from './fs-upkeep.js';

/**
 * Keeps this instance's {@link BackendRegistry} equal to the backend rows: a row that appears (added
 * through the admin API on any instance) is built and used at once; a row whose settings changed is
 * rebuilt; a removed row is dropped. Driven by the change bus topic `backends` (core/changes.ts), so every
 * instance has the same view within a second, and by its periodic fallback.
 *
 * A backend replaced or dropped may still be in use by calls in flight: it is closed `closeGraceMs` later.
 * A row that cannot be built (no master key, settings written before schema 6) leaves whatever the
 * registry holds under that name (the backend built from this instance's config file at start) and is
 * logged once per distinct problem.
 */

/** Who else must know when the fleet changes (health tracking, fs upkeep). */
export interface CatalogHooks {
  /** A backend was added (not replaced) to the registry. */
  added?(b: Backend): void;
  /** A backend was dropped from the registry. */
  removed?(name: string): void;
}

export interface CatalogDeps {
  db: Db;
  registry: BackendRegistry;
  /** Opens the sealed provider secrets of the rows. */
  secrets?: Sealer;
  /** Builds a backend from its configuration (the app's createBackend with its options). */
  build: (cfg: BackendConfig) => Backend;
  log: Logger;
  hooks?: CatalogHooks;
  /** Delay before a replaced or dropped backend is closed, ms (default 60 s). */
  closeGraceMs?: number;
}

export class BackendCatalog {
  readonly #deps: CatalogDeps;
  readonly #fingerprints = new Map<string, string>();
  readonly #problems = new Map<string, string>();
  readonly #closing = new Map<NodeJS.Timeout, Backend>();
  #reloading: Promise<void> | undefined;
  #again = false;

  constructor(deps: CatalogDeps) {
    this.#deps = deps;
  }

  /**
   * Registers backends already in the registry (built from the config file at start) with the settings
   * they were built from, so a reload does not rebuild them while their rows say the same.
   */
  adopt(configs: readonly BackendConfig[]): void {
    for (const cfg of configs) if (this.#deps.registry.get(cfg.name)) this.#fingerprints.set(cfg.name, fingerprint(cfg));
  }

  /** Whether this instance already runs a backend built from exactly `cfg` (same settings and secret). */
  runs(cfg: BackendConfig): boolean {
    return this.#deps.registry.get(cfg.name) !== undefined && this.#fingerprints.get(cfg.name) === fingerprint(cfg);
  }

  /**
   * Re-reads the rows and applies them to the registry. Concurrent calls share one run (a call arriving
   * during a run makes it run once more), so the caller's view is at least as new as the call.
   */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#again = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#again = false;
          await this.#apply();
        } while (this.#again);
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /** Closes backends still waiting out their grace period (at shutdown). */
  async close(): Promise<void> {
    const waiting = [...this.#closing];
    this.#closing.clear();
    for (const [t] of waiting) clearTimeout(t);
    await Promise.allSettled(waiting.map(([, b]) => b.close()));
  }

  async #apply(): Promise<void> {
    const { db, registry, log } = this.#deps;
    const { rows } = await run<sq.BackendSettingsRow>(db, sq.selectBackendSettings());
    const wanted = new Set<string>();
    for (const r of rows) {
      if (r.state === 'removed') continue;
      wanted.add(r.name);
      let cfg: BackendConfig;
      try {
        cfg = fromSettingsRow(r, this.#deps.secrets);
      } catch (err) {
        if (!(err instanceof UnbuildableBackend)) throw err;
        if (this.#problems.get(r.name) !== err.message) {
          this.#problems.set(r.name, err.message);
          log[registry.get(r.name) ? 'debug' : 'warn']('backend row cannot be built; keeping what this instance has', {
            backend: r.name,
            reason: err.message,
          });
        }
        continue;
      }
      this.#problems.delete(r.name);
      const fp = fingerprint(cfg);
      if (this.#fingerprints.get(r.name) === fp && registry.get(r.name)) continue;
      const backend = this.#deps.build(cfg);
      if (backend instanceof FsBackend) await expectFsIdentities(db, [backend]);
      const replaced = registry.put(backend);
      this.#fingerprints.set(r.name, fp);
      if (replaced) this.#closeLater(replaced);
      else this.#deps.hooks?.added?.(backend);
      log.info(replaced ? 'backend settings changed; rebuilt' : 'backend added to this instance', { backend: r.name, type: r.type, source: r.source });
      if (backend instanceof FsBackend) {
        // The first check establishes (or verifies) the directory's identity; record it once.
        backend.check().then(
          () => recordFsIdentities(db, [backend], log),
          (err: unknown) => log.warn('fs backend not usable on this instance', { backend: r.name, err }),
        );
      }
    }
    for (const name of [...registry.names]) {
      if (wanted.has(name)) continue;
      const old = registry.remove(name);
      this.#fingerprints.delete(name);
      if (old) this.#closeLater(old);
      this.#deps.hooks?.removed?.(name);
      log.info('backend dropped from this instance', { backend: name });
    }
    const live = rows.filter((r) => r.state !== 'removed');
    registry.setOrder(live.map((r) => r.name));
    registry.setReadPriorities(live.map((r) => [r.name, r.read_priority] as const));
  }

  #closeLater(b: Backend): void {
    const t = setTimeout(() => {
      this.#closing.delete(t);
      b.close().catch((err: unknown) => this.#deps.log.warn('closing a replaced backend failed', { backend: b.name, err }));
    }, this.#deps.closeGraceMs ?? 60_000);
    t.unref();
    this.#closing.set(t, b);
  }
}
