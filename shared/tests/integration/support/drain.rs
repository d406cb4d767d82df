//! drain-fn's handler, invoked as Lambda would.

use super::app::TestApp;
use serde_json::Value;
use shared::drain::DrainReport;
use shared::lambda::DrainFunction;

impl TestApp {
    /// Runs drain-fn's handler once with the sample scheduled event, as Lambda would.
    pub async fn drain_once(&self) -> DrainReport {
        self.drain_function()
            .await
            .handle(scheduled_event(30_000))
            .await
            .expect("drain invocation")
    }

    /// One drain-fn invocation that may fail (a fault was injected).
    pub async fn try_drain_once(&self) -> Result<DrainReport, lambda_runtime::Error> {
        self.drain_function()
            .await
            .handle(scheduled_event(30_000))
            .await
    }

    pub async fn drain_function(&self) -> DrainFunction {
        DrainFunction::new(self.app.clone()).await
    }

    /// Drains until the stream has nothing new or pending left.
    pub async fn drain_all(&self) -> DrainReport {
        let mut total = DrainReport::default();
        for _ in 0..100 {
            let r = self.drain_once().await;
            total.entries += r.entries;
            total.leads_stored += r.leads_stored;
            total.leads_failed += r.leads_failed;
            total.dead_lettered += r.dead_lettered;
            if r.entries == 0 {
                return total;
            }
        }
        panic!("the drain did not finish in 100 invocations");
    }

    /// Invokes `drain` until an invocation succeeds with nothing new and nothing pending;
    /// failed invocations (a server down) are retried after a pause. Returns the number of
    /// failed invocations.
    pub async fn drain_until_done(&mut self, drain: &DrainFunction) -> u32 {
        let mut failures = 0;
        for _ in 0..200 {
            match drain.handle(scheduled_event(30_000)).await {
                Ok(r) if r.entries == 0 && r.oldest_pending_age_ms == 0 => return failures,
                Ok(_) => {}
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        panic!("the drain did not finish in 200 invocations");
    }
}

/// The sample EventBridge event from `events/`, with an invocation deadline `ms` from now.
pub fn scheduled_event(
    ms: u64,
) -> lambda_runtime::LambdaEvent<aws_lambda_events::eventbridge::EventBridgeEvent<Value>> {
    shared::lambda::scheduled_invocation(std::time::Duration::from_millis(ms), String::new())
}
