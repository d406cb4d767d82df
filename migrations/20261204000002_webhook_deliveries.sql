-- Notifications that an import ended (shared/src/webhook): owed from the moment the outcome
-- that finished the import is recorded, and kept here, the durable store, until delivered or
-- given up on (24 hours after the first attempt).

-- The import's own `callbackUrl`, checked when it was submitted; NULL for none.
ALTER TABLE import_jobs ADD COLUMN callback_url TEXT;

CREATE TABLE webhook_deliveries (
    -- The `webhook-id` header: the same on every attempt, so receivers can drop repeats.
    webhook_id      UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    import_id       TEXT        NOT NULL REFERENCES import_jobs (import_id),
    url             TEXT        NOT NULL,
    -- Set at the first attempt and sent unchanged on every later one.
    body            TEXT,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMPTZ,
    -- The HTTP status of the last attempt; NULL when it got no answer (or was refused before).
    last_status     INTEGER,
    delivered_at    TIMESTAMPTZ,
    gave_up_at      TIMESTAMPTZ,
    UNIQUE (import_id, url)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO leads_runtime;
