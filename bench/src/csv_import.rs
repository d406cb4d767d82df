//! CSV import beside JSON import: the same leads, each request posted again as a CSV body to
//! the same `leads-local`, under the same conditions as the JSON import phase (its drain
//! placeholder still registered, so no drain runs meanwhile). Then the CSV imports are taken
//! back out (their stream entries, job rows and status documents), so that the drain phase
//! drains exactly the JSON import, as before.

use crate::load::{Latencies, csv_import_phase};
use crate::workload::Workload;
use shared::app::App;
use std::net::SocketAddr;

pub async fn csv_phase(
    app: &App,
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
) -> anyhow::Result<Latencies> {
    let measured = csv_import_phase(addr, work, concurrency).await;
    remove_csv_imports(app).await?;
    measured
}

async fn remove_csv_imports(app: &App) -> anyhow::Result<()> {
    let jobs: Vec<(String, Option<Vec<String>>)> = sqlx::query_as(
        "DELETE FROM import_jobs WHERE import_id LIKE '%-csv' RETURNING import_id, entry_ids",
    )
    .fetch_all(app.store.pool())
    .await?;
    let keys = app.queue.keys();
    let mut redis = redis::Client::open(app.config.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut pipe = redis::pipe();
    for (import_id, entries) in &jobs {
        pipe.cmd("DEL").arg(keys.job(import_id)).ignore();
        for id in entries.iter().flatten() {
            pipe.cmd("XDEL").arg(&keys.stream).arg(id).ignore();
        }
    }
    pipe.query_async::<()>(&mut redis).await?;
    Ok(())
}
