-- Schema 3: one leased task queue (replaces cleanup_jobs), backends with runtime state, per-bucket
-- counters kept by deltas, multipart completion recovery. See docs/data-model.md and docs/tasks.md.

-- The task queue. Every physical transition that happens after a metadata change (deleting an orphaned
-- copy, aborting a native upload, and later replication, repair, drains…) is a row here, inserted in the
-- transaction of that change. A task is claimed in one statement (FOR UPDATE SKIP LOCKED); each claim
-- bumps lease_token, and a task completes only with the token of the claim that ran it (fencing).
CREATE TABLE tasks (
  id             bigserial PRIMARY KEY,
  kind           text NOT NULL,
  payload        jsonb NOT NULL DEFAULT '{}',
  state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'active', 'dead')),
  run_after      timestamptz NOT NULL DEFAULT now(),
  lease_owner    text,
  lease_until    timestamptz,
  lease_token    bigint NOT NULL DEFAULT 0,
  attempts       integer NOT NULL DEFAULT 0,
  max_attempts   integer NOT NULL DEFAULT 25,
  progress       jsonb,
  -- at most one queued/active task per singleton key (e.g. one sweep of a kind across all instances)
  singleton_key  text,
  job_id         bigint,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_due ON tasks (run_after, id) WHERE state = 'queued';
CREATE INDEX tasks_leases ON tasks (lease_until) WHERE state = 'active';
CREATE INDEX tasks_dead ON tasks (updated_at) WHERE state = 'dead';
CREATE UNIQUE INDEX tasks_singleton ON tasks (singleton_key) WHERE singleton_key IS NOT NULL AND state <> 'dead';
-- delete-copy tasks by physical key: the ledger check and "is a deletion already queued" look them up
CREATE INDEX tasks_delete_copy ON tasks ((payload->>'backend'), (payload->>'physicalKey')) WHERE kind = 'delete-copy';

INSERT INTO tasks (kind, payload, run_after, attempts, last_error, created_at)
SELECT 'delete-copy',
       jsonb_strip_nulls(jsonb_build_object('backend', backend, 'physicalKey', physical_key, 'uploadId', upload_id,
         'releaseBytes', release_bytes, 'releaseObjects', release_objects, 'reason', reason)),
       run_after, attempts, last_error, created_at
FROM cleanup_jobs;
DROP TABLE cleanup_jobs;

-- Backends are rows with runtime state. 'config' rows are declared by the config file; the state says
-- what placement and reads may do with the backend:
--   active     takes new copies and serves reads
--   read_only  serves reads, takes no new copies
--   draining   serves reads while its copies are moved away; takes no new copies
--   removed    no longer used (its rows stay for the record)
ALTER TABLE backends ADD COLUMN state text NOT NULL DEFAULT 'active'
  CHECK (state IN ('active', 'read_only', 'draining', 'removed'));
ALTER TABLE backends ADD COLUMN source text NOT NULL DEFAULT 'config';
ALTER TABLE backends ADD COLUMN zone text;
ALTER TABLE backends ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Per-bucket live object count and bytes. Writers append deltas (no hot row); a worker folds them into
-- bucket_stats; readers add the unfolded deltas, so the figures are exact at any moment.
CREATE TABLE bucket_stats (
  bucket        text PRIMARY KEY REFERENCES buckets ON DELETE CASCADE,
  object_count  bigint NOT NULL DEFAULT 0,
  total_bytes   bigint NOT NULL DEFAULT 0
);
CREATE TABLE bucket_stat_deltas (
  id       bigserial PRIMARY KEY,
  bucket   text NOT NULL,
  objects  bigint NOT NULL,
  bytes    bigint NOT NULL
);
CREATE INDEX bucket_stat_deltas_bucket ON bucket_stat_deltas (bucket);
INSERT INTO bucket_stats (bucket, object_count, total_bytes)
SELECT b.name, count(v.version_id), coalesce(sum(v.size), 0)
FROM buckets b LEFT JOIN object_versions v ON v.bucket = b.name AND v.state = 'live'
GROUP BY b.name;

-- Multipart completion: when it began (and, while it runs, its heartbeat), so a completion left behind by
-- a crash is recognised and rolled back; the upload id on the version it produced, so a repeated
-- Complete of an upload that did complete answers with that version.
ALTER TABLE multipart_uploads ADD COLUMN completing_since timestamptz;
CREATE INDEX multipart_uploads_completing ON multipart_uploads (completing_since) WHERE state = 'completing';
ALTER TABLE object_versions ADD COLUMN upload_id text;
