//! Glue between the Lambda runtime and the library: drain-fn's handler, for the schedule's
//! event and for the kicks of imports and other drains.
//! (The HTTP functions need none: `lambda_http::run` serves the routers of [`crate::api`].)

use crate::app::App;
use crate::drain::{Drain, DrainReport};
use crate::drain_starter::{Kick, KickReason, drains_to_start};
use crate::reconcile::{ReconcileReport, Reconciler};
use lambda_runtime::LambdaEvent;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// drain-fn as the runtime sees it: built once per execution environment, called per event.
pub struct DrainFunction {
    app: App,
    drain: Drain,
    reconciler: Reconciler,
}

impl DrainFunction {
    /// Builds the clients and checks Redis's eviction policy, once per cold start.
    pub async fn new(app: App) -> Self {
        let drain = app.drain();
        drain.check_redis_eviction_policy().await;
        DrainFunction {
            reconciler: app.reconciler(),
            app,
            drain,
        }
    }

    /// One invocation, started by the schedule or by a [`Kick`] (an import, another drain).
    ///
    /// Registers itself as running and starts as many more drains as the backlog needs
    /// (`drain_starter`); reconciles Redis with Postgres (bounded; see `reconcile`); drains
    /// until the invocation's deadline less `DRAIN_DEADLINE_MARGIN_MS`, so the batch in flight
    /// can finish, ack and report before Lambda would cut it off, or until no entry comes;
    /// when its deadline stopped it with work left, starts its successors. Logs one line with
    /// what it did (the template's metrics). It never migrates: its database role may not
    /// (the deploy runbook's `make migrate` does, as the tables' owner).
    pub async fn handle(
        &self,
        event: LambdaEvent<serde_json::Value>,
    ) -> Result<DrainReport, lambda_runtime::Error> {
        let kick = serde_json::from_value::<Kick>(event.payload.clone()).ok();
        let generation = kick.map_or(0, |kick| kick.generation);
        let now_ms = epoch_ms();
        let time_left = time_left(event.context.deadline, now_ms)
            .saturating_sub(self.app.config.drain_deadline_margin);
        let deadline = Instant::now() + time_left;
        let registration = format!(
            "{}/{}",
            self.app.config.consumer_name, event.context.request_id
        );
        let queue = &self.app.queue;
        let until_ms = now_ms + time_left.as_millis() as u64;
        let running = queue
            .register_drain(&registration, until_ms, kick.is_some())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not register the drain");
                1
            });
        let mut started = self
            .start_more(generation, running, KickReason::FanOut)
            .await;
        let reconciled = match self.reconciler.run_once().await {
            Ok(report) => report,
            // The drain may still work (and a later invocation reconciles).
            Err(e) => {
                tracing::error!(request_id = %event.context.request_id, error = %e, "reconciliation failed");
                ReconcileReport::default()
            }
        };
        let mut report = DrainReport {
            reconciled,
            ..DrainReport::default()
        };
        loop {
            match self.drain.run_until(deadline).await {
                Ok(run) => {
                    report.oldest_pending_age_ms = run.oldest_pending_age_ms;
                    report.add(&run);
                }
                // Nothing unacked is lost: a later invocation claims it after CLAIM_IDLE_MS.
                Err(e) => {
                    let _ = queue.unregister_drain(&registration).await;
                    tracing::error!(request_id = %event.context.request_id, error = %e, "drain failed; its entries stay pending");
                    return Err(e.into());
                }
            }
            let _ = queue.unregister_drain(&registration).await;
            if Instant::now() >= deadline {
                // Stopped by the deadline: whatever is left needs successors.
                let others = queue.drains_with_time_left(0).await.unwrap_or(0);
                started += self
                    .start_more(generation, others, KickReason::Continuation)
                    .await;
                break;
            }
            // Stopped because no entry came. An import that saw this drain registered did not
            // start another: look once more now that it has left.
            match queue.backlog().await {
                Ok(backlog) if backlog.waiting > 0 => {
                    let _ = queue.register_drain(&registration, until_ms, false).await;
                }
                _ => break,
            }
        }
        report.drains_started = u64::from(started);
        // After the drain, so the notifications of the imports it finished go out now.
        report.notifications = crate::webhook::deliver_due(&self.app).await;
        tracing::info!(
            request_id = %event.context.request_id,
            generation,
            running,
            drains_started = report.drains_started,
            entries = report.entries,
            leads_stored = report.leads_stored,
            leads_failed = report.leads_failed,
            dead_lettered = report.dead_lettered,
            deleted_while_pending = report.deleted_while_pending,
            requeued = report.requeued,
            trimmed = report.trimmed,
            dead_letters_expired = report.dead_letters_expired,
            idle_consumers_removed = report.idle_consumers_removed,
            oldest_pending_age_ms = report.oldest_pending_age_ms,
            jobs_checked = report.reconciled.jobs_checked,
            jobs_queued_late = report.reconciled.jobs_queued_late,
            chunks_requeued = report.reconciled.chunks_requeued,
            caches_repaired = report.reconciled.caches_repaired,
            jobs_finished = report.reconciled.jobs_finished,
            "drain finished"
        );
        Ok(report)
    }

    /// Starts the drains the backlog needs beside `running` ones; returns how many.
    async fn start_more(&self, generation: u32, running: u64, reason: KickReason) -> u32 {
        let config = &self.app.config;
        let backlog = match self.app.queue.backlog().await {
            Ok(backlog) => backlog,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the backlog; starting no drain");
                return 0;
            }
        };
        let count = drains_to_start(
            backlog.entries(),
            running,
            config.drain_max_concurrency,
            config.drain_entries_per_drain,
            generation,
        );
        let kick = Kick {
            reason,
            generation: generation + 1,
        };
        self.app.starter.start(&self.app.queue, count, kick).await;
        count
    }
}

/// The event drain-fn's schedule sends (`events/drain-scheduled.json`), with a deadline
/// `timeout` from now as Lambda sets it: how the local run, the bench and the tests invoke the
/// handler outside Lambda.
pub fn scheduled_invocation(
    timeout: Duration,
    request_id: String,
) -> LambdaEvent<serde_json::Value> {
    let event = serde_json::from_str(include_str!("../../../events/drain-scheduled.json"))
        .expect("events/drain-scheduled.json is an EventBridge event (unit-tested)");
    let mut context = lambda_runtime::Context::default();
    context.deadline = epoch_ms() + timeout.as_millis() as u64;
    context.request_id = request_id;
    LambdaEvent::new(event, context)
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Time until the invocation's deadline. Lambda sends the deadline as epoch milliseconds;
/// `cargo lambda watch` sends the timeout itself (600000), which would read as a deadline in
/// 1970. A value too small to be an epoch time in this century is taken as such a budget.
fn time_left(deadline_ms: u64, now_ms: u64) -> Duration {
    const YEAR_2001_MS: u64 = 978_307_200_000;
    if deadline_ms < YEAR_2001_MS {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_deadline_counts_from_now() {
        assert_eq!(
            time_left(1_795_872_860_000, 1_795_872_800_000),
            Duration::from_secs(60)
        );
        assert_eq!(
            time_left(1_795_872_700_000, 1_795_872_800_000),
            Duration::ZERO,
            "already past"
        );
    }

    #[test]
    fn the_scheduled_invocation_carries_the_sample_event_and_a_deadline_from_now() {
        let invocation = scheduled_invocation(Duration::from_secs(60), "r-1".into());
        assert_eq!(invocation.payload["detail-type"], "Scheduled Event");
        assert_eq!(invocation.context.request_id, "r-1");
        let left = time_left(invocation.context.deadline, epoch_ms());
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
    }

    #[test]
    fn the_emulators_relative_deadline_is_a_budget() {
        assert_eq!(
            time_left(600_000, 1_795_872_800_000),
            Duration::from_secs(600)
        );
    }
}
