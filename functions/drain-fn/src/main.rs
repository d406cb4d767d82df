//! drain-fn: runs on an EventBridge schedule and drains the `lead:imports` stream into
//! Postgres until its deadline (less a margin) or until the stream stays empty.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::lambda::DrainFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let function = DrainFunction::new(shared::app::App::from_env().await?).await;
    let function = &function;
    run(service_fn(move |event: LambdaEvent<_>| {
        function.handle(event)
    }))
    .await
}
