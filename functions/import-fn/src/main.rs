//! import-fn: `POST /leads/import` behind API Gateway (HTTP API).
//! Validates the request, records the job and queues it; the handler lives in `shared::api`.

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Clients are built once per execution environment and reused by every request.
    let app = shared::app::App::from_env().await?;
    run(shared::api::import_router(app)).await
}
