//! Postgres: the durable record of every job, the `leads` table, and each entry's outcome.
//! One file per table: `import_jobs` (what was accepted, with its leads: `payload`),
//! `import_chunks` (the ledger of what became of each stream entry, and the transaction that
//! stores a batch), `leads`.
//!
//! The drain's exactly-once effect rests on one rule: an entry's leads and its outcome row in
//! `import_chunks` are committed in the same transaction, and a transaction first *claims* its
//! entries by inserting those rows. A replayed entry finds its row already there and stores
//! nothing; two drains racing on one entry serialize on the row's primary key.

mod cancel;
mod copy_text;
mod import_chunks;
mod import_jobs;
mod leads;
mod no_delay;
mod payload;
mod reports;
mod sign_in;
mod webhooks;

pub use cancel::Cancelled;
pub use import_chunks::Outcomes;
pub use import_jobs::{DueJob, EntryChunk};
pub use reports::ImportsAfter;
pub use sign_in::{Credential, CredentialFuture, CredentialSource};
pub use webhooks::DueDelivery;

use crate::aws::db_auth::DbAuthError;
use sign_in::{SignIn, is_login_refused};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or gave up (down, restarting, timed out, deadlock):
    /// retrying later is right.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused the data itself: retrying the same rows will fail again.
    #[error("database refused the data: {0}")]
    Refused(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("DATABASE_URL is not a valid Postgres URL")]
    BadUrl,
    /// A job's durable payload cannot be read back (the reason names no lead's value).
    #[error("{0}")]
    Payload(String),
    /// No credentials to sign in with (Secrets Manager or the AWS credentials unreachable):
    /// retrying later is right. Names no secret.
    #[error("database credentials: {0}")]
    Credentials(#[source] DbAuthError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // SQLSTATE classes 22 (data exception) and 23 (integrity violation) are about the rows.
        let refused = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23"));
        if refused {
            StoreError::Refused(e)
        } else {
            StoreError::Unavailable(e)
        }
    }
}

/// How the Store's pool is sized and how long its connections live.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// A connection is closed after this long; its replacement signs in with the credentials
    /// of the moment (`DATABASE_MAX_LIFETIME_MS`).
    pub max_lifetime: Duration,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// `None`: `DATABASE_URL` carries the password.
    sign_in: Option<Arc<SignIn>>,
    /// Whether the drain's next batch tries `COPY` first (`leads`).
    copy_first: Arc<leads::CopyFirst>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Store {
    /// Connects on first use, so a cold start succeeds while Postgres is down (requests then
    /// answer 503). `sslmode` and the other URL parameters are honoured. With `credentials`,
    /// every connection signs in with what the source currently answers (see `sign_in`);
    /// without, with `options`' own password.
    pub fn new(
        options: PgConnectOptions,
        settings: PoolSettings,
        credentials: Option<Arc<dyn CredentialSource>>,
    ) -> Self {
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            // Before the connection is used: see `no_delay` (a Unix socket has no port).
            .after_connect(move |_, _| {
                Box::pin(async move {
                    no_delay::set_on_sockets_to(port);
                    Ok(())
                })
            })
            .max_connections(settings.max_connections)
            .max_lifetime(settings.max_lifetime)
            .acquire_timeout(Duration::from_secs(5))
            // A frozen Lambda's sockets may be dead on thaw: test a connection before use.
            .test_before_acquire(true)
            .connect_lazy_with(options.clone());
        let sign_in = credentials.map(|source| Arc::new(SignIn::new(source, options)));
        Store {
            pool,
            sign_in,
            copy_first: Arc::default(),
        }
    }

    /// Applies `migrations/`. sqlx takes an advisory lock, so two starting at once are safe.
    /// Run by `make migrate` (as the tables' owner), the local run and the tests; the deployed
    /// functions never run it (their role may not).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Signed in (a refused login retried) before the migrator takes a connection of its own
        // from the pool: most likely the one released here.
        drop(self.connection().await?);
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// The pool itself, for the tests' and the bench's own queries. It skips the sign-in:
    /// the Store's operations go through `Store::connection` and `Store::transaction`.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection of the pool, signed in: the one way every operation gets one.
    pub(crate) async fn connection(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        let generation = self.sign_in().await?;
        match self.pool.acquire().await {
            Err(e) if self.signed_in_again(generation, &e).await => Ok(self.pool.acquire().await?),
            other => Ok(other?),
        }
    }

    /// A transaction on a connection of the pool, signed in.
    pub(crate) async fn transaction(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let generation = self.sign_in().await?;
        match self.pool.begin().await {
            Err(e) if self.signed_in_again(generation, &e).await => Ok(self.pool.begin().await?),
            other => Ok(other?),
        }
    }

    /// Before acquiring a connection (which may open one): puts credentials with time to spare
    /// in the pool's options. Returns their generation; `None` without a credential source.
    async fn sign_in(&self) -> Result<Option<u64>, StoreError> {
        match &self.sign_in {
            Some(sign_in) => Ok(Some(sign_in.ensure(&self.pool).await?)),
            None => Ok(None),
        }
    }

    /// After an acquisition failed with `e`: if the database refused the credentials of
    /// `generation`, fetches new ones; returns whether to try once more.
    async fn signed_in_again(&self, generation: Option<u64>, e: &sqlx::Error) -> bool {
        let (Some(sign_in), Some(generation)) = (&self.sign_in, generation) else {
            return false;
        };
        if !is_login_refused(e) || !sign_in.refused(&self.pool, generation).await {
            return false;
        }
        tracing::warn!(error = %e, "the database refused the credentials; signing in again with new ones");
        true
    }
}
