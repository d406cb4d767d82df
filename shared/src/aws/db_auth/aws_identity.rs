//! Where to sign for: the region and credentials that both the RDS token and the
//! `GetSecretValue` request are signed with, from a Lambda environment's variables (no
//! `aws-config`, for size) or from an SDK config a caller already has.

use std::fmt;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use super::DbAuthError;

/// Where to sign for: a region and a source of credentials.
#[derive(Clone)]
pub struct AwsIdentity {
    region: String,
    credentials: SharedCredentialsProvider,
}

impl fmt::Debug for AwsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsIdentity")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsIdentity {
    pub fn new(region: impl Into<String>, credentials: SharedCredentialsProvider) -> Self {
        Self {
            region: region.into(),
            credentials,
        }
    }

    /// A Lambda execution environment's: `AWS_REGION` and the function role's credentials,
    /// which Lambda puts in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` for the environment's whole life.
    pub fn from_lambda_env() -> Result<Self, DbAuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbAuthError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or(DbAuthError::MissingRegion)?;
        let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(DbAuthError::MissingCredentials);
        };
        let credentials =
            Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment");
        Ok(Self::new(
            region,
            SharedCredentialsProvider::new(credentials),
        ))
    }

    /// The region and credentials chain of a loaded `aws_config::SdkConfig`, e.g. from
    /// `aws_config::load_defaults(BehaviorVersion::latest())` in a tool run outside Lambda.
    pub fn from_sdk_config(config: &aws_types::SdkConfig) -> Result<Self, DbAuthError> {
        let region = config.region().ok_or(DbAuthError::MissingRegion)?;
        let credentials = config
            .credentials_provider()
            .ok_or(DbAuthError::MissingCredentialsProvider)?;
        Ok(Self::new(region.as_ref(), credentials))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub async fn credentials(&self) -> Result<Credentials, DbAuthError> {
        self.credentials.provide_credentials().await.map_err(|e| {
            DbAuthError::Credentials(
                aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::db_auth::IamTokenSource;
    use crate::aws::db_auth::test_inputs::{
        ACCESS_KEY, HOST, PORT, REGION, SECRET_KEY, SESSION_TOKEN, USER, credentials,
    };

    #[tokio::test]
    async fn identity_from_sdk_config_and_environment() {
        let config = aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(credentials(None)))
            .build();
        let source = IamTokenSource::new(
            AwsIdentity::from_sdk_config(&config).unwrap(),
            HOST,
            PORT,
            USER,
        );
        let token = source.token().await.unwrap().password;
        assert!(
            token.contains("X-Amz-Credential=AKIDEXAMPLE%2F")
                && token.contains("%2Fus-east-1%2Frds-db%2Faws4_request")
        );
        let no_region = aws_types::SdkConfig::builder().build();
        assert!(matches!(
            AwsIdentity::from_sdk_config(&no_region),
            Err(DbAuthError::MissingRegion)
        ));

        let env = |pairs: &'static [(&'static str, &'static str)]| {
            AwsIdentity::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let lambda = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ])
        .unwrap();
        assert_eq!(lambda.region(), "eu-west-1");
        let creds = lambda.credentials().await.unwrap();
        assert_eq!(
            (creds.access_key_id(), creds.session_token()),
            (ACCESS_KEY, Some(SESSION_TOKEN))
        );
        assert!(matches!(
            env(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
            Err(DbAuthError::MissingRegion)
        ));
        assert!(matches!(
            env(&[("AWS_REGION", "us-east-1")]),
            Err(DbAuthError::MissingCredentials)
        ));
    }
}
