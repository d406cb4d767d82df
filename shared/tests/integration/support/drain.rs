//! drain-fn's handler, invoked as Lambda would.

use super::app::TestApp;
use super::leads::synthetic_leads;
use serde_json::Value;
use shared::aws::lambda::DrainFunction;
use shared::drain::DrainReport;
use std::time::Duration;

impl TestApp {
    pub async fn drain_function(&self) -> DrainFunction {
        DrainFunction::new(self.app.clone()).await
    }

    /// One drain-fn invocation (a cold start) that may fail (a fault was injected).
    pub async fn try_drain_once(&self) -> Result<DrainReport, lambda_runtime::Error> {
        self.drain_function()
            .await
            .handle(scheduled_event(30_000))
            .await
    }

    /// One drain-fn invocation (a cold start), which must succeed.
    pub async fn drain_once(&self) -> DrainReport {
        self.try_drain_once().await.expect("drain invocation")
    }

    /// Imports `n` leads as `import_id` and drains them with the warm drain-fn `drain`: every
    /// one is stored, and the job completes and is accounted for.
    pub async fn import_and_drain(&self, drain: &DrainFunction, import_id: &str, n: usize) {
        self.post_accepted(import_id, &synthetic_leads(n, import_id, 0, 0))
            .await;
        let drained = drain_until_done(drain, Failures::FailTheTest).await;
        assert_eq!(drained.report.leads_stored, n as u64, "{import_id}");
        let doc = self.assert_job_accounted(import_id, n as u64).await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }

    /// Invokes drain-fn until it has nothing new to take (see [`drain_until_done`]); any
    /// failed invocation fails the test.
    pub async fn drain_all(&self) -> DrainReport {
        drain_until_done(&self.drain_function().await, Failures::FailTheTest)
            .await
            .report
    }
}

/// How [`drain_until_done`] treats a failed invocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Failures {
    /// Nothing was meant to fail: the test fails.
    FailTheTest,
    /// A server is down or restarting: the failure is counted and the invocation retried
    /// after a pause. Since a failed invocation leaves its entries pending, the drain is done
    /// only once nothing is left pending either.
    RetryUntilNothingPending,
}

/// The invocations of [`drain_until_done`] added up.
pub struct Drained {
    /// The sum of the counts of the invocations that succeeded.
    pub report: DrainReport,
    pub failed_invocations: u32,
}

/// Invokes `drain` (one warm function, as Lambda reuses it) until an invocation succeeds
/// without taking an entry. Entries held by a consumer that died stay pending until they
/// have idled `CLAIM_IDLE_MS`; with [`Failures::RetryUntilNothingPending`] the drain goes on
/// until none is left.
pub async fn drain_until_done(drain: &DrainFunction, failures: Failures) -> Drained {
    let mut drained = Drained {
        report: DrainReport::default(),
        failed_invocations: 0,
    };
    for _ in 0..200 {
        match drain.handle(scheduled_event(30_000)).await {
            Ok(r) => {
                drained.report.add(&r);
                let pending_left =
                    failures == Failures::RetryUntilNothingPending && r.oldest_pending_age_ms > 0;
                if r.entries == 0 && !pending_left {
                    return drained;
                }
            }
            Err(e) if failures == Failures::FailTheTest => panic!("drain invocation: {e:?}"),
            Err(_) => {
                drained.failed_invocations += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("the drain did not finish in 200 invocations");
}

/// The sample EventBridge event from `events/`, with an invocation deadline `ms` from now.
pub fn scheduled_event(ms: u64) -> lambda_runtime::LambdaEvent<Value> {
    shared::aws::lambda::scheduled_invocation(Duration::from_millis(ms), String::new())
}
