//! Signing in with credentials that expire or rotate: the pre-connect hook sqlx 0.9 lacks.
//!
//! sqlx opens connections by itself (the first use, a replacement after `max_lifetime` or an
//! idle timeout, a dead socket after a Lambda thaw) from the pool's connect options, and has no
//! hook that runs before it does. So the [`Store`](super::Store) asks [`SignIn::ensure`] before
//! every acquisition, the one place a connection may open: it keeps the pool's connect options
//! carrying a credential that is not yet due for renewal, fetching a new one from the
//! [`CredentialSource`] when it is (a lock and a clock read otherwise). An RDS IAM token (valid
//! 15 minutes) is renewed after 10, so any connection opens with minutes to spare; a Secrets
//! Manager secret is read again every few minutes, and at once when the database refuses it
//! (SQLSTATE `28P01`/`28000`: rotated), after which the Store retries that acquisition once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::time::Instant;

use super::StoreError;
use crate::aws::db_auth::DbAuthError;

/// A password (and possibly the user it is for) to sign in with, and how long to use it.
#[derive(Clone)]
pub struct Credential {
    /// `None`: `DATABASE_URL`'s user.
    pub username: Option<String>,
    pub password: String,
    /// Fetch a new one once this one is this old.
    pub renew_after: Duration,
    /// Never sign in with it once it is this old (an IAM token dies after 15 minutes); `None`:
    /// until the database refuses it.
    pub valid_for: Option<Duration>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("renew_after", &self.renew_after)
            .field("valid_for", &self.valid_for)
            .finish()
    }
}

/// The future a [`CredentialSource`] answers with.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credential, DbAuthError>> + Send + 'a>>;

/// Where the Store's credentials come from: an RDS IAM token signer, a Secrets Manager secret
/// (both in `aws::db_auth`), or, in the tests, a closure. Asked only when the cached credential
/// is due for renewal or was refused, so a fetch may be slow (a network call).
pub trait CredentialSource: Send + Sync {
    fn fetch(&self) -> CredentialFuture<'_>;
}

impl<F, Fut> CredentialSource for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Credential, DbAuthError>> + Send + 'static,
{
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(self())
    }
}

/// After a renewal failed while the current credential is still usable, how long to keep using
/// it before trying again (rather than asking on every acquisition).
const RETRY_RENEWAL_AFTER: Duration = Duration::from_secs(5);
/// A refused credential fetched less than this long ago is not fetched again at once: the
/// source answers the same (a rotation half done), and each failing request would otherwise
/// cost a fetch.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The SQLSTATEs of a refused login: `invalid_password` and `invalid_authorization_specification`
/// (what an RDS IAM token that is expired or wrong gets).
pub(super) fn is_login_refused(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "28P01" || code == "28000")
}

/// Keeps a pool's connect options signed in; see the module comment.
pub(super) struct SignIn {
    source: Arc<dyn CredentialSource>,
    /// `DATABASE_URL`'s options, without the password.
    base: PgConnectOptions,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// How many credentials were put in the pool's options; 0 before the first.
    generation: u64,
    fetched_at: Option<Instant>,
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
}

impl State {
    fn usable(&self, now: Instant) -> bool {
        self.generation > 0 && self.expires_at.is_none_or(|at| now < at)
    }
}

impl SignIn {
    pub(super) fn new(source: Arc<dyn CredentialSource>, base: PgConnectOptions) -> Self {
        SignIn {
            source,
            base,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Makes sure the pool connects with a credential not due for renewal; returns its
    /// generation (for [`SignIn::refused`]). A renewal that fails while the current credential
    /// is still valid is logged and tried again shortly; without a valid one it is an error.
    pub(super) async fn ensure(&self, pool: &PgPool) -> Result<u64, StoreError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if state.generation > 0 && state.renew_at.is_some_and(|at| now < at) {
            return Ok(state.generation);
        }
        match self.fetch(&mut state, pool, now).await {
            Ok(()) => Ok(state.generation),
            Err(e) if state.usable(now) => {
                tracing::warn!(error = %e, "could not renew the database credentials; the current ones are still valid");
                let retry_at = now + RETRY_RENEWAL_AFTER;
                state.renew_at = Some(state.expires_at.map_or(retry_at, |at| at.min(retry_at)));
                Ok(state.generation)
            }
            Err(e) => Err(StoreError::Credentials(e)),
        }
    }

    /// The database refused generation `generation`'s credential: fetches a new one unless
    /// that happened meanwhile. Returns whether the pool now has a different credential, i.e.
    /// whether retrying may help.
    pub(super) async fn refused(&self, pool: &PgPool, generation: u64) -> bool {
        let mut state = self.state.lock().await;
        if state.generation != generation {
            return true;
        }
        let now = Instant::now();
        if state
            .fetched_at
            .is_some_and(|at| now.duration_since(at) < REFETCH_AT_MOST_EVERY)
        {
            return false;
        }
        match self.fetch(&mut state, pool, now).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "the database refused the credentials, and new ones could not be fetched");
                false
            }
        }
    }

    async fn fetch(
        &self,
        state: &mut State,
        pool: &PgPool,
        now: Instant,
    ) -> Result<(), DbAuthError> {
        let credential = self.source.fetch().await?;
        let mut options = self.base.clone().password(&credential.password);
        if let Some(user) = &credential.username {
            options = options.username(user);
        }
        pool.set_connect_options(options);
        state.generation += 1;
        state.fetched_at = Some(now);
        state.renew_at = Some(now + credential.renew_after);
        state.expires_at = credential.valid_for.map(|v| now + v);
        tracing::debug!(
            renew_in_s = credential.renew_after.as_secs(),
            "database credentials fetched"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgPoolOptions;
    use std::str::FromStr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source counting its fetches, answering `answers` in turn (the last one forever).
    fn source(
        answers: Vec<Result<Credential, DbAuthError>>,
    ) -> (Arc<dyn CredentialSource>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(Mutex::new(answers));
        let counted = calls.clone();
        let source = move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let answers = answers.lock().unwrap();
            let answer = match &answers[n.min(answers.len() - 1)] {
                Ok(c) => Ok(c.clone()),
                Err(_) => Err(DbAuthError::Credentials("no answer".into())),
            };
            async move { answer }
        };
        (Arc::new(source), calls)
    }

    fn token(renew_after: u64, valid_for: Option<u64>) -> Result<Credential, DbAuthError> {
        Ok(Credential {
            username: None,
            password: "token".into(),
            renew_after: Duration::from_secs(renew_after),
            valid_for: valid_for.map(Duration::from_secs),
        })
    }

    fn sign_in(source: Arc<dyn CredentialSource>) -> (SignIn, PgPool) {
        let base = PgConnectOptions::from_str("postgres://u@127.0.0.1:1/db").unwrap();
        let pool = PgPoolOptions::new().connect_lazy_with(base.clone());
        (SignIn::new(source, base), pool)
    }

    #[tokio::test(start_paused = true)]
    async fn a_credential_is_reused_until_due_then_renewed() {
        let (source, calls) = source(vec![token(600, Some(900))]);
        let (sign_in, pool) = sign_in(source);
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(599)).await;
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 1, "cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 2, "renewed when due");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_a_valid_credential_until_it_expires() {
        let (source, calls) = source(vec![token(600, Some(900)), Err(DbAuthError::MissingRegion)]);
        let (sign_in, pool) = sign_in(source);
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 1, "still valid: kept");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "not asked again at once");
        tokio::time::advance(RETRY_RENEWAL_AFTER).await;
        sign_in.ensure(&pool).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "asked again after a pause");
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(
            matches!(sign_in.ensure(&pool).await, Err(StoreError::Credentials(_))),
            "expired, and no new one: an error"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_credential_at_all_is_an_error_that_names_no_secret() {
        let (source, _) = source(vec![Err(DbAuthError::MissingRegion)]);
        let (sign_in, pool) = sign_in(source);
        let err = sign_in.ensure(&pool).await.unwrap_err().to_string();
        assert!(err.starts_with("database credentials: "), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_credential_is_fetched_again_once() {
        let (source, calls) = source(vec![token(3600, None)]);
        let (sign_in, pool) = sign_in(source);
        let first = sign_in.ensure(&pool).await.unwrap();
        assert!(
            !sign_in.refused(&pool, first).await,
            "fetched just now: the same answer would come back"
        );
        tokio::time::advance(REFETCH_AT_MOST_EVERY).await;
        assert!(sign_in.refused(&pool, first).await, "fetched again");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A second request refused with the old generation retries with the new one, without
        // a fetch of its own.
        assert!(sign_in.refused(&pool, first).await);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(sign_in.ensure(&pool).await.unwrap(), 2);
    }

    #[test]
    fn a_credential_never_shows_its_password() {
        let c = token(1, None).unwrap();
        assert!(!format!("{c:?}").contains("token"));
    }
}
