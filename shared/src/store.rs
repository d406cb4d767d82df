//! Postgres: the durable record of jobs, the `leads` table, and each entry's outcome.
//!
//! The drain's exactly-once effect rests on one rule: an entry's leads and its outcome row in
//! `import_chunks` are committed in the same transaction, and a transaction first *claims* its
//! entries by inserting those rows. A replayed entry finds its row already there and stores
//! nothing; two drains racing on one entry serialize on the row's primary key.

use crate::import_plan::{ImportPlan, QueuedChunk};
use crate::job_status::{ChunkOutcome, JobSnapshot, LeadError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use time::OffsetDateTime;

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

/// What `insert_job` found.
#[derive(Debug, PartialEq, Eq)]
pub enum JobInsert {
    Created,
    /// A job with this id exists already.
    Existing {
        payload_hash: String,
        queued: bool,
    },
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

    /// Records a new job, or reports the one that already has this id.
    pub async fn insert_job(
        &self,
        plan: &ImportPlan,
        created_at: OffsetDateTime,
    ) -> Result<JobInsert, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO import_jobs (import_id, created_by, payload_hash, total, chunk_count, batch_size, rejected, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (import_id) DO NOTHING",
        )
        .bind(plan.import_id.as_str())
        .bind(plan.created_by.as_str())
        .bind(&plan.payload_hash)
        .bind(plan.total as i32)
        .bind(plan.chunks.len() as i32)
        .bind(plan.batch_size as i32)
        .bind(Json(&plan.rejected))
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(JobInsert::Created);
        }
        let row = sqlx::query("SELECT payload_hash, queued_at IS NOT NULL AS queued FROM import_jobs WHERE import_id = $1")
            .bind(plan.import_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(JobInsert::Existing {
            payload_hash: row.get("payload_hash"),
            queued: row.get("queued"),
        })
    }

    /// Notes that the job's entries are in the stream, with their ids in `seq` order.
    pub async fn mark_queued(
        &self,
        import_id: &str,
        entry_ids: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE import_jobs SET queued_at = now(), entry_ids = $2 WHERE import_id = $1 AND queued_at IS NULL")
            .bind(import_id)
            .bind(entry_ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Everything Postgres knows of a job, or `None` for an unknown id.
    pub async fn load_job(&self, import_id: &str) -> Result<Option<JobSnapshot>, StoreError> {
        let Some(job) = sqlx::query(
            "SELECT created_by, total, chunk_count, rejected, created_at FROM import_jobs WHERE import_id = $1",
        )
        .bind(import_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let chunks = sqlx::query(
            "SELECT seq, successful, failed, dead, errors, processed_at FROM import_chunks WHERE import_id = $1 ORDER BY seq",
        )
        .bind(import_id)
        .fetch_all(&self.pool)
        .await?;
        let created_at: OffsetDateTime = job.get("created_at");
        let updated_at = chunks
            .iter()
            .map(|r| r.get::<OffsetDateTime, _>("processed_at"))
            .max()
            .unwrap_or(created_at);
        Ok(Some(JobSnapshot {
            import_id: import_id.to_owned(),
            created_by: job.get("created_by"),
            total: job.get::<i32, _>("total") as u64,
            chunks: job.get::<i32, _>("chunk_count") as u32,
            created_at,
            updated_at,
            rejected: job.get::<Json<Vec<LeadError>>, _>("rejected").0,
            outcomes: chunks.iter().map(outcome_from_row).collect(),
        }))
    }

    /// Stores the leads of several entries in one transaction and returns every entry's outcome,
    /// keyed by `(import_id, seq)`: decided now, or recorded earlier by another delivery.
    pub async fn store_chunks<C: std::borrow::Borrow<QueuedChunk>>(
        &self,
        chunks: &[C],
    ) -> Result<HashMap<(String, u32), ChunkOutcome>, StoreError> {
        let chunks: Vec<&QueuedChunk> = chunks.iter().map(|c| c.borrow()).collect();
        let mut outcomes = HashMap::with_capacity(chunks.len());
        if chunks.is_empty() {
            return Ok(outcomes);
        }
        // Sorted keys and emails give every transaction the same lock order: no deadlocks
        // between drains working on overlapping entries.
        let mut keys: Vec<(&str, i32)> = chunks
            .iter()
            .map(|c| (c.import_id.as_str(), c.seq as i32))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "INSERT INTO import_chunks (import_id, seq, successful, failed)
             SELECT k.import_id, k.seq, 0, 0 FROM unnest($1::text[], $2::int[]) AS k(import_id, seq)
             ON CONFLICT DO NOTHING RETURNING import_id, seq",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        // The claimed keys, as the borrowed keys they came from.
        let all: HashSet<(&str, i32)> = keys.iter().copied().collect();
        let claimed: HashSet<(&str, i32)> = rows
            .iter()
            .filter_map(|r| {
                all.get(&(r.get::<&str, _>("import_id"), r.get::<i32, _>("seq")))
                    .copied()
            })
            .collect();

        let mine: Vec<&QueuedChunk> = {
            let mut seen = HashSet::new();
            chunks
                .iter()
                .copied()
                .filter(|c| claimed.contains(&(c.import_id.as_str(), c.seq as i32)))
                .filter(|c| seen.insert((c.import_id.as_str(), c.seq)))
                .collect()
        };
        let stored = insert_leads(&mut tx, &mine).await?;
        fail::fail_point!("drain::before_commit", |_| Err(StoreError::Unavailable(
            sqlx::Error::PoolClosed
        )));

        let decided: Vec<(&str, ChunkOutcome)> = mine
            .iter()
            .map(|chunk| {
                let mut outcome = ChunkOutcome {
                    seq: chunk.seq,
                    successful: 0,
                    failed: 0,
                    dead: false,
                    errors: Vec::new(),
                };
                for lead in &chunk.leads {
                    if stored.contains(&(chunk.import_id.as_str(), lead.lead.email.as_str())) {
                        outcome.successful += 1;
                    } else {
                        outcome.failed += 1;
                        outcome.errors.push(LeadError {
                            index: lead.index,
                            error: "Email already exists".into(),
                            field: Some("email".into()),
                            code: "email_exists".into(),
                        });
                    }
                }
                (chunk.import_id.as_str(), outcome)
            })
            .collect();
        let recorded: Vec<(&str, &ChunkOutcome)> = decided.iter().map(|(id, o)| (*id, o)).collect();
        record_outcomes(&mut tx, &recorded).await?;
        tx.commit().await?;

        outcomes.extend(
            decided
                .into_iter()
                .map(|(id, o)| ((id.to_owned(), o.seq), o)),
        );
        let replayed: Vec<(&str, i32)> =
            keys.into_iter().filter(|k| !claimed.contains(k)).collect();
        if !replayed.is_empty() {
            outcomes.extend(self.recorded_outcomes(&replayed).await?);
        }
        Ok(outcomes)
    }

    /// Records entries given up on: every lead they carry fails with `reason`. An entry whose
    /// outcome was already recorded keeps it (its leads were stored; nothing is failed twice).
    pub async fn record_dead(
        &self,
        import_id: &str,
        seq: u32,
        lead_indexes: &[u32],
        reason: &str,
    ) -> Result<ChunkOutcome, StoreError> {
        let errors: Vec<LeadError> = lead_indexes
            .iter()
            .map(|&index| LeadError {
                index,
                error: reason.to_owned(),
                field: None,
                code: "dead_letter".into(),
            })
            .collect();
        let outcome = ChunkOutcome {
            seq,
            successful: 0,
            failed: errors.len() as u32,
            dead: true,
            errors,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO import_chunks (import_id, seq, successful, failed, dead, errors)
             SELECT $1, $2, 0, $3, true, $4 WHERE EXISTS (SELECT 1 FROM import_jobs WHERE import_id = $1)
             ON CONFLICT DO NOTHING",
        )
        .bind(import_id)
        .bind(seq as i32)
        .bind(outcome.failed as i32)
        .bind(Json(&outcome.errors))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let recorded = self.recorded_outcomes(&[(import_id, seq as i32)]).await?;
        Ok(recorded.into_values().next().unwrap_or(outcome))
    }

    /// Forgets a dead chunk's outcome so that a re-driven entry is stored afresh. A chunk
    /// whose leads were stored (not dead) is left alone: returns whether a row was removed.
    pub async fn forget_dead_outcome(&self, import_id: &str, seq: u32) -> Result<bool, StoreError> {
        let removed =
            sqlx::query("DELETE FROM import_chunks WHERE import_id = $1 AND seq = $2 AND dead")
                .bind(import_id)
                .bind(seq as i32)
                .execute(&self.pool)
                .await?;
        Ok(removed.rows_affected() == 1)
    }

    /// The job and chunk a stream entry id was queued as, and the lead indexes that chunk
    /// held; `None` if the id is unknown (its job was never marked queued).
    pub async fn chunk_of_entry(
        &self,
        entry_id: &str,
    ) -> Result<Option<(String, u32, Vec<u32>)>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT import_id, array_position(entry_ids, $1) - 1 AS seq, total, batch_size, rejected
             FROM import_jobs WHERE entry_ids @> ARRAY[$1]",
        )
        .bind(entry_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let seq = row.get::<i32, _>("seq") as u32;
        let rejected: HashSet<u32> = row
            .get::<Json<Vec<LeadError>>, _>("rejected")
            .0
            .iter()
            .map(|e| e.index)
            .collect();
        let batch = row.get::<i32, _>("batch_size") as usize;
        let indexes = (0..row.get::<i32, _>("total") as u32)
            .filter(|i| !rejected.contains(i))
            .skip(seq as usize * batch)
            .take(batch)
            .collect();
        Ok(Some((row.get("import_id"), seq, indexes)))
    }

    async fn recorded_outcomes(
        &self,
        keys: &[(&str, i32)],
    ) -> Result<HashMap<(String, u32), ChunkOutcome>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.import_id, c.seq, c.successful, c.failed, c.dead, c.errors
             FROM import_chunks c JOIN unnest($1::text[], $2::int[]) AS k(import_id, seq) USING (import_id, seq)",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    (r.get("import_id"), r.get::<i32, _>("seq") as u32),
                    outcome_from_row(r),
                )
            })
            .collect())
    }
}

type LeadRow<'a> = (&'a QueuedChunk, &'a crate::import_plan::IndexedLead);

/// One INSERT for all leads of the claimed entries; returns the (import, email) pairs stored.
/// An email already in the table is skipped by `ON CONFLICT DO NOTHING` and so not returned.
async fn insert_leads<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    chunks: &[&'a QueuedChunk],
) -> Result<HashSet<(&'a str, &'a str)>, StoreError> {
    let mut rows: Vec<LeadRow<'a>> = chunks
        .iter()
        .flat_map(|c| c.leads.iter().map(move |l| (*c, l)))
        .collect();
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    rows.sort_unstable_by(|a, b| a.1.lead.email.cmp(&b.1.lead.email));
    let column = |f: for<'r> fn(&'r LeadRow<'a>) -> Option<&'a str>| -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    };
    let returned = sqlx::query(
        "INSERT INTO leads (full_name, email, phone, status, source, created_by, import_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (email) DO NOTHING RETURNING import_id, email",
    )
    .bind(column(|r| Some(r.1.lead.full_name.as_str())))
    .bind(column(|r| Some(r.1.lead.email.as_str())))
    .bind(column(|r| r.1.lead.phone.as_deref()))
    .bind(column(|r| Some(r.1.lead.status.as_str())))
    .bind(column(|r| Some(r.1.lead.source.as_str())))
    .bind(column(|r| Some(r.0.created_by.as_str())))
    .bind(column(|r| Some(r.0.import_id.as_str())))
    .fetch_all(&mut **tx)
    .await?;
    // Map the returned rows back to borrowed strings of the input.
    let position: HashMap<(&str, &str), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.0.import_id.as_str(), r.1.lead.email.as_str()), i))
        .collect();
    Ok(returned
        .iter()
        .filter_map(|r| {
            position
                .get(&(r.get::<&str, _>("import_id"), r.get::<&str, _>("email")))
                .copied()
        })
        .map(|i| (rows[i].0.import_id.as_str(), rows[i].1.lead.email.as_str()))
        .collect())
}

async fn record_outcomes<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    outcomes: &[(&'a str, &'a ChunkOutcome)],
) -> Result<(), StoreError> {
    // Nothing claimed (every entry a replay): no statement. `push_values` must not see an
    // empty list (sqlx debug-asserts on it, which panicked every replay in debug builds).
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "UPDATE import_chunks AS c SET successful = v.successful, failed = v.failed, errors = v.errors, processed_at = now()
         FROM (",
    );
    query.push_values(outcomes, |mut row, &(import_id, o)| {
        row.push_bind(import_id)
            .push_bind(o.seq as i32)
            .push_bind(o.successful as i32)
            .push_bind(o.failed as i32)
            .push_bind(Json(&o.errors));
    });
    query.push(
        ") AS v(import_id, seq, successful, failed, errors) WHERE c.import_id = v.import_id AND c.seq = v.seq",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

fn outcome_from_row(r: &sqlx::postgres::PgRow) -> ChunkOutcome {
    ChunkOutcome {
        seq: r.get::<i32, _>("seq") as u32,
        successful: r.get::<i32, _>("successful") as u32,
        failed: r.get::<i32, _>("failed") as u32,
        dead: r.get("dead"),
        errors: r.get::<Json<Vec<LeadError>>, _>("errors").0,
    }
}
