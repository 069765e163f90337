import type { ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  CredentialService,
  Permission,
  type CreateCredentialRequest,
  type CredentialSchema,
  type GetCredentialRequest,
  type Grant as WireGrant,
  type ListCredentialsRequest,
  type RevokeCredentialRequest,
  type UpdateCredentialRequest,
} from '../../gen/s3o/admin/v1/credentials_pb.js';
import { invalidField } from '../core/control-errors.js';
import type { CredentialManager, GrantInput, ManagedCredential } from '../core/credentials.js';
import type { Logger } from '../log.js';
import { controlCall } from './backends-service.js';

/**
 * s3o.admin.v1.CredentialService over core/credentials.ts: converts between wire messages and core's
 * plain objects; errors go through the control-plane mapping (FieldViolation, ConfigOwned details).
 * Secrets appear in exactly one response field, CreateCredentialResponse.secret_access_key.
 */

const PERMISSION = { read: Permission.READ, read_write: Permission.READ_WRITE } as const;

/** A credential as the wire message (never a secret). */
export function credentialToWire(c: ManagedCredential): MessageInitShape<typeof CredentialSchema> {
  return {
    accessKeyId: c.accessKeyId,
    description: c.description,
    source: c.source,
    configRef: c.configRef ?? '',
    canCreateBuckets: c.canCreateBuckets,
    grants: c.grants.map((g) => ({ bucket: g.bucket, permission: PERMISSION[g.permission], prefix: g.prefix })),
    createdAt: timestampFromDate(c.createdAt),
    updatedAt: timestampFromDate(c.updatedAt),
    ...(c.revokedAt ? { revokedAt: timestampFromDate(c.revokedAt) } : {}),
  };
}

function grantsFromWire(grants: readonly WireGrant[], field: string): GrantInput[] {
  return grants.map((g, i) => {
    const permission = g.permission === Permission.READ ? 'read' : g.permission === Permission.READ_WRITE ? 'read_write' : undefined;
    if (permission === undefined) throw invalidField(`${field}[${i}].permission`, 'must be PERMISSION_READ or PERMISSION_READ_WRITE');
    return { bucket: g.bucket, permission, prefix: g.prefix };
  });
}

export class CredentialServiceImpl implements ServiceImpl<typeof CredentialService> {
  readonly #creds: CredentialManager;
  readonly #log: Logger;

  constructor(creds: CredentialManager, log: Logger) {
    this.#creds = creds;
    this.#log = log;
  }

  #call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    return controlCall(this.#log, method, fn);
  }

  createCredential(req: CreateCredentialRequest) {
    return this.#call('CreateCredential', async () => {
      const { credential, secretAccessKey } = await this.#creds.create({
        description: req.description,
        grants: grantsFromWire(req.grants, 'grants'),
        canCreateBuckets: req.canCreateBuckets,
      });
      this.#log.info('credential created', { accessKeyId: credential.accessKeyId, grants: credential.grants.length });
      return { credential: credentialToWire(credential), secretAccessKey };
    });
  }

  getCredential(req: GetCredentialRequest) {
    return this.#call('GetCredential', async () => ({ credential: credentialToWire(await this.#creds.get(req.accessKeyId)) }));
  }

  listCredentials(req: ListCredentialsRequest) {
    return this.#call('ListCredentials', async () => ({
      credentials: (await this.#creds.list({ includeRevoked: req.includeRevoked, ...(req.bucket ? { bucket: req.bucket } : {}) })).map(credentialToWire),
    }));
  }

  updateCredential(req: UpdateCredentialRequest) {
    return this.#call('UpdateCredential', async () => {
      const set: Parameters<CredentialManager['update']>[1] = {};
      if (req.description !== undefined) set.description = req.description;
      if (req.canCreateBuckets !== undefined) set.canCreateBuckets = req.canCreateBuckets;
      if (req.grants !== undefined) set.grants = grantsFromWire(req.grants.grants, 'grants.grants');
      const c = await this.#creds.update(req.accessKeyId, set);
      this.#log.info('credential updated', { accessKeyId: c.accessKeyId });
      return { credential: credentialToWire(c) };
    });
  }

  revokeCredential(req: RevokeCredentialRequest) {
    return this.#call('RevokeCredential', async () => {
      const c = await this.#creds.revoke(req.accessKeyId);
      this.#log.info('credential revoked', { accessKeyId: c.accessKeyId });
      return { credential: credentialToWire(c) };
    });
  }
}
