-- Schema 007: jobs. A job (drain, rebalance, bucket purge; later repair and scrub passes) is one row that
-- owns many tasks (tasks.job_id). Its progress is an aggregate: the planner records the totals as it
-- enqueues work (once per page, never once per task), and what is done is the total minus the tasks
-- still queued or running (work a planner does itself, like a purge retiring versions, has no task and
-- counts as done when recorded). See docs/jobs.md.
CREATE TABLE jobs (
  id            bigserial PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('drain', 'rebalance', 'purge-bucket', 'repair', 'scrub')),
  -- what the job works on: a backend name (drain), a bucket name (purge-bucket), '' (rebalance)
  target        text NOT NULL DEFAULT '',
  -- running: its tasks are claimed; paused: its queued tasks wait (run_after = infinity) and the planner
  -- stops; cancelling: its queued tasks are gone, the running ones finish; then cancelled, done or failed
  state         text NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'paused', 'cancelling', 'cancelled', 'done', 'failed')),
  params        jsonb NOT NULL DEFAULT '{}',
  -- where the planner stopped (keyset cursor and simulation state); NULL before its first page
  cursor        jsonb,
  -- true once the planner has enqueued everything it will enqueue in this pass
  planned       boolean NOT NULL DEFAULT false,
  -- planning passes so far (a drain plans again when copies appeared meanwhile)
  passes        integer NOT NULL DEFAULT 0,
  items_total   bigint NOT NULL DEFAULT 0,
  bytes_total   bigint NOT NULL DEFAULT 0,
  -- why the job failed or what it waits for (human readable)
  message       text NOT NULL DEFAULT '',
  created_by    text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
-- At most one unfinished job per (kind, target): a second drain of a backend finds the first.
CREATE UNIQUE INDEX jobs_one_open ON jobs (kind, target) WHERE state IN ('running', 'paused', 'cancelling');
CREATE INDEX jobs_open ON jobs (id) WHERE state IN ('running', 'paused', 'cancelling');
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
-- Tasks of a job by state (progress aggregates, cancel, pause).
CREATE INDEX tasks_job_state ON tasks (job_id, state) WHERE job_id IS NOT NULL;
