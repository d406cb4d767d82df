//! import-fn: `POST /leads/import` behind API Gateway (HTTP API).
//! Validates the request, records the job, queues it and starts a drain for it; the handler
//! lives in `shared::api`.

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Clients are built once per execution environment and reused by every request.
    let app = shared::app::App::from_env()
        .await?
        .with_lambda_drain_starter()
        .await;
    run(shared::api::import_router(app)).await
}
