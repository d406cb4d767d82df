//! Test harness: real Redis and Postgres servers, and a fresh app per test.
//!
//! One private `redis-server` and one Postgres cluster are started per test binary (or reused
//! when `TEST_REDIS_URL` and `TEST_DATABASE_URL` name running ones). Each test gets its own
//! database and its own Redis key prefix, so tests run in parallel without seeing each other.

pub mod app;
pub mod assertions;
pub mod cache_acl;
pub mod drain;
pub mod events;
pub mod inspect;
pub mod leads;
pub mod log_capture;
pub mod password_postgres;
pub mod private_servers;
pub mod requests;
mod servers;
