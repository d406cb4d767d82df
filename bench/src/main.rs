//! leads-bench (`make bench`): the pipeline's throughput, each figure beside its baseline, in
//! one run against private Redis and durable Postgres servers.
//!
//! Phases, in order: COPY (the write side's limit), the seed's algorithm, pipelined XADD (the
//! import side's limit), `POST /leads/import` to a `leads-local` process, the drain (a child
//! process running drain-fn's handler until the stream is empty), `GET status` under load, and
//! cold starts of the release bootstraps under a Runtime API emulator. Writes
//! `target/bench/results.json`, `BENCHMARKS.md` and `docs/bench-leads-per-s.svg`.
//!
//! `leads-bench drain-child` is the drain phase's child process (internal).
//!
//! This file holds the phase sequence (`run`) and what each phase records; the phases live in
//! `baselines`, `load` (against `leads_local`), `drain` (with `server_cpu`) and `bootstraps`,
//! all on one synthetic `workload`; `report` writes the results.

mod baselines;
mod bootstraps;
mod client;
mod drain;
mod emulator;
mod leads_local;
mod load;
mod report;
mod server_cpu;
mod workload;

use anyhow::{Context as _, ensure};
use baselines::{copy_baseline, insert_select_baseline, seed_baseline, xadd_baseline};
use bootstraps::bootstrap_phase;
use drain::{drain_child, drain_phase};
use leads_local::LeadsLocal;
use load::{import_phase, status_phase};
use local_servers::{PostgresServer, RedisServer, create_database};
use serde_json::{Value, json};
use server_cpu::{port_of, server_cpu_s};
use shared::app::App;
use shared::config::Config;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workload::Workload;

/// The repository root (BENCHMARKS.md, docs/, target/bench/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a whole number, got {v:?}")),
        _ => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::args().nth(1).as_deref() == Some("drain-child") {
        return runtime.block_on(drain_child());
    }
    // The servers die with the thread that started them (PR_SET_PDEATHSIG): this one, which
    // lives until the end of the run.
    let redis = RedisServer::start().context("starting a private redis-server")?;
    let postgres = PostgresServer::start_with(true).context("starting a private PostgreSQL")?;
    let result = runtime.block_on(run(&redis, &postgres));
    drop(runtime);
    drop(postgres);
    drop(redis);
    result
}

async fn run(redis: &RedisServer, postgres: &PostgresServer) -> anyhow::Result<()> {
    let n = env_usize("BENCH_LEADS", 100_000)?;
    let concurrency = env_usize("BENCH_CONCURRENCY", 8)?.max(1);
    let drain_timeout_s = env_usize("BENCH_DRAIN_TIMEOUT_S", 60)?.max(5);
    ensure!(n > 0, "BENCH_LEADS must be positive");
    create_database(&postgres.url("postgres"), "leads").await?;
    let database_url = postgres.url("leads");
    let redis_url = redis.url();
    let config = Config::from_env()?;
    let (batch_size, read_count, parallel_batches) = (
        config.batch_size,
        config.drain_read_count,
        config.drain_parallel_batches,
    );
    let mut settings = Config::from_env()?;
    settings.redis_url = redis_url.clone();
    settings.database_url = database_url.clone();
    let app = App::new(settings)?;
    app.store.migrate().await?;
    let db = app.store.pool().clone();

    eprintln!(
        "bench: {n} leads, BATCH_SIZE={batch_size}, DRAIN_READ_COUNT={read_count}, DRAIN_PARALLEL_BATCHES={parallel_batches}"
    );
    let work = Workload::new(n, batch_size)?;
    let valid = work.valid();
    eprintln!(
        "bench: {} requests, {valid} valid leads in {} chunks, {} rejected at import",
        work.bodies.len(),
        work.queued_chunks().count(),
        work.rejected()
    );
    let mut r = report::Results::default();
    r.set("leads", n as f64);
    r.set("valid_leads", valid as f64);
    r.set("batch_size", batch_size as f64);
    r.set("drain_read_count", read_count as f64);
    r.set("drain_parallel_batches", parallel_batches as f64);
    r.set("concurrency", concurrency as f64);

    // --- COPY: the write side's limit ------------------------------------------------------
    let copy = copy_baseline(&db, &work).await?;
    eprintln!("copy: {valid} rows in {:.2}s", copy.as_secs_f64());
    r.set("copy_leads_per_s", valid as f64 / copy.as_secs_f64());
    let upsert = insert_select_baseline(&db).await?;
    eprintln!(
        "insert…select…on conflict: {valid} rows in {:.2}s",
        upsert.as_secs_f64()
    );
    r.set(
        "insert_select_on_conflict_leads_per_s",
        valid as f64 / upsert.as_secs_f64(),
    );

    // --- the seed's algorithm ---------------------------------------------------------------
    let (seeded, seed) = seed_baseline(&db, &work).await?;
    eprintln!(
        "seed algorithm: {seeded} leads in {:.2}s",
        seed.as_secs_f64()
    );
    r.set("seed_algorithm_leads", seeded as f64);
    r.set(
        "seed_algorithm_leads_per_s",
        seeded as f64 / seed.as_secs_f64(),
    );

    // --- pipelined XADD: the import side's limit --------------------------------------------
    // Short (a tenth of a second): the median of three runs.
    let mut xadds = Vec::new();
    for _ in 0..3 {
        xadds.push(xadd_baseline(&redis_url, &work).await?);
    }
    xadds.sort_unstable();
    let xadd = xadds[1];
    eprintln!("raw xadd: {valid} leads in {:.2}s", xadd.as_secs_f64());
    r.set("raw_xadd_leads_per_s", valid as f64 / xadd.as_secs_f64());

    // --- POST /leads/import to leads-local ----------------------------------------------------
    let mut local = LeadsLocal::start(&redis_url, &database_url)?;
    r.set("leads_local_cold_start_ms", local.ready_ms);
    let import = import_phase(local.addr, &work, concurrency).await;
    let import = match import {
        Ok(i) => i,
        Err(e) => {
            local.stop();
            return Err(e);
        }
    };
    eprintln!(
        "import: {n} leads in {:.2}s (p50 {:.1} ms, p99 {:.1} ms)",
        import.elapsed.as_secs_f64(),
        import.p50,
        import.p99
    );
    // Every lead of a request is accepted (the invalid ones are judged at once): the rate
    // counts all leads sent, as a client sees it.
    r.set(
        "import_leads_per_s",
        n as f64 / import.elapsed.as_secs_f64(),
    );
    r.set("import_p50_ms", import.p50);
    r.set("import_p99_ms", import.p99);

    // --- the drain: stream holding everything -> every job completed -------------------------
    let (pg_port, redis_port) = (port_of(&database_url), port_of(&redis_url));
    let cpu_before = (server_cpu_s(pg_port, true), server_cpu_s(redis_port, false));
    let drained = drain_phase(&redis_url, &database_url, drain_timeout_s);
    // Let the postmaster reap the child's backends, so their CPU is counted.
    std::thread::sleep(Duration::from_millis(300));
    r.set(
        "drain_postgres_cpu_s",
        server_cpu_s(pg_port, true) - cpu_before.0,
    );
    r.set(
        "drain_redis_cpu_s",
        server_cpu_s(redis_port, false) - cpu_before.1,
    );
    let drained = match drained {
        Ok(d) => d,
        Err(e) => {
            local.stop();
            return Err(e);
        }
    };
    let processed = drained.leads_stored + drained.leads_failed;
    eprintln!(
        "drain: {processed} leads ({} stored) in {:.2}s over {} invocations, peak RSS {:.1} MB",
        drained.leads_stored, drained.elapsed_s, drained.invocations, drained.peak_rss_mb
    );
    r.set("drain_leads_per_s", processed as f64 / drained.elapsed_s);
    r.set("drain_invocations", drained.invocations as f64);
    r.set("drain_peak_rss_mb", drained.peak_rss_mb);
    r.set("drain_process_cpu_s", drained.cpu_s);
    r.set("drain_elapsed_s", drained.elapsed_s);

    // Nothing lost, nothing doubled (that every job is `completed` is checked by the status phase).
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&db)
        .await?;
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT email) FROM leads")
        .fetch_one(&db)
        .await?;
    ensure!(
        stored as usize == valid && distinct == stored && processed as usize == valid,
        "the drain stored {stored} rows ({distinct} distinct emails) and processed {processed} leads; expected {valid}"
    );

    // --- GET status under concurrent load ---------------------------------------------------
    let status = status_phase(local.addr, &work, concurrency).await;
    local.stop();
    let status = status?;
    eprintln!(
        "status: {} requests, p50 {:.2} ms, p99 {:.2} ms",
        status.requests, status.p50, status.p99
    );
    r.set("status_requests", status.requests as f64);
    r.set("status_p50_ms", status.p50);
    r.set("status_p99_ms", status.p99);

    // --- release bootstraps: size and cold start --------------------------------------------
    let functions = bootstrap_phase(&redis_url, &database_url, &work).await;
    let mut sizes = serde_json::Map::new();
    let mut colds = serde_json::Map::new();
    for f in &functions {
        sizes.insert(f.name.clone(), json!(f.bytes));
        colds.insert(f.name.clone(), json!(f.cold_start_ms));
        eprintln!(
            "{}: {:?} bytes ({}), cold start {:?} ms",
            f.name,
            f.bytes,
            f.path.display(),
            f.cold_start_ms
        );
    }
    r.extra
        .insert("bootstrap_bytes".into(), Value::Object(sizes));
    r.extra.insert("cold_start_ms".into(), Value::Object(colds));
    r.extra.insert(
        "bootstrap_paths".into(),
        json!(
            functions
                .iter()
                .map(|f| (f.name.clone(), json!(f.path.display().to_string())))
                .collect::<serde_json::Map<_, _>>()
        ),
    );

    // --- ratios --------------------------------------------------------------------------------
    let ratio = |a: &str, b: &str, r: &report::Results| r.get(a) / r.get(b);
    r.set(
        "drain_vs_copy",
        ratio("drain_leads_per_s", "copy_leads_per_s", &r),
    );
    r.set(
        "drain_vs_seed_algorithm",
        ratio("drain_leads_per_s", "seed_algorithm_leads_per_s", &r),
    );
    r.set(
        "import_vs_xadd",
        ratio("import_leads_per_s", "raw_xadd_leads_per_s", &r),
    );

    report::write_all(&root(), &r, &functions)?;
    Ok(())
}
