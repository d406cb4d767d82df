//! status-fn: `GET /leads/import/{importId}/status` behind API Gateway (HTTP API).
//! Serves the job's document from the Redis cache or, once that expired, from Postgres.

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::app::App::from_env().await?;
    run(shared::api::status_router(app)).await
}
