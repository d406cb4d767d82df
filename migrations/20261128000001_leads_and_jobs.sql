-- Leads, and the bookkeeping that makes the drain's effect exactly-once.

CREATE TABLE leads (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name   TEXT        NOT NULL,
    -- Stored normalized (trimmed, lower-cased) by the importer; the CHECK keeps other writers
    -- honest so that the unique index below really means one lead per address.
    email       TEXT        NOT NULL CHECK (email = lower(btrim(email))),
    phone       TEXT,
    status      TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    created_by  TEXT        NOT NULL,
    import_id   TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX leads_email_key ON leads (email);
CREATE INDEX leads_import_id_idx ON leads (import_id);

-- One row per accepted import, written before anything is queued: the durable record that
-- idempotent retries and status (once the Redis cache has expired) are answered from.
CREATE TABLE import_jobs (
    import_id     TEXT        PRIMARY KEY,
    created_by    TEXT        NOT NULL,
    payload_hash  TEXT        NOT NULL,
    total         INTEGER     NOT NULL CHECK (total >= 0),
    chunk_count   INTEGER     NOT NULL CHECK (chunk_count >= 0),
    -- With `rejected`, enough to know which lead indexes each chunk held, even when an entry
    -- was deleted from the stream before it was read.
    batch_size    INTEGER     NOT NULL CHECK (batch_size > 0),
    -- Leads refused at import (invalid, duplicate inside the import): [{index, error, ...}]
    rejected      JSONB       NOT NULL DEFAULT '[]',
    created_at    TIMESTAMPTZ NOT NULL,
    -- Set once the stream entries are known to be in Redis, with their ids (by seq).
    queued_at     TIMESTAMPTZ,
    entry_ids     TEXT[]
);
CREATE INDEX import_jobs_entry_ids_idx ON import_jobs USING gin (entry_ids);

-- One row per stream entry whose outcome is decided, written in the same transaction as the
-- entry's leads. Its primary key is what turns a redelivered entry into a no-op.
CREATE TABLE import_chunks (
    import_id    TEXT        NOT NULL REFERENCES import_jobs (import_id),
    seq          INTEGER     NOT NULL CHECK (seq >= 0),
    successful   INTEGER     NOT NULL,
    failed       INTEGER     NOT NULL,
    dead         BOOLEAN     NOT NULL DEFAULT false,
    errors       JSONB       NOT NULL DEFAULT '[]',
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (import_id, seq)
);
