-- Schema 2: native multipart uploads, object tags, bucket CORS, multipart-aware cleanup jobs.

-- Object tags as a JSON object {key: value}; tag_count (schema 1) stays in step with it.
ALTER TABLE object_versions ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
-- Number of parts of a multipart object (NULL for single PUTs); GET ?partNumber uses it.
ALTER TABLE object_versions ADD COLUMN parts_count integer;
-- Sizes of those parts in order (JSON array), so GET/HEAD ?partNumber=N can serve part N.
ALTER TABLE object_versions ADD COLUMN part_sizes jsonb;

-- CORS rules per bucket as S3's CORSConfiguration in JSON; NULL = no configuration.
ALTER TABLE buckets ADD COLUMN cors jsonb;

-- A job with upload_id aborts that native multipart upload on the backend before deleting physical_key.
ALTER TABLE cleanup_jobs ADD COLUMN upload_id text;

-- An in-progress multipart upload. Its backend and physical key are fixed at creation; parts reserve
-- quota on that backend as they arrive (reserved_bytes is their sum, also counted in backends.reserved_bytes).
CREATE TABLE multipart_uploads (
  upload_id            text PRIMARY KEY,
  bucket               text NOT NULL REFERENCES buckets ON DELETE RESTRICT,
  key                  text COLLATE "C" NOT NULL,
  version_id           text NOT NULL UNIQUE,
  backend              text NOT NULL REFERENCES backends,
  physical_key         text NOT NULL,
  backend_upload_id    text NOT NULL,
  state                text NOT NULL CHECK (state IN ('active', 'completing')),
  content_type         text,
  content_encoding     text,
  content_disposition  text,
  content_language     text,
  cache_control        text,
  expires              text,
  user_meta            jsonb NOT NULL DEFAULT '{}',
  tags                 jsonb NOT NULL DEFAULT '{}',
  checksum_algorithm   text,
  checksum_type        text,
  reserved_bytes       bigint NOT NULL DEFAULT 0,
  initiated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX multipart_uploads_listing ON multipart_uploads (bucket, key, upload_id);
CREATE INDEX multipart_uploads_age ON multipart_uploads (initiated_at);

CREATE TABLE multipart_parts (
  upload_id       text NOT NULL REFERENCES multipart_uploads ON DELETE CASCADE,
  part_number     integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  size            bigint NOT NULL,
  etag            text NOT NULL,           -- hex MD5 of the part, what the client sees
  backend_etag    text NOT NULL,           -- what the backend needs to complete
  checksum_value  text,                    -- base64, in the upload's checksum algorithm
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (upload_id, part_number)
);
