//! `webhook_deliveries`: the notifications owed, one row per import and URL (see `webhook`).

use super::{Store, StoreError};
use crate::domain::ImportId;
use crate::job::status::NotificationState;
use sqlx::Row;
use time::OffsetDateTime;

/// A notification to send now.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The `webhook-id`.
    pub webhook_id: String,
    pub import_id: ImportId,
    pub url: String,
    pub body: Option<String>,
    pub attempts: u32,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Owes a notification for each of `import_ids` that has finished (every chunk decided),
    /// to its own `callback_url` and to each of the deployment's `targets`; once per import
    /// and target, however often it is called.
    pub async fn owe_notifications(
        &self,
        import_ids: &[&str],
        targets: &[String],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (import_id, url)
             SELECT j.import_id, u.url
             FROM import_jobs j
             CROSS JOIN LATERAL (SELECT j.callback_url UNION ALL SELECT unnest($2::text[])) AS u(url)
             WHERE j.import_id = ANY($1) AND u.url IS NOT NULL
               AND (SELECT count(*) FROM import_chunks c WHERE c.import_id = j.import_id) >= j.chunk_count
             ON CONFLICT (import_id, url) DO NOTHING",
        )
        .bind(import_ids)
        .bind(targets)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
    }

    /// Up to `limit` notifications due now, each taken for `lease` (its next attempt is moved
    /// past it) so that concurrent drains send different ones.
    pub async fn take_due_notifications(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT webhook_id FROM webhook_deliveries
                 WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
             UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2)
             FROM due WHERE d.webhook_id = due.webhook_id
             RETURNING d.webhook_id::text AS webhook_id, d.import_id, d.url, d.body, d.attempts, d.created_at",
        )
        .bind(limit as i64)
        .bind(lease.as_secs_f64())
        .fetch_all(&mut *self.connection().await?)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(DueDelivery {
                    webhook_id: r.get("webhook_id"),
                    import_id: ImportId::parse(r.get::<&str, _>("import_id")).ok()?,
                    url: r.get("url"),
                    body: r.get("body"),
                    attempts: r.get::<i32, _>("attempts") as u32,
                    created_at: r.get("created_at"),
                })
            })
            .collect())
    }

    /// Records an attempt: its `body` (kept for the next ones), the answer's status (`None`:
    /// no answer), and what follows: delivered, tried again at `next`, or given up.
    pub async fn record_attempt(
        &self,
        webhook_id: &str,
        body: &str,
        status: Option<u16>,
        next: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        sqlx::query(
            "UPDATE webhook_deliveries SET body = $2, attempts = attempts + 1,
                 last_attempt_at = now(), last_status = $3,
                 delivered_at = CASE WHEN $4 THEN now() END,
                 gave_up_at = CASE WHEN NOT $4 AND $5::timestamptz IS NULL THEN now() END,
                 next_attempt_at = COALESCE($5, next_attempt_at)
             WHERE webhook_id = $1::uuid",
        )
        .bind(webhook_id)
        .bind(body)
        .bind(status.map(i32::from))
        .bind(delivered)
        .bind(next)
        .execute(&mut *self.connection().await?)
        .await?;
        Ok(())
    }

    /// The import's latest notification attempt; `None` when none is owed.
    pub async fn notification_state(
        &self,
        import_id: &ImportId,
    ) -> Result<Option<NotificationState>, StoreError> {
        let row = sqlx::query(
            "SELECT attempts, last_attempt_at, last_status, delivered_at IS NOT NULL AS delivered
             FROM webhook_deliveries WHERE import_id = $1
             ORDER BY last_attempt_at DESC NULLS LAST LIMIT 1",
        )
        .bind(import_id.as_str())
        .fetch_optional(&mut *self.connection().await?)
        .await?;
        Ok(row.map(|r| NotificationState {
            attempts: r.get::<i32, _>("attempts") as u32,
            last_attempt_at: r.get("last_attempt_at"),
            last_response_code: r.get::<Option<i32>, _>("last_status").map(|s| s as u16),
            delivered: r.get("delivered"),
        }))
    }
}
