//! The `leads` binary, run as a subprocess against the real local run (API and drain, real
//! Redis and Postgres), as a person or a script would run it.
//!
//! `follow.rs` uses #15's endpoints (errors report, list, cancel, retry) by the names of that
//! issue's contract.

mod auth;
mod follow;
mod import;
mod output;
mod support;
