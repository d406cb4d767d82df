//! Credentials that change while the process runs (ElastiCache IAM auth tokens): a
//! [`RedisCredentialSource`] is asked for them by every new connection, and by every open one
//! each [`RedisCredentialSource::renew_every`], which then signs in again (`AUTH`).
//!
//! redis-rs's own hook is used for it (`StreamingCredentialsProvider`, the
//! `token-based-authentication` feature, made for Entra ID tokens): `ConnectionManager` and the
//! cluster connection take the first credentials of a fresh subscription whenever they
//! (re)connect, and each connection re-authenticates with every later one. So a reconnection
//! after a failover, a Lambda thaw or the 12-hour limit ElastiCache puts on IAM-authenticated
//! connections always signs in with credentials valid now, never with the ones the client
//! was built with.

use futures_util::Stream;
use futures_util::future::BoxFuture;
use redis::{BasicAuth, ErrorKind, RedisError, RedisResult, StreamingCredentialsProvider};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A username and password for Redis's `AUTH`. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RedisCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why no credentials could be had. Its text is logged: it must never hold a secret.
pub type CredentialsError = Box<dyn std::error::Error + Send + Sync>;

/// Where the Redis credentials come from.
pub trait RedisCredentialSource: Send + Sync + 'static {
    /// The credentials to sign in with now (a cached token while it is fresh).
    fn credentials(&self) -> BoxFuture<'_, Result<RedisCredentials, CredentialsError>>;

    /// How often an open connection signs in again with [`Self::credentials`].
    fn renew_every(&self) -> Duration;
}

/// A source as redis-rs wants it: every subscription yields the current credentials at once,
/// then fresh ones every `renew_every`.
#[derive(Clone)]
pub(crate) struct CredentialsProvider {
    source: Arc<dyn RedisCredentialSource>,
}

impl CredentialsProvider {
    pub(crate) fn new(source: Arc<dyn RedisCredentialSource>) -> Self {
        CredentialsProvider { source }
    }
}

impl StreamingCredentialsProvider for CredentialsProvider {
    fn subscribe(&self) -> Pin<Box<dyn Stream<Item = RedisResult<BasicAuth>> + Send + 'static>> {
        let source = self.source.clone();
        Box::pin(futures_util::stream::unfold(
            (source, true),
            |(source, first)| async move {
                if !first {
                    tokio::time::sleep(source.renew_every()).await;
                }
                let credentials = match source.credentials().await {
                    Ok(c) => Ok(BasicAuth::new(c.username, c.password)),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not get the Redis credentials");
                        Err(RedisError::from((
                            ErrorKind::AuthenticationFailed,
                            "could not get the Redis credentials",
                            e.to_string(),
                        )))
                    }
                };
                Some((credentials, (source, false)))
            },
        ))
    }
}
