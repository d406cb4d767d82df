//! The cache in front of the ElastiCache token signer: [`ElastiCacheTokenSource`] hands out
//! the same token until it is due for renewal, so that every connection (and every node's, in
//! a cluster) asking for one costs a lock, not a credentials lookup and a signature. It is the
//! [`RedisCredentialSource`] of the Redis connections with `REDIS_AUTH=iam`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;

use super::{CacheArn, CacheAuthError, TOKEN_LIFETIME, generate_elasticache_auth_token};
use crate::aws::db_auth::{AwsIdentity, TOKEN_RENEW_AFTER};
use crate::redis::credentials::{CredentialsError, RedisCredentialSource, RedisCredentials};

/// A token is also renewed when the credentials it was signed with expire within this margin
/// (a token signed with temporary credentials dies with them).
const CREDENTIALS_EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Hands out ElastiCache IAM auth tokens for one user and cache, signing a new one when the
/// cached one is `TOKEN_RENEW_AFTER` (10 minutes) old, or its credentials are about to
/// expire: a connection opening at the last moment still has 5 minutes to spare.
pub struct ElastiCacheTokenSource {
    identity: AwsIdentity,
    cache: CacheArn,
    user: String,
    renew_after: Duration,
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: Arc<str>,
    renew_at: Instant,
}

impl fmt::Debug for ElastiCacheTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElastiCacheTokenSource")
            .field("cache", &self.cache)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ElastiCacheTokenSource {
    pub fn new(identity: AwsIdentity, cache: CacheArn, user: &str) -> Self {
        Self {
            identity,
            cache,
            user: user.to_owned(),
            renew_after: TOKEN_RENEW_AFTER,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Changes how old a cached token may get (at most [`TOKEN_LIFETIME`]).
    pub fn with_renew_after(mut self, renew_after: Duration) -> Self {
        self.renew_after = renew_after.min(TOKEN_LIFETIME);
        self
    }

    /// A token valid for at least `TOKEN_LIFETIME - renew_after` (5 minutes by default).
    pub async fn token(&self) -> Result<Arc<str>, CacheAuthError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref().filter(|c| now < c.renew_at) {
            return Ok(c.token.clone());
        }
        let credentials = self.identity.credentials().await?;
        let signed_at = SystemTime::now();
        let token: Arc<str> =
            generate_elasticache_auth_token(&credentials, &self.cache, &self.user, signed_at)?
                .into();
        let mut valid_for = self.renew_after;
        if let Some(expiry) = credentials.expiry() {
            let left = expiry.duration_since(signed_at).unwrap_or_default();
            valid_for = valid_for.min(left.saturating_sub(CREDENTIALS_EXPIRY_MARGIN));
        }
        tracing::debug!(cache = %self.cache.name(), user = %self.user, renew_in_s = valid_for.as_secs(), "signed an ElastiCache IAM auth token");
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: now + valid_for,
        });
        Ok(token)
    }
}

impl RedisCredentialSource for ElastiCacheTokenSource {
    fn credentials(&self) -> BoxFuture<'_, Result<RedisCredentials, CredentialsError>> {
        Box::pin(async move {
            Ok(RedisCredentials {
                username: self.user.clone(),
                password: self.token().await?.to_string(),
            })
        })
    }

    /// Open connections sign in again as often as the token is renewed.
    fn renew_every(&self) -> Duration {
        self.renew_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::SharedCredentialsProvider;

    use crate::aws::db_auth::test_inputs::{REGION, credentials};

    fn source() -> ElastiCacheTokenSource {
        let cache =
            CacheArn::parse("arn:aws:elasticache:us-east-1:123456789012:serverlesscache:leads")
                .unwrap();
        let identity = AwsIdentity::new(REGION, SharedCredentialsProvider::new(credentials(None)));
        ElastiCacheTokenSource::new(identity, cache, "lead-import")
    }

    #[tokio::test]
    async fn the_source_hands_out_the_user_and_a_cached_token() {
        let src = source();
        let first = src.credentials().await.unwrap();
        let second = src.credentials().await.unwrap();
        assert_eq!(first, second, "served from the cache until renewal");
        assert_eq!(first.username, "lead-import");
        assert!(
            first.password.starts_with(
                "leads/?Action=connect&User=lead-import&ResourceType=ServerlessCache&"
            ) && first.password.contains("X-Amz-Expires=900"),
            "{first:?}"
        );
        assert!(
            !format!("{first:?}").contains("X-Amz"),
            "Debug never shows the token"
        );
        assert_eq!(src.renew_every(), TOKEN_RENEW_AFTER);

        // Renewed at once: a new signature (the signing time is in the token, to the second).
        let src = source().with_renew_after(Duration::ZERO);
        let first = src.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_ne!(first, src.token().await.unwrap());
    }
}
