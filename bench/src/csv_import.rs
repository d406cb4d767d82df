//! CSV import beside JSON import: the same leads, each request posted again as a CSV body to
//! the same `leads-local`, under the same conditions as the JSON import phase (its drain
//! placeholder still registered, so no drain runs meanwhile). After each run the CSV imports
//! are taken back out (their stream entries, job rows and status documents), so that the next
//! run imports them anew and the drain phase drains exactly the JSON import, as before.
//! Three runs, the median kept: one run is under half a second, which the shared machine's
//! other work can stretch by a third.

use crate::load::{Latencies, csv_import_phase};
use crate::workload::Workload;
use shared::app::App;
use std::net::SocketAddr;

/// The median run, and its `leads-local` CPU seconds (`cpu_s` reads them).
pub async fn csv_phase(
    app: &App,
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
    cpu_s: impl Fn() -> f64,
) -> anyhow::Result<(Latencies, f64)> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let before = cpu_s();
        let measured = csv_import_phase(addr, work, concurrency).await;
        let cpu = cpu_s() - before;
        remove_csv_imports(app).await?;
        runs.push((measured?, cpu));
    }
    runs.sort_by_key(|(run, _)| run.elapsed);
    Ok(runs.swap_remove(1))
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
