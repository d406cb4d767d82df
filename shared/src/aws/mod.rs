//! AWS glue: the Lambda runtime's side of drain-fn, and signing in to Postgres and to the
//! cache (ElastiCache) on AWS.

pub mod cache_auth;
pub mod db_auth;
pub mod lambda;
