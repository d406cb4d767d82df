//! The lead importer's library: everything the three Lambdas and the local run share.
//!
//! A tour, in the order a lead travels:
//!
//! * [`import_request`] parses the body of `POST /leads/import`; [`domain`] holds one type per
//!   lead field (`Email`, `Phone`, ...) whose `parse` is the only way to make one.
//! * [`import_plan`] judges every lead, finds duplicates inside the import and cuts the valid
//!   leads into stream entries.
//! * [`store`] is Postgres: the job's durable record, the `leads` table, and each entry's
//!   recorded outcome — the fact that makes replays harmless.
//! * [`queue`] is the Redis stream `lead:imports` with its consumer group and dead letters;
//!   [`status_cache`] is the `import:job:{id}` hash clients poll.
//! * [`drain`] moves entries from the stream to Postgres, one time-bounded batch per call;
//!   [`redrive`] puts dead letters back once their cause is fixed.
//! * [`identity`] reads the caller from the authorizer's request context.
//! * [`http`] is the API (axum routers served by `lambda_http` and by the local run);
//!   [`problem`] is its only error shape; [`job_status`] its status document.
//! * [`config`] reads every knob; [`db_auth`] signs in to Postgres on AWS (IAM token or
//!   Secrets Manager); [`telemetry`] sets up logs.

pub mod app;
pub mod config;
pub mod db_auth;
pub mod domain;
pub mod drain;
pub mod http;
pub mod identity;
pub mod import_plan;
pub mod import_request;
pub mod job_status;
pub mod keys;
pub mod lambda;
#[cfg(feature = "local-servers")]
pub mod local_servers;
pub mod problem;
pub mod queue;
mod redis_conn;
pub mod redrive;
pub mod status_cache;
pub mod store;
pub mod telemetry;
