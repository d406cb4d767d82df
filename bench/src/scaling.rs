//! Drain scaling: one backlog (`BENCH_SCALE_LEADS`, 500,000 by default) queued through the
//! import use case with the fan-out off, then drained by 1, 2 and 4 concurrent drains (each a
//! process running drain-fn's handler with a consumer of its own), each time beside COPY of
//! the same rows, on the same freshly emptied tables.

use crate::baselines::copy_baseline;
use crate::drain::{Drained, drain_phase};
use crate::server_cpu::{machine_busy_s, port_of, server_cpu_s, wal_bytes_since, wal_lsn};
use crate::workload::Workload;
use anyhow::ensure;
use shared::app::App;
use shared::import::{ImportAnswer, ImportBody, accept_import};
use shared::job::caller::Caller;
use shared::job::csv_request::ImportOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Concurrent imports queueing the backlog.
const QUEUEING_TASKS: usize = 4;

/// One round: the same backlog drained by `drains` drains, beside COPY.
pub struct Round {
    pub drained: Drained,
    pub copy_s: f64,
    pub postgres_cpu_s: f64,
    pub redis_cpu_s: f64,
    /// CPU seconds the whole machine was busy during the drain (all processes, the bench's
    /// and other work's).
    pub machine_busy_s: f64,
    pub queue_s: f64,
    /// WAL Postgres wrote while the backlog was queued (the jobs with their payloads) and
    /// while it was drained.
    pub queue_wal_bytes: f64,
    pub drain_wal_bytes: f64,
}

impl Round {
    pub fn leads_per_s(&self) -> f64 {
        self.drained.processed() as f64 / self.drained.elapsed_s
    }
}

pub async fn scaling_phase(
    app: &App,
    work: &Workload,
    redis_url: &str,
    database_url: &str,
    drains: &[usize],
    timeout_s: usize,
) -> anyhow::Result<Vec<Round>> {
    let db = app.store.pool().clone();
    let (pg_port, redis_port) = (port_of(database_url), port_of(redis_url));
    let mut rounds = Vec::new();
    for &n in drains {
        // The same start every round: empty tables, an empty Redis.
        sqlx::query("TRUNCATE leads, import_chunks, webhook_deliveries, import_jobs")
            .execute(&db)
            .await?;
        redis::cmd("FLUSHALL")
            .query_async::<()>(
                &mut redis::Client::open(redis_url)?
                    .get_multiplexed_async_connection()
                    .await?,
            )
            .await?;

        let lsn = wal_lsn(&db).await?;
        let queue_s = queue_backlog(app, work).await?;
        let queue_wal_bytes = wal_bytes_since(&db, &lsn).await?;
        sqlx::query("CHECKPOINT").execute(&db).await?;
        let copy = copy_baseline(&db, work).await?;
        sqlx::query("DROP TABLE leads_copy").execute(&db).await?;
        sqlx::query("CHECKPOINT").execute(&db).await?;

        let lsn = wal_lsn(&db).await?;
        let before = (
            server_cpu_s(pg_port, true),
            server_cpu_s(redis_port, false),
            machine_busy_s(),
        );
        let drained = drain_phase(redis_url, database_url, timeout_s, n)?;
        let machine = machine_busy_s() - before.2;
        let drain_wal_bytes = wal_bytes_since(&db, &lsn).await?;
        // Let the postmaster reap the children's backends, so their CPU is counted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let round = Round {
            postgres_cpu_s: server_cpu_s(pg_port, true) - before.0,
            redis_cpu_s: server_cpu_s(redis_port, false) - before.1,
            machine_busy_s: machine,
            copy_s: copy.as_secs_f64(),
            queue_s,
            queue_wal_bytes,
            drain_wal_bytes,
            drained,
        };
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
            .fetch_one(&db)
            .await?;
        let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM import_chunks")
            .fetch_one(&db)
            .await?;
        ensure!(
            stored as usize == work.valid()
                && chunks as usize == work.queued_chunks().count()
                && round.drained.processed() as usize == work.valid(),
            "{n} drains stored {stored} rows and {chunks} chunk outcomes, processed {} leads; expected {} and {}",
            round.drained.processed(),
            work.valid(),
            work.queued_chunks().count()
        );
        eprintln!(
            "scaling: {n} drain(s): {} leads in {:.2}s ({:.0} leads/s; COPY {:.0} leads/s), drains {:.2} / Postgres {:.2} / Redis {:.2} CPU s, machine busy {:.2} s",
            round.drained.processed(),
            round.drained.elapsed_s,
            round.leads_per_s(),
            work.valid() as f64 / round.copy_s,
            round.drained.cpu_s,
            round.postgres_cpu_s,
            round.redis_cpu_s,
            round.machine_busy_s
        );
        rounds.push(round);
    }
    Ok(rounds)
}

/// Every request of `work` through the import use case (`accept_import`, what `POST
/// /leads/import` runs) with `app`, whose drain starter is off: nothing drains meanwhile.
async fn queue_backlog(app: &App, work: &Workload) -> anyhow::Result<f64> {
    ensure!(
        matches!(app.starter, shared::drain_starter::DrainStarter::Off),
        "the backlog must be queued with the fan-out off"
    );
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new(work.bodies.iter().map(|(_, b)| b.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..QUEUEING_TASKS {
        let (app, bodies, next) = (app.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return anyhow::Ok(());
                };
                let answer = accept_import(
                    &app.store,
                    &app.queue,
                    &app.cache,
                    &app.kicker(),
                    app.import_limits(),
                    &Caller::Unverified,
                    ImportBody::Json(body, &ImportOptions::default()),
                )
                .await?;
                ensure!(
                    matches!(answer, ImportAnswer::Accepted { .. }),
                    "request {i} was not newly accepted: {answer:?}"
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}
