-- Schema 5: scoped credentials and managed buckets. See docs/data-model.md ("Credentials and grants").
--
-- credentials.secret_access_key now holds the secret sealed under the master key (core/secrets.ts:
-- `v1:<keyId>:<base64>`); values written by earlier versions in plain text are sealed at the first start
-- with a master key (core/tenants.ts sealPlaintextSecrets), before anything reads them.

ALTER TABLE credentials ADD COLUMN description text NOT NULL DEFAULT '';
-- May create buckets through S3 CreateBucket (it then gets a read-write grant on them and owns them).
ALTER TABLE credentials ADD COLUMN can_create_buckets boolean NOT NULL DEFAULT false;
-- Set by Revoke: the key no longer authenticates; the row stays so the id is never reused.
ALTER TABLE credentials ADD COLUMN revoked_at timestamptz;
ALTER TABLE credentials ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
-- For credentials the configuration file declares: `<file>: <key path>`, named by the admin API's refusals.
ALTER TABLE credentials ADD COLUMN config_ref text;

-- A grant is read-only or read-write, and may confine the credential to keys starting with `prefix`.
ALTER TABLE bucket_grants ADD COLUMN permission text NOT NULL DEFAULT 'read_write'
  CHECK (permission IN ('read', 'read_write'));
ALTER TABLE bucket_grants ADD COLUMN prefix text NOT NULL DEFAULT '';
CREATE INDEX bucket_grants_bucket ON bucket_grants (bucket);

-- The credential that created the bucket through S3 (may delete it when empty); NULL otherwise.
ALTER TABLE buckets ADD COLUMN owner text;
-- For buckets the configuration file declares: `<file>: <key path>`.
ALTER TABLE buckets ADD COLUMN config_ref text;
