-- What an import does with leads whose email is already stored (docs/design.md, "Leads that
-- already exist"), and the custom attributes a lead carries beyond its fields.

-- `fail`, `skip` or `update`, chosen per import; jobs recorded before chose `fail`.
ALTER TABLE import_jobs ADD COLUMN on_existing TEXT NOT NULL DEFAULT 'fail'
    CHECK (on_existing IN ('fail', 'skip', 'update'));

-- A CSV's unmapped columns, a JSON lead's `attributes`: a flat object of text, bounded by the
-- importer (shared/src/domain/attributes.rs).
ALTER TABLE leads ADD COLUMN attributes JSONB NOT NULL DEFAULT '{}';
-- The last import that updated the lead, and when its drain did; `created_by` and `import_id`
-- stay the original's.
ALTER TABLE leads ADD COLUMN updated_by_import TEXT;
ALTER TABLE leads ADD COLUMN updated_at TIMESTAMPTZ;
-- When the import whose values the row holds was accepted: an update applies only when its
-- import was accepted at or after this, so a slow or replayed older import never writes over
-- a newer one. Rows stored before the column existed take any update.
ALTER TABLE leads ADD COLUMN written_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity';

-- How a chunk's stored leads split: `successful` stays created + updated (the seed's count).
ALTER TABLE import_chunks ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE import_chunks ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
