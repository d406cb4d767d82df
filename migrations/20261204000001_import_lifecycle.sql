-- An import followed to its end (issue 15): cancelled, retried, listed.

-- What the leads refused at import carried (shared/src/job/original_rows.rs), zstd-compressed,
-- for the errors report; NULL when none was refused (or for jobs accepted before).
ALTER TABLE import_jobs ADD COLUMN rejected_rows BYTEA;
-- Set by the cancel, in the transaction that decides every chunk not yet decided as cancelled.
ALTER TABLE import_jobs ADD COLUMN cancelled_at TIMESTAMPTZ;
-- A retry of an import's failures names the import it retries.
ALTER TABLE import_jobs ADD COLUMN parent_import_id TEXT REFERENCES import_jobs (import_id);
CREATE INDEX import_jobs_parent_idx ON import_jobs (parent_import_id)
    WHERE parent_import_id IS NOT NULL;
-- A caller's imports, newest first (GET /leads/imports).
CREATE INDEX import_jobs_created_by_idx ON import_jobs (created_by, created_at DESC, import_id DESC);
