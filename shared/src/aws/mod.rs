//! AWS glue: the Lambda runtime's side of drain-fn, and signing in to Postgres and to the
//! cache (ElastiCache) on AWS.

pub mod cache_auth;
pub mod db_auth;
pub mod lambda;

/// The AWS SDK's configuration for its clients (Lambda, EventBridge): the default chain
/// (region, credentials, `AWS_ENDPOINT_URL_*` overrides) on an HTTPS client using rustls with
/// ring, the crypto every other client here uses (the SDK's default would add aws-lc, and two
/// providers leave rustls unable to pick one).
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}
