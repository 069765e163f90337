import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BackendError, type Backend } from '../backends/backend.js';
import { FsBackend } from '../backends/fs.js';
import type { BackendConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Db } from '../meta/db.js';
import * as sq from '../meta/queries/backend-settings.js';
import { run } from '../meta/run.js';
import type { BackendCatalog } from './backend-catalog.js';
import { BUILT_IN_CONFIG, forgetFsIdentity, holdings, isEmpty } from './backend-declared.js';
import { DEFAULT_READ_PRIORITY, DEFAULT_WEIGHT, MAX_WEIGHT, toSettingsInput, type Sealer } from './backend-specs.js';
import type { BackendRegistry } from './backends.js';
import type { ChangeBus } from './changes.js';
import { ControlError, invalidField, type ProbeFailure } from './control-errors.js';
import { identitySettingKey } from './fs-upkeep.js';
import type { BackendHealth } from './health.js';

/**
 * Backends managed at runtime (the admin API's BackendService): add (after proving the provider works),
 * describe, change placement knobs, remove. Every change is one transaction on the backend rows that
 * notifies the change bus, so every instance's registry follows within a second (core/backend-catalog.ts);
 * this instance reloads before answering, so its next write already sees the change.
 */

/** A backend to add. Field names follow the proto (snake_case in errors). */
export interface NewBackend {
  name: string;
  type: 's3' | 'fs';
  s3?: { endpoint?: string; region: string; bucket: string; prefix: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean };
  fs?: { path: string };
  quotaBytes: number;
  zone?: string;
  readPriority?: number;
  weight?: number;
}

/** Changes of an Update; undefined leaves the value as it is; zone '' clears it. */
export interface BackendChanges {
  quotaBytes?: number;
  readPriority?: number;
  zone?: string;
  weight?: number;
}

/** A backend as the admin API describes it (never its secret). */
export interface BackendView {
  name: string;
  type: string;
  state: sq.BackendSettingsRow['state'];
  source: 'config' | 'api';
  /** File and entry declaring a config-owned backend (`/etc/s3o.yaml: backends[2]`). */
  configRef?: string;
  /** When the file stopped declaring it while it still held data (it waits for a drain or purge). */
  removalRequestedAt?: Date;
  quotaBytes: number;
  usedBytes: number;
  reservedBytes: number;
  objectCount: number;
  zone?: string;
  readPriority: number;
  weight: number;
  /** Non-secret settings (s3: endpoint, region, bucket, prefix, forcePathStyle, accessKeyId; fs: path). */
  settings: Record<string, unknown>;
  /** Whether this instance has the backend built and in use. */
  loaded: boolean;
  /** Live health and breaker state on this instance. */
  health?: BackendHealth;
  createdAt: Date;
  updatedAt: Date;
  /** The backend's open drain job (JobService), if any. */
  drain?: { jobId: number; state: string };
}

export interface BackendControlDeps {
  db: Db;
  registry: BackendRegistry;
  catalog: BackendCatalog;
  bus?: ChangeBus;
  secrets?: Sealer;
  build: (cfg: BackendConfig) => Backend;
  log: Logger;
  /** Longest time the probe of an Add may take, ms (default 20 s). */
  probeTimeoutMs?: number;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KEY_PATHS: Record<keyof BackendChanges, string> = { quotaBytes: 'quota_bytes', readPriority: 'read_priority', zone: 'zone', weight: 'weight' };

export class BackendControl {
  readonly #d: BackendControlDeps;

  constructor(deps: BackendControlDeps) {
    this.#d = deps;
  }

  /**
   * Adds a backend: validates the request, refuses a name in use or storage that overlaps another
   * backend's, proves the provider works (writes, reads back and deletes a probe object; the provider's
   * error is returned on failure), then stores the row (secret sealed) and announces it.
   */
  async add(spec: NewBackend): Promise<BackendView> {
    const cfg = validateNew(spec);
    const readPriority = spec.readPriority ?? DEFAULT_READ_PRIORITY;
    const weight = spec.weight ?? DEFAULT_WEIGHT;
    if (cfg.type === 's3' && !this.#d.secrets) {
      throw new ControlError('FailedPrecondition', 'no master key is loaded: provider secrets cannot be stored (server.master_key_file or S3O_MASTER_KEY)');
    }
    const existing = await this.#row(spec.name);
    if (existing && existing.state !== 'removed') throw new ControlError('AlreadyExists', `backend ${spec.name} already exists`);
    const { rows } = await run<sq.BackendSettingsRow>(this.#d.db, sq.selectBackendSettings());
    const clash = rows.find((r) => r.state !== 'removed' && r.name !== spec.name && overlaps(cfg, r));
    if (clash) {
      throw new ControlError('FailedPrecondition', `its storage overlaps backend ${clash.name}'s; backends must not share storage (each would delete the other's objects)`);
    }
    const backend = this.#d.build(cfg);
    try {
      if (backend instanceof FsBackend) backend.expectIdentity({ hasData: false });
      await this.#probe(backend);
      const input = toSettingsInput(cfg, { quotaBytes: spec.quotaBytes, ...(spec.zone ? { zone: spec.zone } : {}), readPriority, weight }, this.#d.secrets, null);
      const created = await this.#d.db.tx(async (q) => {
        const res = await run(q, sq.insertApiBackend(input));
        if (res.rowCount === 0) return false;
        await forgetFsIdentity(q, spec.name);
        // Recorded in the same transaction: an instance loading the backend on the notification already
        // finds the identity the probe established, and never establishes one of its own.
        if (backend instanceof FsBackend && backend.identity !== undefined) {
          await run(q, sq.putSetting(identitySettingKey(spec.name), backend.identity));
        }
        await this.#d.bus?.notify(q, 'backends', spec.name);
        return true;
      });
      if (!created) throw new ControlError('AlreadyExists', `backend ${spec.name} already exists`);
    } finally {
      await backend.close().catch(() => {});
    }
    this.#d.log.info('backend added through the admin API', { backend: spec.name, type: spec.type });
    await this.#d.catalog.reload();
    return this.get(spec.name);
  }

  async get(name: string): Promise<BackendView> {
    const r = await this.#row(name);
    if (!r) throw new ControlError('NotFound', `backend ${name} does not exist`);
    return this.#view(r, await this.#drains());
  }

  /** Every backend, in placement order; removed ones only when asked. */
  async list(opts: { includeRemoved?: boolean } = {}): Promise<BackendView[]> {
    const { rows } = await run<sq.BackendSettingsRow>(this.#d.db, sq.selectBackendSettings());
    const drains = await this.#drains();
    return rows.filter((r) => opts.includeRemoved || r.state !== 'removed').map((r) => this.#view(r, drains));
  }

  /**
   * Changes quota, read priority, zone or weight. A config-owned backend is refused with the file and key
   * path of the first value asked to change: the file is its truth.
   */
  async update(name: string, changes: BackendChanges): Promise<BackendView> {
    validateChanges(changes);
    const asked = (Object.keys(KEY_PATHS) as (keyof BackendChanges)[]).filter((k) => changes[k] !== undefined);
    if (asked.length === 0) throw new ControlError('InvalidArgument', 'nothing to change: give at least one of quota_bytes, read_priority, zone, weight');
    const done = await this.#d.db.tx(async (q) => {
      const r = (await run<sq.BackendSettingsRow>(q, sq.selectBackendSettingsByName(name, true))).rows[0];
      if (!r || r.state === 'removed') throw new ControlError('NotFound', `backend ${name} does not exist`);
      if (r.source === 'config') throw configOwned(r, KEY_PATHS[asked[0]!]);
      const upd: sq.BackendUpdate = {
        ...(changes.quotaBytes !== undefined ? { quotaBytes: changes.quotaBytes } : {}),
        ...(changes.readPriority !== undefined ? { readPriority: changes.readPriority } : {}),
        ...(changes.zone !== undefined ? { zone: changes.zone === '' ? null : changes.zone } : {}),
        ...(changes.weight !== undefined ? { weight: changes.weight } : {}),
      };
      await run(q, sq.updateBackendSettings(name, upd));
      await this.#d.bus?.notify(q, 'backends', name);
      return true;
    });
    if (done) await this.#d.catalog.reload();
    return this.get(name);
  }

  /**
   * Removes a backend that holds nothing: no copies of any state, no multipart upload, no queued work on
   * it, no used or reserved bytes. Otherwise FAILED_PRECONDITION says what remains (drain or purge it
   * first). A config-owned backend is removed by deleting it from the file and reloading.
   */
  async remove(name: string): Promise<void> {
    await this.#d.db.tx(async (q) => {
      const r = (await run<sq.BackendSettingsRow>(q, sq.selectBackendSettingsByName(name, true))).rows[0];
      if (!r || r.state === 'removed') throw new ControlError('NotFound', `backend ${name} does not exist`);
      if (r.source === 'config') {
        const ref = splitRef(r.config_ref);
        throw new ControlError(
          'FailedPrecondition',
          ref.file === BUILT_IN_CONFIG
            ? `backend ${name} comes from the zero-config defaults (${ref.keyPath}); serve with a configuration file to remove it`
            : `backend ${name} is declared in ${ref.file}: ${ref.keyPath}; delete it from the file and reload (SIGHUP) to remove it`,
          { configOwned: ref },
        );
      }
      const h = await holdings(q, name);
      if (!h || !isEmpty(h)) {
        throw new ControlError(
          'FailedPrecondition',
          `backend ${name} still holds data: ${h?.copies ?? 0} copies, ${h?.used_bytes ?? 0} bytes used, ${h?.reserved_bytes ?? 0} reserved, ` +
            `${h?.uploads ?? 0} multipart uploads, ${h?.tasks ?? 0} queued tasks; drain it first (JobService.Drain, ` +
            '`s3-orchestrator admin backends drain`) or remove it with purge once the job service offers it',
        );
      }
      await run(q, sq.markBackendRemoved(name));
      await forgetFsIdentity(q, name);
      await this.#d.bus?.notify(q, 'backends', name);
    });
    this.#d.log.info('backend removed through the admin API', { backend: name });
    await this.#d.catalog.reload();
  }

  async #row(name: string): Promise<sq.BackendSettingsRow | undefined> {
    return (await run<sq.BackendSettingsRow>(this.#d.db, sq.selectBackendSettingsByName(name))).rows[0];
  }

  /** Open drain jobs by backend. */
  async #drains(): Promise<Map<string, { jobId: number; state: string }>> {
    const { rows } = await run<{ id: number; target: string; state: string }>(this.#d.db, sq.selectOpenDrains());
    return new Map(rows.map((j) => [j.target, { jobId: j.id, state: j.state }]));
  }

  #view(r: sq.BackendSettingsRow, drains: Map<string, { jobId: number; state: string }>): BackendView {
    const health = this.#d.registry.health?.get(r.name);
    const drain = drains.get(r.name);
    return {
      name: r.name,
      type: r.type,
      state: r.state,
      source: r.source,
      ...(r.config_ref ? { configRef: r.config_ref } : {}),
      ...(r.removal_requested_at ? { removalRequestedAt: r.removal_requested_at } : {}),
      quotaBytes: r.quota_bytes,
      usedBytes: r.used_bytes,
      reservedBytes: r.reserved_bytes,
      objectCount: r.object_count,
      ...(r.zone ? { zone: r.zone } : {}),
      readPriority: r.read_priority,
      weight: r.weight,
      settings: r.settings ?? {},
      loaded: this.#d.registry.get(r.name) !== undefined,
      ...(health ? { health } : {}),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      ...(drain ? { drain } : {}),
    };
  }

  /** check, then put / get / compare / delete a small probe object, all within the probe timeout. */
  async #probe(b: Backend): Promise<void> {
    const timeoutMs = this.#d.probeTimeoutMs ?? 20_000;
    const id = randomBytes(16).toString('hex');
    const key = `s3o-probe/${id}`;
    const body = Buffer.from(`s3-orchestrator probe ${id}\n`);
    let step = 'check';
    const steps = async () => {
      await b.check();
      step = 'put';
      await b.put(key, Readable.from([body]), body.length, { bucket: 's3o-probe', key: id, versionId: id, contentType: 'text/plain' });
      step = 'get';
      const got: Buffer[] = [];
      for await (const chunk of await b.get(key)) got.push(chunk as Buffer);
      step = 'compare';
      if (!Buffer.concat(got).equals(body)) throw new BackendError(b.name, 'Other', 'the probe object read back differs from what was written');
      step = 'delete';
      await b.delete(key);
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        steps(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BackendError(b.name, 'Unavailable', `no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      const probe: ProbeFailure = {
        step,
        kind: err instanceof BackendError ? err.kind : 'Other',
        providerError: err instanceof Error ? err.message : String(err),
      };
      if (step !== 'check' && step !== 'put') await b.delete(key).catch(() => {});
      throw new ControlError('FailedPrecondition', `the provider refused the probe (${step}): ${probe.providerError}`, { probe, cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The file and key path a config-owned row names. */
function splitRef(ref: string | null): { file: string; keyPath: string } {
  if (!ref) return { file: 'the configuration file', keyPath: 'backends' };
  const i = ref.lastIndexOf(': ');
  return i < 0 ? { file: ref, keyPath: 'backends' } : { file: ref.slice(0, i), keyPath: ref.slice(i + 2) };
}

function configOwned(r: sq.BackendSettingsRow, key: string): ControlError {
  const ref = splitRef(r.config_ref);
  const keyPath = `${ref.keyPath}.${key}`;
  const message =
    ref.file === BUILT_IN_CONFIG
      ? `backend ${r.name} comes from the zero-config defaults (${keyPath}); serve with a configuration file to change it`
      : `backend ${r.name} is declared in the configuration file: change ${ref.file}: ${keyPath} and reload (SIGHUP) instead`;
  return new ControlError('FailedPrecondition', message, { configOwned: { file: ref.file, keyPath } });
}

function validateNew(spec: NewBackend): BackendConfig {
  if (!NAME.test(spec.name)) {
    throw invalidField('name', `must be 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit, got ${JSON.stringify(spec.name)}`);
  }
  checkKnobs(spec);
  const common = { name: spec.name, quotaBytes: spec.quotaBytes, ...(spec.zone ? { zone: spec.zone } : {}) };
  if (spec.type === 'fs') {
    const p = spec.fs?.path ?? '';
    if (!p) throw invalidField('fs.path', 'is required for an fs backend');
    if (!path.isAbsolute(p)) throw invalidField('fs.path', `must be an absolute path, got ${JSON.stringify(p)}`);
    return { ...common, type: 'fs', path: path.resolve(p) };
  }
  if (spec.type !== 's3') throw invalidField('type', `must be s3 or fs`);
  const s = spec.s3;
  if (!s) throw invalidField('s3', 'the s3 settings are required for an s3 backend');
  let endpoint: string | undefined;
  if (s.endpoint) {
    let u: URL;
    try {
      u = new URL(s.endpoint);
    } catch {
      throw invalidField('s3.endpoint', `is not a valid URL: ${JSON.stringify(s.endpoint)}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidField('s3.endpoint', `must be an http:// or https:// URL, got ${JSON.stringify(s.endpoint)}`);
    if (u.username || u.password) throw invalidField('s3.endpoint', 'must not contain credentials; use access_key_id and secret_access_key');
    if (u.search || u.hash) throw invalidField('s3.endpoint', `must not have a query or fragment, got ${JSON.stringify(s.endpoint)}`);
    endpoint = s.endpoint.replace(/\/+$/, '');
  }
  const region = s.region || 'us-east-1';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(region)) throw invalidField('s3.region', `is not a valid region name: ${JSON.stringify(region)}`);
  if (!/^[A-Za-z0-9._-]{1,255}$/.test(s.bucket)) throw invalidField('s3.bucket', `is required and must be a valid bucket name, got ${JSON.stringify(s.bucket)}`);
  let prefix = s.prefix;
  if (prefix.startsWith('/')) throw invalidField('s3.prefix', `must not start with "/", got ${JSON.stringify(prefix)}`);
  if (prefix && !prefix.endsWith('/')) prefix += '/';
  if (!s.accessKeyId) throw invalidField('s3.access_key_id', 'is required');
  if (!s.secretAccessKey) throw invalidField('s3.secret_access_key', 'is required');
  return {
    ...common,
    type: 's3',
    ...(endpoint !== undefined ? { endpoint } : {}),
    region,
    bucket: s.bucket,
    prefix,
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    forcePathStyle: s.forcePathStyle,
  };
}

function checkKnobs(c: { quotaBytes?: number; readPriority?: number; zone?: string; weight?: number }): void {
  if (c.quotaBytes !== undefined && (!Number.isSafeInteger(c.quotaBytes) || c.quotaBytes < 0)) {
    throw invalidField('quota_bytes', `must be a whole number of bytes, 0 for unlimited, got ${c.quotaBytes}`);
  }
  if (c.readPriority !== undefined && (!Number.isInteger(c.readPriority) || Math.abs(c.readPriority) > 1_000_000)) {
    throw invalidField('read_priority', `must be a whole number from -1000000 to 1000000, got ${c.readPriority}`);
  }
  if (c.weight !== undefined && (!Number.isInteger(c.weight) || c.weight < 0 || c.weight > MAX_WEIGHT)) {
    throw invalidField('weight', `must be a whole number from 0 to ${MAX_WEIGHT}, got ${c.weight}`);
  }
  if (c.zone !== undefined && c.zone !== '' && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/.test(c.zone)) {
    throw invalidField('zone', `must be 1-63 characters of letters, digits, ".", "_", ":" and "-", got ${JSON.stringify(c.zone)}`);
  }
}

function validateChanges(c: BackendChanges): void {
  checkKnobs(c);
}

/** Whether a new backend's storage overlaps a stored row's (they would delete each other's objects). */
function overlaps(cfg: BackendConfig, r: sq.BackendSettingsRow): boolean {
  const s = r.settings ?? {};
  if (cfg.type === 'fs' && r.type === 'fs' && typeof s.path === 'string') {
    return isWithin(cfg.path, s.path) || isWithin(s.path, cfg.path);
  }
  if (cfg.type === 's3' && r.type === 's3' && s.bucket === cfg.bucket && (s.endpoint ?? '') === (cfg.endpoint ?? '')) {
    const other = typeof s.prefix === 'string' ? s.prefix : '';
    return cfg.prefix.startsWith(other) || other.startsWith(cfg.prefix);
  }
  return false;
}

function isWithin(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
