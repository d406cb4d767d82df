-- The functions' database role: what they need and nothing more. The tables belong to the role
-- that runs the migrations (the owner: `make migrate`, docs/deploy.md); the functions log in as
-- a role that is a member of leads_runtime, which may read and write the three tables and use
-- their sequence, but may create, alter, truncate or drop nothing.

-- Normally made once by the operator (CREATE ROLE needs CREATEROLE, which the owner need not
-- have); made here when the migrating role may (the local run, the tests).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'leads_runtime') THEN
        BEGIN
            CREATE ROLE leads_runtime NOLOGIN;
        EXCEPTION
            -- Made meanwhile by a migration of another database of the same cluster.
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role leads_runtime does not exist, and % may not create it', current_user
                    USING HINT = 'as the master user, once: CREATE ROLE leads_runtime NOLOGIN; then GRANT leads_runtime TO the functions'' login role (docs/deploy.md)';
        END;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON leads, import_jobs, import_chunks TO leads_runtime;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO leads_runtime;

-- PostgreSQL 15 and later no longer let PUBLIC create in the public schema; earlier versions
-- do, which would let the runtime role create tables. (A warning, not an error, when the
-- migrating role does not own the schema.)
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
