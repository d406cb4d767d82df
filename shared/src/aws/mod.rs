//! AWS glue: the Lambda runtime's side of drain-fn, and signing in to Postgres on AWS.

pub mod db_auth;
pub mod lambda;
