//! Glue between the Lambda runtime and the library: the drain's scheduled-event handler.
//! (The HTTP functions need none: `lambda_http::run` serves the routers of [`crate::http`].)

use crate::app::App;
use crate::drain::{Drain, DrainReport};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// drain-fn as the runtime sees it: built once per execution environment, called per event.
pub struct DrainFunction {
    app: App,
    drain: Drain,
    migrated: OnceCell<()>,
}

impl DrainFunction {
    /// Builds the clients and checks Redis's eviction policy, once per cold start.
    pub async fn new(app: App) -> Self {
        let drain = app.drain();
        drain.check_redis_eviction_policy().await;
        DrainFunction {
            app,
            drain,
            migrated: OnceCell::new(),
        }
    }

    /// Applies pending migrations on the first invocation that reaches Postgres (retried by
    /// later invocations if the database was down), then drains.
    pub async fn handle(
        &self,
        event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
    ) -> Result<DrainReport, lambda_runtime::Error> {
        self.migrated
            .get_or_try_init(|| self.app.store.migrate())
            .await?;
        handle_scheduled_drain(&self.drain, self.app.config.drain_deadline_margin, event).await
    }
}

/// drain-fn's handler: drains until the invocation's deadline less `margin`, so the batch in
/// flight can finish, ack and report before Lambda would cut it off.
pub async fn handle_scheduled_drain(
    drain: &Drain,
    margin: Duration,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<DrainReport, lambda_runtime::Error> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let time_left =
        Duration::from_millis(event.context.deadline.saturating_sub(now_ms)).saturating_sub(margin);
    let outcome = drain.run_until(Instant::now() + time_left).await;
    match &outcome {
        Ok(report) => tracing::info!(
            request_id = %event.context.request_id,
            entries = report.entries,
            leads_stored = report.leads_stored,
            leads_failed = report.leads_failed,
            dead_lettered = report.dead_lettered,
            deleted_while_pending = report.deleted_while_pending,
            trimmed = report.trimmed,
            oldest_pending_age_ms = report.oldest_pending_age_ms,
            "drain finished"
        ),
        // Nothing unacked is lost: a later invocation claims it after CLAIM_IDLE_MS.
        Err(e) => {
            tracing::error!(request_id = %event.context.request_id, error = %e, "drain failed; its entries stay pending")
        }
    }
    Ok(outcome?)
}
