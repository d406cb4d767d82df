//! The integration tests: one binary, so one private Redis and one Postgres cluster serve every
//! test (each test has its own database and Redis key prefix, and runs in parallel with the
//! others). A test that would disturb its neighbours (restarting or pausing a server, counting
//! its blocked clients, killing its connections) starts a private server of its own.
//!
//! The fault-injection tests that configure failpoints are a binary of their own
//! (`tests/failpoints`): the `fail` registry is process-wide, so a failpoint configured here
//! would fire in every test's drain.

mod support;

mod api;
mod cache_auth;
mod cancel;
mod cluster;
mod contract;
mod credentials;
mod csv_import;
mod database_auth;
mod database_refusal;
mod database_roles;
mod durability;
mod event_driven;
mod existing_leads;
mod faults;
mod identity;
mod lifecycle_errors;
mod limits;
mod logs;
mod pipeline;
mod redrive;
mod retry;
mod tls;
mod transient_faults;
mod webhooks;
