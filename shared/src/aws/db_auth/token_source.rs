//! The RDS IAM token as the Store's credential: [`IamTokenSource`] signs a token for one
//! database user with fresh credentials each time it is asked, and says how long to use it.
//! The Store's sign-in (`postgres::sign_in`) caches it and asks again when it is due.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{AwsIdentity, DbAuthError, TOKEN_LIFETIME, generate_rds_auth_token};
use crate::postgres::{Credential, CredentialFuture, CredentialSource};

/// A token is used for this long, well within [`TOKEN_LIFETIME`], so a connection opening at
/// the last moment still has minutes to spare.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(600);
/// A token is also renewed when the credentials it was signed with expire within this margin
/// (a token signed with temporary credentials dies with them).
const CREDENTIALS_EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Signs RDS IAM auth tokens for one database user (`DATABASE_URL`'s host, port and user).
pub struct IamTokenSource {
    identity: AwsIdentity,
    host: String,
    port: u16,
    user: String,
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
        }
    }

    /// Signs with the Lambda environment's region and role ([`AwsIdentity::from_lambda_env`]).
    pub fn from_lambda_env(host: &str, port: u16, user: &str) -> Result<Self, DbAuthError> {
        Ok(Self::new(AwsIdentity::from_lambda_env()?, host, port, user))
    }

    /// A token signed now, to be used for [`TOKEN_RENEW_AFTER`] (less if the credentials it is
    /// signed with expire sooner) and never past [`TOKEN_LIFETIME`].
    pub async fn token(&self) -> Result<Credential, DbAuthError> {
        let credentials = self.identity.credentials().await?;
        let signed_at = SystemTime::now();
        let token = generate_rds_auth_token(
            &credentials,
            self.identity.region(),
            &self.host,
            self.port,
            &self.user,
            signed_at,
        )?;
        let mut renew_after = TOKEN_RENEW_AFTER;
        let mut valid_for = TOKEN_LIFETIME;
        if let Some(expiry) = credentials.expiry() {
            let left = expiry.duration_since(signed_at).unwrap_or_default();
            renew_after = renew_after.min(left.saturating_sub(CREDENTIALS_EXPIRY_MARGIN));
            valid_for = valid_for.min(left);
        }
        tracing::debug!(host = %self.host, user = %self.user, renew_in_s = renew_after.as_secs(), "signed an RDS IAM auth token");
        Ok(Credential {
            username: None,
            password: token,
            renew_after,
            valid_for: Some(valid_for),
        })
    }
}

impl CredentialSource for IamTokenSource {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(self.token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
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
    async fn a_token_is_signed_per_ask_and_used_for_ten_minutes() {
        let (src, calls) = source(None);
        let first = src.token().await.unwrap();
        let second = src.token().await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "no cache here: the Store caches"
        );
        assert!(first.password.starts_with("leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lead_import&"));
        assert!(
            first.password.contains("X-Amz-Security-Token=")
                && first.password.contains("X-Amz-Expires=900")
        );
        assert_eq!(first.username, None, "DATABASE_URL's user");
        assert_eq!(
            (second.renew_after, second.valid_for),
            (TOKEN_RENEW_AFTER, Some(TOKEN_LIFETIME))
        );
        assert!(
            !format!("{first:?}").contains("X-Amz"),
            "never in a Debug string"
        );
    }

    #[tokio::test]
    async fn a_token_is_renewed_before_its_credentials_expire() {
        // Credentials that expire within the margin: renew at once, and never use it past them.
        let (src, _) = source(Some(SystemTime::now() + Duration::from_secs(120)));
        let token = src.token().await.unwrap();
        assert_eq!(token.renew_after, Duration::ZERO);
        assert!(token.valid_for.unwrap() <= Duration::from_secs(120));
        // Credentials valid for 12 minutes: renewed after 7, dead after 12.
        let (src, _) = source(Some(SystemTime::now() + Duration::from_secs(720)));
        let token = src.token().await.unwrap();
        assert!(token.renew_after <= Duration::from_secs(420));
        assert!(token.renew_after > Duration::from_secs(400));
        // Credentials valid for hours: the token's own ten minutes.
        let (src, _) = source(Some(SystemTime::now() + Duration::from_secs(6 * 3600)));
        let token = src.token().await.unwrap();
        assert_eq!(
            (token.renew_after, token.valid_for),
            (TOKEN_RENEW_AFTER, Some(TOKEN_LIFETIME))
        );
    }
}
