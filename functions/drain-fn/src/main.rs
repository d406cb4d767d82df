//! drain-fn: started by imports, by other drains when the backlog grows, and by an EventBridge
//! schedule as the backstop; drains the `lead:imports` stream into Postgres until its deadline
//! (less a margin) or until the stream stays empty.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::lambda::DrainFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::app::App::from_env()
        .await?
        .with_lambda_drain_starter()
        .await;
    let function = DrainFunction::new(app).await;
    let function = &function;
    run(service_fn(move |event: LambdaEvent<_>| {
        function.handle(event)
    }))
    .await
}
