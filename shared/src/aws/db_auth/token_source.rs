//! The cache in front of the token signer: [`IamTokenSource`] hands out the same token until
//! it is due for renewal, so asking for one before every connection attempt costs a lock,
//! not a credentials lookup and a signature.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{AwsIdentity, DbAuthError, TOKEN_LIFETIME, generate_rds_auth_token};

/// [`IamTokenSource`] signs a new token once its cached one is this old, well within
/// [`TOKEN_LIFETIME`], so a connection opening at the last moment still has minutes to spare.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(600);
/// A token is also renewed when the credentials it was signed with expire within this margin
/// (a token signed with temporary credentials dies with them).
const CREDENTIALS_EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Hands out RDS IAM auth tokens for one database user, signing a new one when the cached one
/// is [`TOKEN_RENEW_AFTER`] old (or its credentials are about to expire). Cheap to call before
/// every connection attempt; share it with an `Arc`.
pub struct IamTokenSource {
    identity: AwsIdentity,
    host: String,
    port: u16,
    user: String,
    renew_after: Duration,
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: Arc<str>,
    renew_at: Instant,
}

impl fmt::Debug for IamTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamTokenSource")
            .field("region", &self.identity.region())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl IamTokenSource {
    pub fn new(identity: AwsIdentity, host: &str, port: u16, user: &str) -> Self {
        Self {
            identity,
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            renew_after: TOKEN_RENEW_AFTER,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Signs with the Lambda environment's region and role ([`AwsIdentity::from_lambda_env`]).
    pub fn from_lambda_env(host: &str, port: u16, user: &str) -> Result<Self, DbAuthError> {
        Ok(Self::new(AwsIdentity::from_lambda_env()?, host, port, user))
    }

    /// Changes how old a cached token may get (at most [`TOKEN_LIFETIME`]).
    pub fn with_renew_after(mut self, renew_after: Duration) -> Self {
        self.renew_after = renew_after.min(TOKEN_LIFETIME);
        self
    }

    /// A token valid for at least `TOKEN_LIFETIME - renew_after` (5 minutes by default).
    pub async fn token(&self) -> Result<Arc<str>, DbAuthError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref().filter(|c| now < c.renew_at) {
            return Ok(c.token.clone());
        }
        let credentials = self.identity.credentials().await?;
        let signed_at = SystemTime::now();
        let token: Arc<str> = generate_rds_auth_token(
            &credentials,
            self.identity.region(),
            &self.host,
            self.port,
            &self.user,
            signed_at,
        )?
        .into();
        let mut valid_for = self.renew_after;
        if let Some(expiry) = credentials.expiry() {
            let left = expiry.duration_since(signed_at).unwrap_or_default();
            valid_for = valid_for.min(left.saturating_sub(CREDENTIALS_EXPIRY_MARGIN));
        }
        tracing::debug!(host = %self.host, user = %self.user, renew_in_s = valid_for.as_secs(), "signed an RDS IAM auth token");
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: now + valid_for,
        });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

    use crate::aws::db_auth::test_inputs::{
        ACCESS_KEY, HOST, PORT, REGION, SECRET_KEY, SESSION_TOKEN, USER,
    };

    #[derive(Debug)]
    struct CountingProvider {
        calls: Arc<AtomicUsize>,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for CountingProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let creds = Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                Some(SESSION_TOKEN.into()),
                self.expiry,
                "test",
            );
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(creds))
        }
    }

    fn source(expiry: Option<SystemTime>) -> (IamTokenSource, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(CountingProvider {
            calls: calls.clone(),
            expiry,
        });
        (
            IamTokenSource::new(AwsIdentity::new(REGION, provider), HOST, PORT, USER),
            calls,
        )
    }

    #[tokio::test]
    async fn token_source_caches_until_renewal() {
        let (src, calls) = source(None);
        let first = src.token().await.unwrap();
        let second = src.token().await.unwrap();
        assert_eq!(first, second);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the second call is served from the cache"
        );
        assert!(first.starts_with("leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lead_import&"));
        assert!(first.contains("X-Amz-Security-Token=") && first.contains("X-Amz-Expires=900"));

        let (src, calls) = source(None);
        let src = src.with_renew_after(Duration::ZERO);
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "an expired cache entry is signed anew"
        );
    }

    #[tokio::test]
    async fn token_source_renews_before_credentials_expire() {
        // Credentials that expire within the margin: every call signs with fresh ones.
        let (src, calls) = source(Some(SystemTime::now() + Duration::from_secs(120)));
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Credentials valid for hours: cached.
        let (src, calls) = source(Some(SystemTime::now() + Duration::from_secs(6 * 3600)));
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
