//! How the functions authenticate to Postgres on AWS, chosen by `DATABASE_AUTH`:
//!
//! - `password` (the default, for the local run): `DATABASE_URL` carries the password.
//! - `secret`: `DATABASE_SECRET_ARN` names a Secrets Manager secret in the RDS JSON format
//!   (`{"username", "password", "host", "port", "dbname"}`, or just `username` and `password`
//!   for a secret that RDS manages itself); [`SecretSource`] reads it with [`read_rds_secret`].
//! - `iam`: `DATABASE_URL` has no password; an RDS IAM auth token from [`IamTokenSource`] is
//!   the password. A token is valid for 15 minutes, and is checked only when a connection
//!   opens, so open connections outlive it; new connections need a fresh one.
//!
//! Both sources are asked by the Store's sign-in (`postgres::sign_in`) before a connection may
//! open, when the cached credential is due: a token after [`TOKEN_RENEW_AFTER`] (10 minutes),
//! the secret after [`SECRET_RENEW_AFTER`] (5 minutes) and at once when the database refuses
//! it (rotated). Nothing is fetched at cold start.
//!
//! [`generate_rds_auth_token`] is the pure signer: the same token as
//! `aws rds generate-db-auth-token` (botocore's `generate_db_auth_token`), which the tests
//! check byte for byte against botocore's output (`scripts/rds_token_reference.py`).
//!
//! Size: the functions use neither `aws-config` nor `aws-sdk-secretsmanager`. In a Lambda
//! function the credentials are always the role's, in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN` ([`AwsIdentity::from_lambda_env`]), and `GetSecretValue` is one
//! SigV4-signed JSON POST, signed by `aws-sigv4`, the SDK's own signer. Measured on x86_64,
//! release, stripped (docs/deploy.md has the table): drain-fn is 6.1 MB as it is, 10.6 MB with
//! `aws_config::load_defaults` (rustls with ring, SSO and `credential_process` on) signing
//! instead; each function grows by ~4.5 MB for a chain whose first link, the environment, is
//! all a Lambda ever uses. The operator commands (`leads-local migrate`, `redrive`), run with an
//! SSO or profile login, do load `aws-config` and hand it over through
//! [`AwsIdentity::from_sdk_config`] (`App::from_lookup_signing_as`).
//!
//! One file per concept: `rds_token` signs a token and `token_source` makes it the Store's
//! credential; `rds_secret` is the secret's format and `secrets_manager` the `GetSecretValue`
//! call that fetches it (and the Store's credential made of it); `aws_identity` is the region
//! and credentials both calls sign with, and `sigv4` the signing step they share.

// Private files, their public items re-exported: callers keep the one path `db_auth::…`.
mod aws_identity;
mod rds_secret;
mod rds_token;
mod secrets_manager;
mod sigv4;
#[cfg(test)]
pub(crate) mod test_inputs;
mod token_source;

pub use aws_identity::AwsIdentity;
pub use rds_secret::{RdsSecret, parse_rds_secret};
pub use rds_token::{TOKEN_LIFETIME, generate_rds_auth_token};
pub use secrets_manager::{
    SECRET_RENEW_AFTER, SecretSource, read_rds_secret, read_secret_string, secrets_manager_endpoint,
};
pub use token_source::{IamTokenSource, TOKEN_RENEW_AFTER};
// The SigV4 step, for the cache's IAM token (`aws::cache_auth`).
pub(crate) use sigv4::{QUERY_VALUE, presigned_token, sign_v4};

#[derive(Debug, thiserror::Error)]
pub enum DbAuthError {
    #[error("DATABASE_AUTH must be one of password, secret, iam, got {0:?}")]
    UnknownMode(String),
    #[error("DATABASE_AUTH=secret needs DATABASE_SECRET_ARN")]
    MissingSecretArn,
    #[error("no AWS region configured (AWS_REGION)")]
    MissingRegion,
    #[error("no AWS credentials provider configured")]
    MissingCredentialsProvider,
    #[error("no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")]
    MissingCredentials,
    #[error("could not load AWS credentials: {0}")]
    Credentials(String),
    #[error("could not sign the RDS auth token: {0}")]
    Signing(String),
    #[error("could not read the database secret: {0}")]
    SecretsManager(String),
    /// Never carries any part of the secret's value.
    #[error("the database secret is not in the RDS JSON format: {0}")]
    SecretFormat(String),
}

/// The `DATABASE_AUTH` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseAuth {
    /// `DATABASE_URL` carries the password (local runs and tests).
    Password,
    /// Username and password come from this Secrets Manager secret (`DATABASE_SECRET_ARN`).
    Secret { secret_id: String },
    /// The password is an RDS IAM auth token for `DATABASE_URL`'s host, port and user.
    Iam,
}

impl DatabaseAuth {
    pub fn from_env() -> Result<Self, DbAuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads `DATABASE_AUTH` (default `password`) and, for `secret`, `DATABASE_SECRET_ARN`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbAuthError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match var("DATABASE_AUTH")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("password") => Ok(Self::Password),
            Some("iam") => Ok(Self::Iam),
            Some("secret") => var("DATABASE_SECRET_ARN")
                .map(|secret_id| Self::Secret { secret_id })
                .ok_or(DbAuthError::MissingSecretArn),
            Some(_) => Err(DbAuthError::UnknownMode(
                lookup("DATABASE_AUTH").unwrap_or_default(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_auth_modes() {
        let from = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            DatabaseAuth::from_lookup(move |k| {
                pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(from(&[]).unwrap(), DatabaseAuth::Password);
        assert_eq!(
            from(&[("DATABASE_AUTH", "IAM")]).unwrap(),
            DatabaseAuth::Iam
        );
        assert_eq!(
            from(&[
                ("DATABASE_AUTH", "secret"),
                ("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:x")
            ])
            .unwrap(),
            DatabaseAuth::Secret {
                secret_id: "arn:aws:secretsmanager:x".into()
            }
        );
        assert!(matches!(
            from(&[("DATABASE_AUTH", "secret")]),
            Err(DbAuthError::MissingSecretArn)
        ));
        assert!(matches!(
            from(&[("DATABASE_AUTH", "kerberos")]),
            Err(DbAuthError::UnknownMode(_))
        ));
    }
}
