//! How the functions authenticate to the cache on AWS, chosen by `REDIS_AUTH`:
//!
//! - `password` (the default, for the local run and the tests): `REDIS_URL` carries whatever
//!   the server wants (nothing, or `user:password@` for a local ACL user).
//! - `iam`: ElastiCache IAM authentication. No password exists anywhere: each new connection
//!   signs in (`AUTH user token`) as `REDIS_IAM_USER`, an ElastiCache user with
//!   `authentication-mode iam`, with a token signed from the function's role for the cache
//!   `REDIS_IAM_CACHE_ARN` names. A token is valid for 15 minutes and checked when a
//!   connection signs in; [`ElastiCacheTokenSource`] renews it every 10 minutes, and every
//!   open connection signs in again with the new one (which also lifts the 12-hour limit
//!   ElastiCache puts on IAM-authenticated connections). ElastiCache accepts IAM auth over TLS
//!   only, so `REDIS_URL` must be `rediss://`, and carries no password.
//!
//! [`generate_elasticache_auth_token`] is the pure signer, checked byte for byte against a
//! token presigned by botocore (`scripts/rds_token_reference.py`); it signs with `aws-sigv4`
//! and the role's credentials as the database's IAM auth does (`db_auth`'s `sign_v4` and
//! [`AwsIdentity`]).
//!
//! One file per concept: `elasticache_token` names the cache and signs a token, and
//! `token_source` caches and renews it for the Redis connections.

mod elasticache_token;
mod token_source;

pub use elasticache_token::{CacheArn, CacheKind, TOKEN_LIFETIME, generate_elasticache_auth_token};
pub use token_source::ElastiCacheTokenSource;

use super::db_auth::{AwsIdentity, DbAuthError};

#[derive(Debug, thiserror::Error)]
pub enum CacheAuthError {
    #[error("REDIS_AUTH must be one of password, iam, got {0:?}")]
    UnknownMode(String),
    #[error("REDIS_AUTH=iam needs REDIS_IAM_USER (the ElastiCache user)")]
    MissingUser,
    #[error(
        "REDIS_AUTH=iam needs REDIS_IAM_CACHE_ARN (the replication group's or serverless cache's ARN)"
    )]
    MissingCacheArn,
    #[error(
        "REDIS_IAM_CACHE_ARN must be arn:PARTITION:elasticache:REGION:ACCOUNT:replicationgroup:ID \
         or …:serverlesscache:NAME, got {0:?}"
    )]
    BadCacheArn(String),
    #[error(
        "REDIS_AUTH=iam needs TLS: REDIS_URL must be rediss:// (ElastiCache refuses IAM auth in the clear)"
    )]
    NeedsTls,
    #[error("REDIS_AUTH=iam signs in with a token: REDIS_URL must carry no user or password")]
    CredentialsInUrl,
    /// The region or the role's credentials (never their values).
    #[error(transparent)]
    Aws(#[from] DbAuthError),
    #[error("could not sign the ElastiCache auth token: {0}")]
    Signing(String),
}

/// The `REDIS_AUTH` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheAuth {
    /// `REDIS_URL` carries the credentials, if the server wants any.
    Password,
    /// An ElastiCache IAM auth token for `user` on `cache` is the password.
    Iam { user: String, cache: CacheArn },
}

impl CacheAuth {
    pub fn from_env() -> Result<Self, CacheAuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads `REDIS_AUTH` (default `password`) and, for `iam`, `REDIS_IAM_USER` and
    /// `REDIS_IAM_CACHE_ARN`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CacheAuthError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let user = var("REDIS_IAM_USER");
        let cache = var("REDIS_IAM_CACHE_ARN");
        match var("REDIS_AUTH").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("password") => Ok(Self::Password),
            Some("iam") => Ok(Self::Iam {
                user: user.ok_or(CacheAuthError::MissingUser)?,
                cache: CacheArn::parse(&cache.ok_or(CacheAuthError::MissingCacheArn)?)?,
            }),
            Some(_) => Err(CacheAuthError::UnknownMode(
                lookup("REDIS_AUTH").unwrap_or_default(),
            )),
        }
    }

    /// Checks that `REDIS_URL` (one or more comma-separated URLs) suits the mode: with `iam`,
    /// TLS and no credentials of its own. Errors never quote the URL (it may hold a password).
    pub fn check_url(&self, urls: &str) -> Result<(), CacheAuthError> {
        if *self == Self::Password {
            return Ok(());
        }
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let Some(rest) = url.strip_prefix("rediss://") else {
                return Err(CacheAuthError::NeedsTls);
            };
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if authority.contains('@') {
                return Err(CacheAuthError::CredentialsInUrl);
            }
        }
        Ok(())
    }

    /// The source of the connections' credentials: none for `password`, signed tokens for
    /// `iam` (one is signed here, so that a cold start without usable credentials fails with
    /// the reason rather than every connection later).
    pub async fn credential_source(
        &self,
        identity: impl FnOnce() -> Result<AwsIdentity, DbAuthError>,
    ) -> Result<Option<ElastiCacheTokenSource>, CacheAuthError> {
        match self {
            Self::Password => Ok(None),
            Self::Iam { user, cache } => {
                let source = ElastiCacheTokenSource::new(identity()?, cache.clone(), user);
                source.token().await?;
                Ok(Some(source))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<CacheAuth, CacheAuthError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CacheAuth::from_lookup(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    const ARN: &str = "arn:aws:elasticache:eu-west-1:123456789012:serverlesscache:lead-import-x";

    #[test]
    fn cache_auth_modes() {
        assert_eq!(from(&[]).unwrap(), CacheAuth::Password);
        assert_eq!(
            from(&[("REDIS_AUTH", "password")]).unwrap(),
            CacheAuth::Password
        );
        let iam = from(&[
            ("REDIS_AUTH", "IAM"),
            ("REDIS_IAM_USER", "lead-import"),
            ("REDIS_IAM_CACHE_ARN", ARN),
        ])
        .unwrap();
        let CacheAuth::Iam { user, cache } = &iam else {
            panic!("{iam:?}")
        };
        assert_eq!(user, "lead-import");
        assert_eq!(
            (cache.region(), cache.kind(), cache.name()),
            ("eu-west-1", CacheKind::ServerlessCache, "lead-import-x")
        );
        assert!(matches!(
            from(&[("REDIS_AUTH", "iam"), ("REDIS_IAM_CACHE_ARN", ARN)]),
            Err(CacheAuthError::MissingUser)
        ));
        assert!(matches!(
            from(&[("REDIS_AUTH", "iam"), ("REDIS_IAM_USER", "u")]),
            Err(CacheAuthError::MissingCacheArn)
        ));
        assert_eq!(
            from(&[("REDIS_AUTH", "acl")]).unwrap_err().to_string(),
            "REDIS_AUTH must be one of password, iam, got \"acl\""
        );
    }

    #[test]
    fn iam_wants_tls_and_no_password_in_the_url() {
        let iam = from(&[
            ("REDIS_AUTH", "iam"),
            ("REDIS_IAM_USER", "u"),
            ("REDIS_IAM_CACHE_ARN", ARN),
        ])
        .unwrap();
        assert!(iam.check_url("rediss://cache.example:6379").is_ok());
        assert!(iam.check_url("rediss://a:6379, rediss://b:6379/0").is_ok());
        assert!(matches!(
            iam.check_url("redis://cache.example:6379"),
            Err(CacheAuthError::NeedsTls)
        ));
        assert!(matches!(
            iam.check_url("rediss://a:6379,redis://b:6379"),
            Err(CacheAuthError::NeedsTls)
        ));
        let err = iam
            .check_url("rediss://u:hunter2@cache.example:6379")
            .unwrap_err();
        assert!(matches!(err, CacheAuthError::CredentialsInUrl));
        assert!(!err.to_string().contains("hunter2"));
        // Any URL goes with `password`: it is the URL's business.
        assert!(
            CacheAuth::Password
                .check_url("redis://u:p@127.0.0.1:6379")
                .is_ok()
        );
    }
}
