import type { BackendConfig } from '../config/types.js';
import type { BackendSettingsInput, BackendSettingsRow } from '../meta/queries/backend-settings.js';

/**
 * How a backend's settings are stored in its row (schema 6) and read back: the non-secret settings as
 * JSON, the provider secret sealed under the master key. The row is the truth for every instance; the
 * config file only writes the rows it declares.
 */

/** Seals and opens secrets (core/secrets.ts SecretBox). */
export interface Sealer {
  seal(plain: string): string;
  open(sealed: string): string;
}

/** Placement knobs stored next to the settings. */
export interface BackendKnobs {
  quotaBytes: number;
  zone?: string;
  /** Reads prefer lower values among healthy copies (default 0). */
  readPriority: number;
  /** Share of new copies under spread; 0 takes none (default 1). */
  weight: number;
}

/** Default read priority and weight of a backend that does not say. */
export const DEFAULT_READ_PRIORITY = 0;
export const DEFAULT_WEIGHT = 1;
/** Largest weight accepted (the column's CHECK). */
export const MAX_WEIGHT = 1000;

/**
 * The row a backend configuration is stored as. `sealed` is the secret as already stored when it opens to
 * the same plaintext: sealing again would give other bytes (a fresh nonce) and every sync would look like
 * a change.
 */
export function toSettingsInput(cfg: BackendConfig, knobs: BackendKnobs, sealer: Sealer | undefined, storedSecret: string | null): BackendSettingsInput {
  const common = {
    name: cfg.name,
    type: cfg.type,
    quotaBytes: knobs.quotaBytes,
    zone: knobs.zone ?? null,
    readPriority: knobs.readPriority,
    weight: knobs.weight,
  };
  if (cfg.type === 'fs') return { ...common, settings: settingsOf(cfg), secret: null };
  let secret: string | null = null;
  if (storedSecret !== null && sealer) {
    try {
      if (sealer.open(storedSecret) === cfg.secretAccessKey) secret = storedSecret;
    } catch {
      // sealed under another key, or damaged: seal afresh
    }
  }
  if (secret === null && sealer) secret = sealer.seal(cfg.secretAccessKey);
  return { ...common, settings: settingsOf(cfg), secret };
}

/** Fields of a backend configuration that live in their own columns (or sealed), not in `settings`. */
const OWN_COLUMNS = new Set(['name', 'type', 'quotaBytes', 'zone', 'readPriority', 'weight', 'secretAccessKey']);

/**
 * The non-secret settings of a backend configuration, as stored in `settings`: every field but those with
 * their own column, so a setting added to a backend type later (timeouts…) is stored and restored as is.
 */
export function settingsOf(cfg: BackendConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!OWN_COLUMNS.has(k) && v !== undefined) out[k] = v;
  }
  return out;
}

/** Why a row cannot be turned into a working backend. */
export class UnbuildableBackend extends Error {}

/** The backend configuration a row describes (the secret opened), or UnbuildableBackend saying why not. */
export function fromSettingsRow(r: BackendSettingsRow, sealer: Sealer | undefined): BackendConfig {
  const s = r.settings ?? {};
  const str = (k: string): string | undefined => (typeof s[k] === 'string' ? (s[k] as string) : undefined);
  const common = { ...s, name: r.name, quotaBytes: r.quota_bytes, readPriority: r.read_priority, weight: r.weight, ...(r.zone ? { zone: r.zone } : {}) };
  if (r.type === 'fs') {
    const path = str('path');
    if (!path) throw new UnbuildableBackend(`backend ${r.name}: its row has no fs path (written before schema 6; declare it in the config file again)`);
    return { ...common, type: 'fs', path };
  }
  if (r.type !== 's3') throw new UnbuildableBackend(`backend ${r.name}: unknown type ${JSON.stringify(r.type)}`);
  const bucket = str('bucket');
  const region = str('region');
  const accessKeyId = str('accessKeyId');
  if (!bucket || !region || accessKeyId === undefined || r.secret === null) {
    throw new UnbuildableBackend(`backend ${r.name}: its row has no complete s3 settings (written before schema 6, or without a master key)`);
  }
  if (!sealer) throw new UnbuildableBackend(`backend ${r.name}: its secret is sealed and no master key is loaded`);
  let secretAccessKey: string;
  try {
    secretAccessKey = sealer.open(r.secret);
  } catch (err) {
    throw new UnbuildableBackend(`backend ${r.name}: its secret cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { ...common, type: 's3', region, bucket, prefix: str('prefix') ?? '', accessKeyId, secretAccessKey, forcePathStyle: s.forcePathStyle === true };
}

/**
 * What identifies the built backend: two rows with the same fingerprint give the same Backend, so a reload
 * rebuilds only a backend whose reachability changed (not one whose quota or weight did).
 */
export function fingerprint(cfg: BackendConfig): string {
  return JSON.stringify([cfg.type, settingsOf(cfg), cfg.type === 's3' ? cfg.secretAccessKey : null]);
}
