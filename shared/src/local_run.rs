//! The local run composed: import-fn's and status-fn's routers served on one listener, and
//! drain-fn's handler run by a loop, as Lambda would: started by each accepted import and by
//! the backlog (up to `DRAIN_MAX_CONCURRENCY` at once, as drain-fn's reserved concurrency
//! caps it on AWS), and every `DRAIN_INTERVAL_MS` when none runs, as the schedule does.
//! `leads-local` (`make run`) runs it against private servers; the tests, the fuzzer and the
//! bench start it in-process.

use crate::api::router;
use crate::app::App;
use crate::aws::lambda::{DrainFunction, scheduled_invocation};
use crate::drain_starter::{DrainStarter, Kick};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

/// Each local drain invocation may run this long, like drain-fn's Lambda timeout.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves the API on `listener` and runs the drain loop until `shutdown` completes; then
/// stops the loop (an invocation cut short leaves its entries pending, as a Lambda timeout
/// would).
pub async fn serve(
    listener: TcpListener,
    mut app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain_loop = start_drain_loop(&mut app);
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    drain_loop.abort();
    served
}

/// Starts the drain loop and points `app`'s drain starter at it.
pub fn start_drain_loop(app: &mut App) -> tokio::task::JoinHandle<()> {
    let (kicks, inbox) = mpsc::unbounded_channel();
    app.starter = DrainStarter::Local(kicks);
    tokio::spawn(drain_loop(app.clone(), inbox))
}

/// Runs a drain invocation for every kick while fewer than `DRAIN_MAX_CONCURRENCY` run (a
/// kick beyond that is dropped, as the running drains take the work), and one every
/// `DRAIN_INTERVAL_MS` while none runs.
async fn drain_loop(app: App, mut kicks: mpsc::UnboundedReceiver<Kick>) {
    let limit = app.config.drain_max_concurrency as usize;
    let interval = app.config.drain_interval;
    let drain = Arc::new(DrainFunction::new(app).await);
    let slots = Arc::new(Semaphore::new(limit));
    for invocation in 0u64.. {
        let kick = tokio::select! {
            kick = kicks.recv() => match kick {
                Some(kick) => Some(kick),
                None => return,
            },
            _ = tokio::time::sleep(interval) => None,
        };
        // The schedule's tick only when nothing runs; a kick whenever a slot is free.
        if kick.is_none() && slots.available_permits() < limit {
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let mut event = scheduled_invocation(INVOCATION_TIMEOUT, format!("local-{invocation}"));
        if let Some(kick) = kick {
            event.payload = serde_json::to_value(kick).expect("a kick serializes");
        }
        let drain = drain.clone();
        tokio::spawn(async move {
            if let Err(e) = drain.handle(event).await {
                tracing::error!(error = %e, "local drain invocation failed; the next one retries");
            }
            drop(slot);
        });
    }
}
