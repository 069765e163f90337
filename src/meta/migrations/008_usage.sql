-- Schema 008: usage counters per calendar month (UTC), per backend and per bucket. Each instance counts in
-- memory and adds its deltas here every few seconds in ONE statement (meta/queries/usage.ts flushUsage);
-- there is never a write per request. See docs/data-model.md ("Usage counters").
--   backend rows: the calls this orchestrator makes to the provider (its own background work included)
--                 and the bytes streamed to it (bytes_in) and from it (bytes_out);
--   bucket rows:  the authorised S3 requests clients send for the bucket, with their request and response
--                 body bytes.
-- Requests are split into S3 pricing classes: A (PUT, COPY, POST, LIST, multipart calls) and B (GET, HEAD,
-- everything else); the exact mapping is in docs/data-model.md.
CREATE TABLE usage_monthly (
  scope       text   NOT NULL CHECK (scope IN ('backend', 'bucket')),
  -- the backend's or the bucket's name (rows outlive a removed backend or a deleted bucket: history)
  name        text   NOT NULL,
  -- the first day of the calendar month (UTC) the counts belong to
  month       date   NOT NULL CHECK (extract(day FROM month) = 1),
  requests_a  bigint NOT NULL DEFAULT 0 CHECK (requests_a >= 0),
  requests_b  bigint NOT NULL DEFAULT 0 CHECK (requests_b >= 0),
  bytes_in    bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out   bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, name, month)
);

-- The last flush each instance (a random id per process) applied: a flush whose reply was lost is retried
-- with the same sequence number and then changes nothing, so a batch is never counted twice.
CREATE TABLE usage_flushes (
  instance    text   PRIMARY KEY,
  seq         bigint NOT NULL,
  flushed_at  timestamptz NOT NULL DEFAULT now()
);
