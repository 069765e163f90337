-- Schema 4: replication. Several copies per version, copies that are known bad, per-bucket replica
-- counts, read priorities. See docs/data-model.md ("Replication").

-- The number of copies a bucket's versions should have; NULL follows placement.replicas.
ALTER TABLE buckets ADD COLUMN replicas integer CHECK (replicas BETWEEN 1 AND 16);

-- A copy is 'bad' once it answered NotFound, had the wrong size or failed verification: it is never read
-- again, still counts in the ledger (its bytes may exist), and is retired by repair once a good copy
-- replaces it. It is never deleted while it is the version's last copy.
ALTER TABLE object_copies DROP CONSTRAINT object_copies_state_check;
ALTER TABLE object_copies ADD CONSTRAINT object_copies_state_check CHECK (state IN ('pending', 'live', 'bad'));
ALTER TABLE object_copies ADD COLUMN bad_reason text;
-- When scrub last verified the copy (NULL: never); scrub visits the least recently verified first.
ALTER TABLE object_copies ADD COLUMN verified_at timestamptz;
CREATE INDEX object_copies_backend ON object_copies (backend, version_id);
CREATE INDEX object_copies_verified ON object_copies (verified_at NULLS FIRST, version_id, backend) WHERE state = 'live';
-- Pending copies of live versions (repair and moves) are owned by the task that creates them.
ALTER TABLE object_copies ADD COLUMN task_id bigint;

-- Reads prefer lower read_priority among healthy copies (then lower latency).
ALTER TABLE backends ADD COLUMN read_priority integer NOT NULL DEFAULT 0;

CREATE INDEX tasks_job ON tasks (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX tasks_kind_version ON tasks (kind, (payload->>'versionId')) WHERE payload ? 'versionId';

-- Multipart uploads of replicated buckets: every part streams to the native upload of each target. The
-- first target is the upload row itself (multipart_uploads.backend); the others are rows here, each with
-- its native upload id and its own reservation. Part ETags of those targets are in multipart_part_replicas
-- (the part's row keeps the first target's). Rows are removed with their upload by the copy layer.
CREATE TABLE multipart_replicas (
  upload_id          text NOT NULL,
  backend            text NOT NULL REFERENCES backends,
  backend_upload_id  text NOT NULL,
  reserved_bytes     bigint NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0),
  PRIMARY KEY (upload_id, backend)
);
CREATE INDEX multipart_replicas_backend ON multipart_replicas (backend);
CREATE TABLE multipart_part_replicas (
  upload_id     text NOT NULL,
  part_number   integer NOT NULL,
  backend       text NOT NULL,
  backend_etag  text NOT NULL,
  PRIMARY KEY (upload_id, part_number, backend)
);
