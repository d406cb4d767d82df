//! `import_jobs`: one row per accepted import, written before anything is queued, so a job's
//! existence, its content hash (for idempotent retries), its plan and its valid leads (the
//! payload) never depend on Redis.

use super::import_chunks::outcome_from_row;
use super::{Store, StoreError, payload};
use crate::domain::{CreatedBy, ImportId, OnExisting};
use crate::job::plan::{ImportPlan, QueuedChunk};
use crate::job::status::{JobSnapshot, LeadError, STATUS_ERRORS};
use crate::ports::{JobInsert, JobRecords, Unavailable};
use sqlx::Row;
use sqlx::types::Json;
use std::collections::HashSet;
use std::time::Duration;
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
            "INSERT INTO import_jobs (import_id, created_by, payload_hash, total, chunk_count, batch_size, rejected, created_at, payload, rejected_rows, parent_import_id, callback_url, on_existing)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (import_id) DO NOTHING",
        )
        .bind(plan.import_id.as_str())
        .bind(plan.created_by.as_str())
        .bind(&plan.payload_hash)
        .bind(plan.total as i32)
        .bind(plan.chunks.len() as i32)
        .bind(plan.batch_size as i32)
        .bind(Json(&plan.rejected))
        .bind(created_at)
        .bind(payload::encode(plan))
        .bind(payload::encode_rejected(plan))
        .bind(plan.parent_import_id.as_ref().map(|p| p.as_str()))
        .bind(plan.callback_url.as_deref())
        .bind(plan.on_existing.as_str())
        .execute(&mut *self.connection().await?)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(JobInsert::Created);
        }
        let row = sqlx::query("SELECT payload_hash, queued_at IS NOT NULL AS queued FROM import_jobs WHERE import_id = $1")
            .bind(plan.import_id.as_str())
            .fetch_one(&mut *self.connection().await?)
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
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    /// What Postgres knows of a job, or `None` for an unknown id: every count, and the errors
    /// a status document shows (the first [`STATUS_ERRORS`] refused leads, and the errors of
    /// the first chunks that hold [`STATUS_ERRORS`] failures; the other chunks' are left
    /// empty), so a poll answered from Postgres stays as small as one answered from the cache.
    /// Every error is in the errors report (`Store::errors_after`).
    pub async fn load_job(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, StoreError> {
        let Some(job) = sqlx::query(
            "SELECT created_by, on_existing, total, chunk_count, created_at, cancelled_at IS NOT NULL AS cancelled,
                 jsonb_array_length(rejected) AS rejected_count,
                 COALESCE((SELECT jsonb_agg(e ORDER BY n) FROM (
                     SELECT e, n FROM jsonb_array_elements(j.rejected) WITH ORDINALITY AS r(e, n)
                     ORDER BY n LIMIT $2) AS first), '[]') AS rejected,
                 parent_import_id, ARRAY(SELECT c.import_id FROM import_jobs c WHERE c.parent_import_id = j.import_id
                                         ORDER BY c.created_at, c.import_id) AS children
             FROM import_jobs j WHERE import_id = $1",
        )
        .bind(import_id.as_str())
        .bind(STATUS_ERRORS as i64)
        .fetch_optional(&mut *self.connection().await?)
        .await?
        else {
            return Ok(None);
        };
        // Refused leads are in index order (as planned), and so are chunks by seq.
        let chunks = sqlx::query(
            "SELECT seq, successful, updated, skipped, failed, dead, processed_at,
                 CASE WHEN COALESCE(sum(failed) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) < $2
                      THEN errors ELSE '[]'::jsonb END AS errors
             FROM import_chunks WHERE import_id = $1 ORDER BY seq",
        )
        .bind(import_id.as_str())
        .bind(STATUS_ERRORS as i64)
        .fetch_all(&mut *self.connection().await?)
        .await?;
        let created_at: OffsetDateTime = job.get("created_at");
        let processed_at = || {
            chunks
                .iter()
                .map(|r| r.get::<OffsetDateTime, _>("processed_at"))
        };
        let rejected = job.get::<Json<Vec<LeadError>>, _>("rejected").0;
        Ok(Some(JobSnapshot {
            import_id: import_id.to_string(),
            created_by: job.get("created_by"),
            // The column's CHECK allows only the three names.
            on_existing: OnExisting::parse(job.get::<&str, _>("on_existing")).unwrap_or_default(),
            total: job.get::<i32, _>("total") as u64,
            chunks: job.get::<i32, _>("chunk_count") as u32,
            created_at,
            updated_at: processed_at().max().unwrap_or(created_at),
            started_at: processed_at().min(),
            rejected_count: job.get::<i32, _>("rejected_count") as u64,
            rejected,
            outcomes: chunks.iter().map(outcome_from_row).collect(),
            cancelled: job.get("cancelled"),
            parent_import_id: job.get("parent_import_id"),
            child_import_ids: job.get("children"),
            notification: self.notification_state(import_id).await?,
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
        .fetch_optional(&mut *self.connection().await?)
        .await?
        else {
            return Ok(None);
        };
        // Recorded from a parsed id, so it parses again.
        let Ok(import_id) = ImportId::parse(row.get::<&str, _>("import_id")) else {
            return Ok(None);
        };
        let seq = row.get::<i32, _>("seq") as u32;
        Ok(Some(EntryChunk {
            lead_indexes: lead_indexes(&row, seq),
            import_id,
            seq,
        }))
    }

    /// The lead indexes chunk `seq` of a job holds (the plan is known from the job's row even
    /// when its payload is not); `None` for an unknown job or a chunk it does not have.
    pub async fn chunk_lead_indexes(
        &self,
        import_id: &ImportId,
        seq: u32,
    ) -> Result<Option<Vec<u32>>, StoreError> {
        let row =
            sqlx::query("SELECT total, batch_size, rejected FROM import_jobs WHERE import_id = $1 AND $2 < chunk_count")
                .bind(import_id.as_str())
                .bind(seq as i32)
                .fetch_optional(&mut *self.connection().await?)
                .await?;
        Ok(row.map(|row| lead_indexes(&row, seq)))
    }
}

/// Chunk `seq`'s lead indexes from a row with `total`, `batch_size` and `rejected`: the valid
/// leads, in order, cut into `batch_size` (as `ImportPlan` cut them).
fn lead_indexes(row: &sqlx::postgres::PgRow, seq: u32) -> Vec<u32> {
    let rejected: HashSet<u32> = row
        .get::<Json<Vec<LeadError>>, _>("rejected")
        .0
        .iter()
        .map(|e| e.index)
        .collect();
    let batch = row.get::<i32, _>("batch_size") as usize;
    (0..row.get::<i32, _>("total") as u32)
        .filter(|i| !rejected.contains(i))
        .skip(seq as usize * batch)
        .take(batch)
        .collect()
}

/// An unfinished job the reconciler should look at.
#[derive(Debug, Clone)]
pub struct DueJob {
    pub import_id: ImportId,
    pub chunk_count: u32,
    /// The stream entry of each chunk, by `seq`, once queued; `None` while never queued.
    pub entry_ids: Option<Vec<String>>,
    /// The chunks whose outcome is recorded.
    pub decided: HashSet<u32>,
}

impl Store {
    /// Up to `limit` unfinished jobs older than `quiet` and not looked at for as long, oldest
    /// look first, stamped as looked at now. Concurrent reconcilers get different jobs
    /// (`SKIP LOCKED`).
    pub async fn jobs_due(&self, quiet: Duration, limit: usize) -> Result<Vec<DueJob>, StoreError> {
        let rows = sqlx::query(
            "WITH due AS (
                SELECT import_id FROM import_jobs
                WHERE finished_at IS NULL
                  AND created_at < now() - make_interval(secs => $1)
                  AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => $1))
                ORDER BY checked_at NULLS FIRST, created_at
                LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE import_jobs j SET checked_at = now() FROM due WHERE j.import_id = due.import_id
             RETURNING j.import_id, j.chunk_count, j.entry_ids,
                 ARRAY(SELECT c.seq FROM import_chunks c WHERE c.import_id = j.import_id) AS decided",
        )
        .bind(quiet.as_secs_f64())
        .bind(limit as i64)
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(DueJob {
                    import_id: ImportId::parse(r.get::<&str, _>("import_id")).ok()?,
                    chunk_count: r.get::<i32, _>("chunk_count") as u32,
                    entry_ids: r.get("entry_ids"),
                    decided: r
                        .get::<Vec<i32>, _>("decided")
                        .into_iter()
                        .map(|s| s as u32)
                        .collect(),
                })
            })
            .collect())
    }

    /// Notes that every chunk of the job is decided: the reconciler leaves it alone from now.
    pub async fn mark_finished(&self, import_id: &ImportId) -> Result<(), StoreError> {
        sqlx::query("UPDATE import_jobs SET finished_at = now() WHERE import_id = $1")
            .bind(import_id.as_str())
            .execute(&mut *self.connection().await?)
            .await?;
        Ok(())
    }

    /// How many of the job's chunks have a recorded outcome.
    pub async fn decided_chunks(&self, import_id: &ImportId) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM import_chunks WHERE import_id = $1")
            .bind(import_id.as_str())
            .fetch_one(&mut *self.connection().await?)
            .await?;
        Ok(n as u32)
    }

    /// Chunks `seqs` of a job (all when `None`), rebuilt from its durable payload. `Ok(None)`:
    /// no such job, or one accepted before payloads were kept. `Err(Payload)` when the payload
    /// cannot be read.
    pub async fn load_chunks(
        &self,
        import_id: &ImportId,
        seqs: Option<&[u32]>,
    ) -> Result<Option<Vec<QueuedChunk>>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT created_by, batch_size, payload, on_existing FROM import_jobs WHERE import_id = $1 AND payload IS NOT NULL",
        )
        .bind(import_id.as_str())
        .fetch_optional(&mut *self.connection().await?)
        .await?
        else {
            return Ok(None);
        };
        let created_by = CreatedBy::parse(row.get::<&str, _>("created_by"))
            .map_err(|e| StoreError::Payload(format!("created_by breaks its rule ({})", e.code)))?;
        let on_existing = OnExisting::parse(row.get::<&str, _>("on_existing"))
            .map_err(|_| StoreError::Payload("on_existing breaks its rule".to_owned()))?;
        payload::decode(
            row.get::<&[u8], _>("payload"),
            import_id,
            &created_by,
            on_existing,
            row.get::<i32, _>("batch_size") as usize,
            seqs,
        )
        .map(Some)
        .map_err(StoreError::Payload)
    }

    /// Records the stream entries chunks were queued again as.
    pub async fn set_entry_ids(
        &self,
        import_id: &ImportId,
        entries: &[(u32, String)],
    ) -> Result<(), StoreError> {
        // Postgres arrays are 1-based: seq k lives at k + 1. (One UPDATE … FROM unnest would
        // change the row once, with one of the pairs: the array is rebuilt instead.)
        sqlx::query(
            "UPDATE import_jobs SET entry_ids = (
                 SELECT array_agg(COALESCE(e.id, old.id) ORDER BY old.ord)
                 FROM unnest(entry_ids) WITH ORDINALITY AS old(id, ord)
                 LEFT JOIN unnest($2::int[], $3::text[]) AS e(seq, id) ON e.seq + 1 = old.ord)
             WHERE import_id = $1",
        )
        .bind(import_id.as_str())
        .bind(entries.iter().map(|e| e.0 as i32).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.1.as_str()).collect::<Vec<_>>())
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
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

    async fn decided_chunks(&self, import_id: &ImportId) -> Result<u32, Unavailable> {
        Ok(Store::decided_chunks(self, import_id).await?)
    }

    async fn existing_emails(
        &self,
        emails: &[&str],
    ) -> Result<std::collections::HashSet<String>, Unavailable> {
        if emails.is_empty() {
            return Ok(Default::default());
        }
        let found: Vec<String> =
            sqlx::query_scalar("SELECT email FROM leads WHERE email = ANY($1::text[])")
                .bind(emails)
                .fetch_all(&mut *self.connection().await.map_err(Box::new)?)
                .await
                .map_err(Box::new)?;
        Ok(found.into_iter().collect())
    }
}
