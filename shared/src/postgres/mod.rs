//! Postgres: the durable record of every job, the `leads` table, and each entry's outcome.
//! One file per table: `import_jobs` (what was accepted, with its leads: `payload`),
//! `import_chunks` (the ledger of what became of each stream entry, and the transaction that
//! stores a batch), `leads`.
//!
//! The drain's exactly-once effect rests on one rule: an entry's leads and its outcome row in
//! `import_chunks` are committed in the same transaction, and a transaction first *claims* its
//! entries by inserting those rows. A replayed entry finds its row already there and stores
//! nothing; two drains racing on one entry serialize on the row's primary key.

mod import_chunks;
mod import_jobs;
mod leads;
mod payload;

pub use import_chunks::Outcomes;
pub use import_jobs::{DueJob, EntryChunk};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
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

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Store {
    /// Connects on first use, so a cold start succeeds while Postgres is down (requests then
    /// answer 503). `sslmode` and the other URL parameters are honoured.
    pub fn with_options(options: PgConnectOptions, max_connections: u32) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A frozen Lambda's sockets may be dead on thaw: test a connection before use.
            .test_before_acquire(true)
            .connect_lazy_with(options);
        Store { pool }
    }

    /// Applies `migrations/`. sqlx takes an advisory lock, so two starting at once are safe.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
