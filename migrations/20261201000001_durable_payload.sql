-- Postgres, not Redis, holds what was accepted: every import's valid leads are kept with its
-- job, so that a chunk Redis lost can be queued again (the reconciler, shared/src/reconcile.rs).

-- The valid leads in seq order, as JSON (shared/src/job/leads_json.rs), zstd-compressed;
-- chunk k holds leads [k * batch_size, (k + 1) * batch_size). NULL for jobs accepted before.
ALTER TABLE import_jobs ADD COLUMN payload BYTEA;
-- Every chunk decided; set by the reconciler, which then leaves the job alone.
ALTER TABLE import_jobs ADD COLUMN finished_at TIMESTAMPTZ;
-- When the reconciler last looked: unfinished jobs are visited oldest look first.
ALTER TABLE import_jobs ADD COLUMN checked_at TIMESTAMPTZ;
CREATE INDEX import_jobs_unfinished_idx ON import_jobs (checked_at NULLS FIRST, created_at)
    WHERE finished_at IS NULL;
