//! `import_jobs`: one row per accepted import, written before anything is queued, so a job's
//! existence, its content hash (for idempotent retries) and its plan never depend on Redis.

use super::import_chunks::outcome_from_row;
use super::{Store, StoreError};
use crate::domain::ImportId;
use crate::job::plan::ImportPlan;
use crate::job::status::{JobSnapshot, LeadError};
use crate::ports::{JobInsert, JobRecords, Unavailable};
use sqlx::Row;
use sqlx::types::Json;
use std::collections::HashSet;
use time::OffsetDateTime;

/// The chunk a stream entry was queued as: its job, its `seq`, and the lead indexes it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChunk {
    pub import_id: ImportId,
    pub seq: u32,
    pub lead_indexes: Vec<u32>,
}

impl Store {
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
        import_id: &ImportId,
        entry_ids: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE import_jobs SET queued_at = now(), entry_ids = $2 WHERE import_id = $1 AND queued_at IS NULL")
            .bind(import_id.as_str())
            .bind(entry_ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Everything Postgres knows of a job, or `None` for an unknown id.
    pub async fn load_job(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, StoreError> {
        let Some(job) = sqlx::query(
            "SELECT created_by, total, chunk_count, rejected, created_at FROM import_jobs WHERE import_id = $1",
        )
        .bind(import_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let chunks = sqlx::query(
            "SELECT seq, successful, failed, dead, errors, processed_at FROM import_chunks WHERE import_id = $1 ORDER BY seq",
        )
        .bind(import_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        let created_at: OffsetDateTime = job.get("created_at");
        let updated_at = chunks
            .iter()
            .map(|r| r.get::<OffsetDateTime, _>("processed_at"))
            .max()
            .unwrap_or(created_at);
        Ok(Some(JobSnapshot {
            import_id: import_id.to_string(),
            created_by: job.get("created_by"),
            total: job.get::<i32, _>("total") as u64,
            chunks: job.get::<i32, _>("chunk_count") as u32,
            created_at,
            updated_at,
            rejected: job.get::<Json<Vec<LeadError>>, _>("rejected").0,
            outcomes: chunks.iter().map(outcome_from_row).collect(),
        }))
    }

    /// The chunk a stream entry id was queued as; `None` if the id is unknown (its job was
    /// never marked queued).
    pub async fn chunk_of_entry(&self, entry_id: &str) -> Result<Option<EntryChunk>, StoreError> {
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
        // Recorded from a parsed id, so it parses again.
        let Ok(import_id) = ImportId::parse(row.get::<&str, _>("import_id")) else {
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
        let lead_indexes = (0..row.get::<i32, _>("total") as u32)
            .filter(|i| !rejected.contains(i))
            .skip(seq as usize * batch)
            .take(batch)
            .collect();
        Ok(Some(EntryChunk {
            import_id,
            seq,
            lead_indexes,
        }))
    }
}

impl JobRecords for Store {
    async fn insert_job(
        &self,
        plan: &ImportPlan,
        created_at: OffsetDateTime,
    ) -> Result<JobInsert, Unavailable> {
        Ok(Store::insert_job(self, plan, created_at).await?)
    }

    async fn mark_queued(
        &self,
        import_id: &ImportId,
        entry_ids: &[String],
    ) -> Result<(), Unavailable> {
        Ok(Store::mark_queued(self, import_id, entry_ids).await?)
    }

    async fn load_job(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, Unavailable> {
        Ok(Store::load_job(self, import_id).await?)
    }
}
