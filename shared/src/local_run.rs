//! The local run composed: import-fn's and status-fn's routers served on one listener, and
//! drain-fn's handler called on a schedule, as EventBridge would. `leads-local` (`make run`)
//! runs it against private servers; the tests, the fuzzer and the bench start it in-process.

use crate::api::router;
use crate::app::App;
use crate::aws::lambda::{DrainFunction, scheduled_invocation};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Each local drain invocation may run this long, like drain-fn's Lambda timeout.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves the API on `listener` and drains every `DRAIN_INTERVAL_MS` until `shutdown`
/// completes; then stops the drain loop (an invocation cut short leaves its entries pending,
/// as a Lambda timeout would).
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let interval = app.config.drain_interval;
    let drain = DrainFunction::new(app.clone()).await;
    let drain_loop = tokio::spawn(async move {
        for tick in 0u64.. {
            let invocation = scheduled_invocation(INVOCATION_TIMEOUT, format!("local-{tick}"));
            if let Err(e) = drain.handle(invocation).await {
                tracing::error!(error = %e, "local drain invocation failed; retrying on the next tick");
            }
            tokio::time::sleep(interval).await;
        }
    });
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    drain_loop.abort();
    served
}
