-- Schema 1: tenants, backends with quota counters, logical object versions, physical copies, cleanup queue.
-- See docs/data-model.md for the invariants these tables keep.

CREATE TABLE buckets (
  name        text PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- 'config' (from the config file), 'demo' (zero-config bucket), 'admin' (created through the admin API)
  source      text NOT NULL
);

CREATE TABLE credentials (
  access_key_id      text PRIMARY KEY,
  secret_access_key  text NOT NULL,
  source             text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now()
);

-- Which buckets a credential may use.
CREATE TABLE bucket_grants (
  access_key_id  text NOT NULL REFERENCES credentials ON DELETE CASCADE,
  bucket         text NOT NULL REFERENCES buckets ON DELETE CASCADE,
  PRIMARY KEY (access_key_id, bucket)
);

CREATE TABLE backends (
  name            text PRIMARY KEY,
  type            text NOT NULL,
  quota_bytes     bigint NOT NULL DEFAULT 0,           -- 0 = unlimited
  used_bytes      bigint NOT NULL DEFAULT 0,           -- live copies + copies awaiting deletion
  reserved_bytes  bigint NOT NULL DEFAULT 0,           -- promised to writes in progress
  object_count    bigint NOT NULL DEFAULT 0,           -- live copies
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT backends_counters_nonnegative CHECK (used_bytes >= 0 AND reserved_bytes >= 0 AND object_count >= 0)
);

-- One row per logical object version (generation). Today a key has at most one 'live' version; versioning
-- will add states ('noncurrent', 'delete_marker') without changing the shape.
CREATE TABLE object_versions (
  version_id           text PRIMARY KEY,
  bucket               text NOT NULL REFERENCES buckets ON DELETE RESTRICT,
  key                  text COLLATE "C" NOT NULL,
  state                text NOT NULL CHECK (state IN ('pending', 'live')),
  size                 bigint NOT NULL CHECK (size >= 0),
  etag                 text,
  content_type         text,
  content_encoding     text,
  content_disposition  text,
  content_language     text,
  cache_control        text,
  expires              text,
  user_meta            jsonb NOT NULL DEFAULT '{}',
  checksum_algorithm   text,
  checksum_value       text,
  checksum_type        text,
  tag_count            integer NOT NULL DEFAULT 0,
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- refreshed while a pending write streams; stale pending rows are aborted by the janitor
  heartbeat_at         timestamptz NOT NULL DEFAULT now()
);

-- At most one live version per key; also the index LIST walks (keys in byte order thanks to COLLATE "C").
CREATE UNIQUE INDEX object_versions_live ON object_versions (bucket, key) WHERE state = 'live';
CREATE INDEX object_versions_pending ON object_versions (heartbeat_at) WHERE state = 'pending';

-- Physical copies of a version. The physical key contains the version id, so it is unique per write.
CREATE TABLE object_copies (
  version_id    text NOT NULL REFERENCES object_versions ON DELETE CASCADE,
  backend       text NOT NULL REFERENCES backends,
  physical_key  text NOT NULL,
  size          bigint NOT NULL,
  state         text NOT NULL CHECK (state IN ('pending', 'live')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (version_id, backend)
);
CREATE UNIQUE INDEX object_copies_physical ON object_copies (backend, physical_key);

-- The outbox: physical deletions implied by committed metadata changes, inserted in the same transaction.
CREATE TABLE cleanup_jobs (
  id               bigserial PRIMARY KEY,
  backend          text NOT NULL,
  physical_key     text NOT NULL,
  release_bytes    bigint NOT NULL DEFAULT 0,   -- subtracted from backends.used_bytes once the bytes are gone
  release_objects  integer NOT NULL DEFAULT 0,  -- subtracted from backends.object_count likewise
  reason           text NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  run_after        timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cleanup_jobs_due ON cleanup_jobs (run_after, id);

-- Small key/value facts about this deployment (instance bootstrap state).
CREATE TABLE settings (
  key    text PRIMARY KEY,
  value  text NOT NULL
);
