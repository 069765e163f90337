-- Schema 6: backends are runtime rows. Everything needed to reach a backend lives in its row, so every
-- instance builds the same fleet from the database and a backend added through the admin API is used by
-- all of them (docs/data-model.md, "Backends as rows"; docs/admin-api.md, BackendService).

-- Type-specific settings without secrets: s3 {endpoint, region, bucket, prefix, forcePathStyle,
-- accessKeyId}; fs {path}.
ALTER TABLE backends ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
-- The provider secret (s3 secret access key) sealed with AES-256-GCM under the master key
-- (core/secrets.ts: `v1:<key id>:<data>`); NULL for fs backends.
ALTER TABLE backends ADD COLUMN secret text;
-- Relative share of new copies under `spread` (0: the backend takes no new copies under any strategy).
ALTER TABLE backends ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000);
-- Config-owned rows: the file and entry that declare them ("/etc/s3o.yaml: backends[2]"), named by the
-- admin API when it refuses to change them; NULL for rows the API owns.
ALTER TABLE backends ADD COLUMN config_ref text;
-- Position in the file for config-owned rows: placement order (pack) is file order, then API rows by age.
ALTER TABLE backends ADD COLUMN config_index integer;
-- Set when the file stopped declaring a backend that still held data: it takes no new copies and waits
-- for a drain or purge; once it holds nothing it becomes `removed`.
ALTER TABLE backends ADD COLUMN removal_requested_at timestamptz;

-- Rows written before this schema are config-owned unless the API made them.
UPDATE backends SET source = 'api' WHERE source NOT IN ('config', 'api');
ALTER TABLE backends ADD CONSTRAINT backends_source_check CHECK (source IN ('config', 'api'));
