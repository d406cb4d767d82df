//! The lead importer's library: everything the three Lambdas and the local run share.
//!
//! A tour, in the order a lead travels. The folders are the architecture: a pure core that
//! knows no HTTP, Redis or Postgres type; use cases that drive it; adapters at the edges.
//!
//! * [`domain`] holds one type per lead field (`Email`, `Phone`, ...) whose `parse` is the only
//!   way to make one, and [`domain::Lead`], a lead made of them.
//! * [`job`] is the rest of the pure core: [`job::request`] parses the JSON body of
//!   `POST /leads/import` and [`job::csv_request`] a CSV one into the same request, [`job::plan`] judges every lead and cuts the valid ones into stream
//!   entries, [`job::status`] is a job's progress and the status document derived from it, and
//!   [`job::caller`] is who is asking.
//! * The use cases, one module each, each with its own error enum: [`import`] accepts a
//!   request (record, enqueue, decide the answer), [`status`] reads a job's document (cache
//!   first, Postgres when needed), [`errors_report`] pages an import's every error (or
//!   writes them as CSV with what each lead carried), [`list`] pages a caller's imports,
//!   [`cancel`] stops an import (the ledger decides its undecided chunks as cancelled),
//!   [`retry`] imports an import's failures again as a new import linked to it,
//!   [`drain`] moves stream entries into Postgres one
//!   time-bounded batch per call (its module comment is the crash proof), and [`redrive`] puts
//!   dead letters back once their cause is fixed. [`ports`] names what the import and status
//!   use cases need from the stores, so their decision tables are unit-tested without servers.
//! * Adapters: [`postgres`] is the durable record (one file per table: jobs, chunk outcomes,
//!   leads) and the sign-in that gives every new connection fresh credentials; [`redis`] is
//!   the stream with its consumer group and dead letters, the status cache, and their Lua
//!   scripts, on one server or a Redis Cluster; [`api`] is the HTTP edge (axum routers served
//!   by `lambda_http` and by the local run, the caller's identity, and problem+json, the only
//!   error shape); [`aws`] is the Lambda glue and the database and cache sign-in on AWS.
//! * Wiring: [`config`] reads every knob, [`app`] builds the clients once per execution
//!   environment, [`local_run`] composes the whole pipeline in one process (`make run`, the
//!   tests, the fuzzer), and [`telemetry`] sets up logs.
//!
//! The design and the guarantees are written up in `docs/` at the repository's root.

pub mod api;
pub mod app;
pub mod aws;
pub mod cancel;
pub mod config;
pub mod domain;
pub mod drain;
pub mod drain_starter;
pub mod errors_report;
pub mod import;
pub mod job;
pub mod list;
pub mod local_run;
pub mod ports;
pub mod postgres;
pub mod reconcile;
pub mod redis;
pub mod redrive;
pub mod retry;
pub mod status;
pub mod telemetry;
pub mod webhook;
