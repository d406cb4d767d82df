//! Cancelling a job in the ledger: every chunk not yet decided is decided as cancelled, in
//! `import_chunks`, so no drain can store it afterwards.
//!
//! Why this is race-free: a drain stores a chunk's leads only in the transaction that claims
//! the chunk's ledger row (`store_chunks`), and the cancel claims the same rows. Whichever
//! inserts a chunk's row first decides it: the other waits on the row's primary key until the
//! first commits, then finds the row and does nothing (a drain then reports the recorded
//! outcome: cancelled). So a chunk is stored whole before the cancel, or not at all. Both
//! insert in `seq` order, so neither can wait on the other in a cycle.
//!
//! The cancel locks the job's row `FOR NO KEY UPDATE`, which serializes cancels but not
//! drains: a drain's foreign-key checks take `KEY SHARE` on the same row, and a `FOR UPDATE`
//! waiting for a drain that takes it once more before committing (Postgres checks the key
//! again when a row inserted in the same transaction is updated) would be a deadlock (the
//! failpoint test of the race found it).

use super::{Store, StoreError};
use crate::domain::ImportId;
use crate::job::status::LeadError;
use sqlx::Row;
use sqlx::types::Json;

/// A chunk's `seq` and its leads' `(index, line)`.
type ChunkLeads = (u32, Vec<(u32, Option<u32>)>);

/// What a cancel found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// No such job.
    Unknown,
    /// Cancelled earlier; nothing changed.
    Already,
    /// Every chunk was decided before: too late to cancel; nothing changed.
    Finished,
    /// Cancelled now: these chunks were decided as cancelled.
    Now { chunks: Vec<u32> },
}

impl Store {
    pub async fn cancel_job(&self, import_id: &ImportId) -> Result<Cancelled, StoreError> {
        // The leads of every chunk, from the payload (with their CSV lines) or, for a job
        // accepted before payloads were kept, from the plan. Read before the transaction,
        // which stays short; the payload never changes.
        let chunks: Vec<ChunkLeads> = match self.load_chunks(import_id, None).await? {
            Some(chunks) => chunks
                .iter()
                .map(|c| (c.seq, c.leads.iter().map(|l| (l.index, l.line)).collect()))
                .collect(),
            None => self.planned_chunks(import_id).await?,
        };
        let mut tx = self.transaction().await?;
        let Some(job) = sqlx::query(
            "SELECT cancelled_at IS NOT NULL AS cancelled, chunk_count,
                 (SELECT count(*) FROM import_chunks c WHERE c.import_id = j.import_id) AS decided
             FROM import_jobs j WHERE import_id = $1 FOR NO KEY UPDATE",
        )
        .bind(import_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Cancelled::Unknown);
        };
        if job.get("cancelled") {
            return Ok(Cancelled::Already);
        }
        if job.get::<i64, _>("decided") >= i64::from(job.get::<i32, _>("chunk_count")) {
            return Ok(Cancelled::Finished);
        }
        sqlx::query("UPDATE import_jobs SET cancelled_at = now() WHERE import_id = $1")
            .bind(import_id.as_str())
            .execute(&mut *tx)
            .await?;
        let errors: Vec<Json<Vec<LeadError>>> = chunks
            .iter()
            .map(|(_, leads)| {
                Json(
                    leads
                        .iter()
                        .map(|&(index, line)| LeadError::cancelled(index).at_line(line))
                        .collect(),
                )
            })
            .collect();
        let decided: Vec<i32> = sqlx::query_scalar(
            "INSERT INTO import_chunks (import_id, seq, successful, failed, errors)
             SELECT $1, k.seq, 0, k.failed, k.errors
             FROM unnest($2::int[], $3::int[], $4::jsonb[]) AS k(seq, failed, errors)
             ORDER BY k.seq
             ON CONFLICT DO NOTHING RETURNING seq",
        )
        .bind(import_id.as_str())
        .bind(chunks.iter().map(|c| c.0 as i32).collect::<Vec<_>>())
        .bind(chunks.iter().map(|c| c.1.len() as i32).collect::<Vec<_>>())
        .bind(errors)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Cancelled::Now {
            chunks: decided.into_iter().map(|s| s as u32).collect(),
        })
    }

    /// Every chunk's leads as the plan cut them, known by index only.
    async fn planned_chunks(&self, import_id: &ImportId) -> Result<Vec<ChunkLeads>, StoreError> {
        let count: Option<i32> =
            sqlx::query_scalar("SELECT chunk_count FROM import_jobs WHERE import_id = $1")
                .bind(import_id.as_str())
                .fetch_optional(&mut *self.connection().await?)
                .await?;
        let mut chunks = Vec::new();
        for seq in 0..count.unwrap_or(0) as u32 {
            let indexes = self
                .chunk_lead_indexes(import_id, seq)
                .await?
                .unwrap_or_default();
            chunks.push((seq, indexes.into_iter().map(|i| (i, None)).collect()));
        }
        Ok(chunks)
    }
}
