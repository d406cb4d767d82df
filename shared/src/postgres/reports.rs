//! Reads for following imports: an import's errors in index order, what its leads carried,
//! and a caller's imports newest first. Every one reads Postgres, the durable record, so
//! the reports are whole however long ago the status cache expired.

use super::{Store, StoreError, payload};
use crate::domain::{ImportId, OnExisting};
use crate::job::original_rows::OriginalRow;
use crate::job::status::{JobFacts, LeadError, Tally};
use sqlx::Row;
use sqlx::types::Json;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Where a page of a caller's imports starts: after this import (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportsAfter {
    pub created_at: OffsetDateTime,
    pub import_id: String,
}

impl Store {
    /// Who created the job; `None` for an unknown id.
    pub async fn job_owner(&self, import_id: &ImportId) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT created_by FROM import_jobs WHERE import_id = $1")
                .bind(import_id.as_str())
                .fetch_optional(&mut *self.connection().await?)
                .await?,
        )
    }

    /// Up to `limit` of the job's errors (refused at import or decided by the drain) with an
    /// index above `after`, by index.
    pub async fn errors_after(
        &self,
        import_id: &ImportId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<Vec<LeadError>, StoreError> {
        let rows: Vec<Json<LeadError>> = sqlx::query_scalar(
            "SELECT e FROM (
                 SELECT jsonb_array_elements(rejected) AS e FROM import_jobs WHERE import_id = $1
                 UNION ALL
                 SELECT jsonb_array_elements(errors) FROM import_chunks WHERE import_id = $1
             ) AS all_errors
             WHERE (e->>'index')::bigint > $2
             ORDER BY (e->>'index')::bigint LIMIT $3",
        )
        .bind(import_id.as_str())
        .bind(after.map_or(-1, i64::from))
        .bind(limit as i64)
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(rows.into_iter().map(|Json(e)| e).collect())
    }

    /// What each lead of the job carried, by index: the refused leads' text as sent, the
    /// valid leads' fields from the durable payload. Empty for a job accepted before either
    /// was kept.
    pub async fn original_rows(
        &self,
        import_id: &ImportId,
    ) -> Result<HashMap<u32, OriginalRow>, StoreError> {
        let mut rows: HashMap<u32, OriginalRow> = HashMap::new();
        let rejected: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT rejected_rows FROM import_jobs WHERE import_id = $1")
                .bind(import_id.as_str())
                .fetch_optional(&mut *self.connection().await?)
                .await?
                .flatten();
        if let Some(bytes) = rejected {
            let decoded = payload::decode_rejected(&bytes).map_err(StoreError::Payload)?;
            rows.extend(decoded.into_iter().map(|r| (r.index, r)));
        }
        for chunk in self.load_chunks(import_id, None).await?.unwrap_or_default() {
            rows.extend(
                chunk
                    .leads
                    .iter()
                    .map(|l| (l.index, OriginalRow::of_lead(l))),
            );
        }
        Ok(rows)
    }

    /// Up to `limit` imports created by `created_by` (everyone's when `None`), newest first,
    /// after `after`, with what their chunks' outcomes add up to.
    pub async fn imports_page(
        &self,
        created_by: Option<&str>,
        after: Option<&ImportsAfter>,
        limit: usize,
    ) -> Result<Vec<JobFacts>, StoreError> {
        let rows = sqlx::query(
            "SELECT j.import_id, j.total, j.chunk_count, jsonb_array_length(j.rejected) AS rejected_count,
                    j.cancelled_at IS NOT NULL AS cancelled, j.created_at,
                    j.on_existing, c.decided, c.successful, c.updated, c.skipped, c.failed,
                    c.any_dead, c.started_at, c.updated_at,
                    j.parent_import_id,
                    ARRAY(SELECT k.import_id FROM import_jobs k WHERE k.parent_import_id = j.import_id
                          ORDER BY k.created_at, k.import_id) AS children
             FROM import_jobs j
             CROSS JOIN LATERAL (
                 SELECT count(*) AS decided, coalesce(sum(successful), 0)::bigint AS successful,
                        coalesce(sum(updated), 0)::bigint AS updated,
                        coalesce(sum(skipped), 0)::bigint AS skipped,
                        coalesce(sum(failed), 0)::bigint AS failed,
                        coalesce(bool_or(dead), false) AS any_dead,
                        min(processed_at) AS started_at, max(processed_at) AS updated_at
                 FROM import_chunks c WHERE c.import_id = j.import_id) c
             WHERE ($1::text IS NULL OR j.created_by = $1)
               AND ($2::timestamptz IS NULL OR (j.created_at, j.import_id) < ($2, $3))
             ORDER BY j.created_at DESC, j.import_id DESC
             LIMIT $4",
        )
        .bind(created_by)
        .bind(after.map(|a| a.created_at))
        .bind(after.map(|a| a.import_id.as_str()))
        .bind(limit as i64)
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let created_at: OffsetDateTime = r.get("created_at");
                JobFacts {
                    import_id: r.get("import_id"),
                    // The column's CHECK allows only the three names.
                    on_existing: OnExisting::parse(r.get::<&str, _>("on_existing"))
                        .unwrap_or_default(),
                    total: r.get::<i32, _>("total") as u64,
                    chunks: r.get::<i32, _>("chunk_count") as u32,
                    rejected_count: r.get::<i32, _>("rejected_count") as u64,
                    tally: Tally {
                        decided_chunks: r.get::<i64, _>("decided") as u32,
                        successful: r.get::<i64, _>("successful") as u64,
                        updated: r.get::<i64, _>("updated") as u64,
                        skipped: r.get::<i64, _>("skipped") as u64,
                        failed: r.get::<i64, _>("failed") as u64,
                        any_dead: r.get("any_dead"),
                    },
                    cancelled: r.get("cancelled"),
                    created_at,
                    updated_at: r
                        .get::<Option<OffsetDateTime>, _>("updated_at")
                        .unwrap_or(created_at),
                    started_at: r.get("started_at"),
                    parent_import_id: r.get("parent_import_id"),
                    child_import_ids: r.get("children"),
                    // The list shows the imports' progress; each status document its notification.
                    notification: None,
                }
            })
            .collect())
    }
}

impl Store {
    /// The retries of a job's failures, oldest first.
    pub async fn child_import_ids(&self, import_id: &ImportId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT import_id FROM import_jobs WHERE parent_import_id = $1 ORDER BY created_at, import_id",
        )
        .bind(import_id.as_str())
        .fetch_all(&mut *self.connection().await?)
        .await?)
    }
}
