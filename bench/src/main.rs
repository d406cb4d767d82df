//! leads-bench (`make bench`): the pipeline's throughput, each figure beside its baseline, in
//! one run against private Redis and durable Postgres servers.
//!
//! Phases, in order: COPY (the write side's limit), the seed's algorithm, pipelined XADD (the
//! import side's limit), `POST /leads/import` to a `leads-local` process, what the durable
//! payload costs the import, the drain (a child process running drain-fn's handler until the
//! stream is empty), `GET status` under load, cold starts of the release bootstraps under a
//! Runtime API emulator, the latency from an import's `202` to `completed` in the local run,
//! drain scaling (1, 2, 4 concurrent drains on one backlog, each beside COPY), and the `202` to
//! `completed` latency under `cargo lambda watch`. Writes `target/bench/results.json`,
//! `BENCHMARKS.md` and `docs/bench-leads-per-s.svg`.
//!
//! `leads-bench drain-child` is the drain phases' child process (internal).
//!
//! This file holds the phase sequence (`run`) and what each phase records; the phases live in
//! `baselines`, `load` (against `leads_local`), `payload`, `drain` (with `server_cpu`),
//! `bootstraps`, `latency`, `scaling` and `watch`, all on synthetic `workload`s; `report`
//! writes the results.

mod baselines;
mod bootstraps;
mod client;
mod csv_import;
mod drain;
mod emulator;
mod latency;
mod leads_local;
mod load;
mod payload;
mod report;
mod scaling;
mod server_cpu;
mod watch;
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

/// A list of whole numbers, comma-separated (`BENCH_SCALE_DRAINS=1,2,4`).
fn env_list(name: &str, default: &[usize]) -> anyhow::Result<Vec<usize>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .with_context(|| format!("{name} must list whole numbers, got {v:?}"))
            })
            .collect(),
        _ => Ok(default.to_vec()),
    }
}

/// The 1-minute load average (/proc/loadavg).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
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
    let latency_runs = env_usize("BENCH_LATENCY_RUNS", 100)?;
    let scale_leads = env_usize("BENCH_SCALE_LEADS", 500_000)?;
    let scale_drains = env_list("BENCH_SCALE_DRAINS", &[1, 2, 4])?;
    let watch_runs = env_usize("BENCH_WATCH_RUNS", 20)?;
    let watch_timeout_s = env_usize("BENCH_WATCH_TIMEOUT_S", 300)?;
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
    // The bench's own clients: the baselines, the checks, and the scaling phase's imports,
    // which must not start drains (its starter stays off).
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
    r.set("load_avg_start", load_average());

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
    let (pg_port, redis_port) = (port_of(&database_url), port_of(&redis_url));
    let mut local = LeadsLocal::start(&redis_url, &database_url)?;
    r.set("leads_local_cold_start_ms", local.ready_ms);
    // An accepted import kicks a drain unless one is registered as running; the import phase
    // measures the import alone (the drain has its own phase), so a placeholder drain is
    // registered meanwhile: each import checks, as it does while drains run, and kicks none.
    let placeholder = "bench/import-phase";
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64
        + 3_600_000;
    app.queue.register_drain(placeholder, far, false).await?;
    let cpu_before = (
        local.cpu_s(),
        server_cpu_s(pg_port, true),
        server_cpu_s(redis_port, false),
    );
    let import = import_phase(local.addr, &work, concurrency).await;
    let import_cpu = (
        local.cpu_s() - cpu_before.0,
        server_cpu_s(pg_port, true) - cpu_before.1,
        server_cpu_s(redis_port, false) - cpu_before.2,
    );
    // Its peak so far: start-up and the JSON import (the CSV phase comes next).
    r.set("import_peak_rss_mb", local.peak_rss_mb());
    // The same leads as CSV, under the same conditions (the placeholder still registered).
    let csv = csv_import::csv_phase(&app, local.addr, &work, concurrency, || local.cpu_s()).await;
    app.queue.unregister_drain(placeholder).await?;
    let (import, (csv, csv_cpu)) = match (import, csv) {
        (Ok(import), Ok(csv)) => (import, csv),
        (Err(e), _) | (_, Err(e)) => {
            local.stop();
            return Err(e);
        }
    };
    eprintln!(
        "csv import: {n} leads in {:.2}s (p50 {:.1} ms); CPU s leads-local {csv_cpu:.2}",
        csv.elapsed.as_secs_f64(),
        csv.p50
    );
    r.set(
        "csv_import_leads_per_s",
        n as f64 / csv.elapsed.as_secs_f64(),
    );
    r.set(
        "csv_import_leads_local_cpu_us_per_lead",
        csv_cpu * 1e6 / n as f64,
    );
    eprintln!(
        "import: {n} leads in {:.2}s (p50 {:.1} ms, p99 {:.1} ms); CPU s leads-local {:.2}, Postgres {:.2}, Redis {:.2}",
        import.elapsed.as_secs_f64(),
        import.p50,
        import.p99,
        import_cpu.0,
        import_cpu.1,
        import_cpu.2
    );
    // Every lead of a request is accepted (the invalid ones are judged at once): the rate
    // counts all leads sent, as a client sees it.
    r.set(
        "import_leads_per_s",
        n as f64 / import.elapsed.as_secs_f64(),
    );
    r.set("import_p50_ms", import.p50);
    r.set("import_p99_ms", import.p99);
    r.set("import_elapsed_s", import.elapsed.as_secs_f64());
    r.set("import_leads_local_cpu_s", import_cpu.0);
    r.set("import_postgres_cpu_s", import_cpu.1);
    r.set("import_redis_cpu_s", import_cpu.2);
    r.set(
        "import_leads_local_cpu_us_per_lead",
        import_cpu.0 * 1e6 / n as f64,
    );

    // --- what the durable payload costs the import ---------------------------------------------
    let cost = payload::payload_phase(&db, &work).await?;
    for (name, b) in [("workload", &cost.workload), ("varied leads", &cost.varied)] {
        eprintln!(
            "payload ({name}): JSON {:.2} µs + zstd {:.2} µs of CPU per lead, {:.0} → {:.0} bytes per lead",
            b.json_us_per_lead, b.zstd_us_per_lead, b.json_bytes_per_lead, b.stored_bytes_per_lead
        );
    }
    eprintln!(
        "payload: a job's INSERT {:.2} ms with it, {:.2} ms without",
        cost.insert_with_ms, cost.insert_without_ms
    );
    for (prefix, b) in [
        ("payload", &cost.workload),
        ("payload_varied", &cost.varied),
    ] {
        r.set(&format!("{prefix}_json_us_per_lead"), b.json_us_per_lead);
        r.set(&format!("{prefix}_zstd_us_per_lead"), b.zstd_us_per_lead);
        r.set(
            &format!("{prefix}_json_bytes_per_lead"),
            b.json_bytes_per_lead,
        );
        r.set(
            &format!("{prefix}_stored_bytes_per_lead"),
            b.stored_bytes_per_lead,
        );
        // Per lead sent (the import's rate counts those), against leads-local's CPU per lead
        // sent; the workload's share is of this import, the varied one's an estimate.
        r.set(
            &format!("{prefix}_share_of_import_cpu"),
            b.us_per_lead() * valid as f64 / n as f64 / r.get("import_leads_local_cpu_us_per_lead"),
        );
    }
    r.set("payload_insert_with_ms", cost.insert_with_ms);
    r.set("payload_insert_without_ms", cost.insert_without_ms);

    // --- the drain: stream holding everything -> every job completed -------------------------
    let cpu_before = (server_cpu_s(pg_port, true), server_cpu_s(redis_port, false));
    let drained = drain_phase(&redis_url, &database_url, drain_timeout_s, 1);
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
    let processed = drained.processed();
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

    // --- 202 -> completed in the local run, started by the import's kick ----------------------
    if latency_runs > 0 {
        // Start from a clean checkpoint; the leads table keeps what the drain phase stored
        // and grows by every measured import.
        sqlx::query("CHECKPOINT").execute(&db).await?;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
            .fetch_one(&db)
            .await?;
        r.set("completion_leads_rows_before", rows as f64);
        let sizes = [1, 10_000];
        let completions =
            latency::completion_phase(&redis_url, &database_url, &sizes, latency_runs).await?;
        r.set("completion_runs", latency_runs as f64);
        for c in &completions {
            eprintln!(
                "202 -> completed, {} lead(s), {} runs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (from the POST: p50 {:.1} ms)",
                c.leads,
                c.runs,
                c.p(0.5),
                c.p(0.99),
                c.max_ms(),
                c.post_p(0.5)
            );
            let key = |k: &str| format!("completion_{}_{k}", c.leads);
            r.set(&key("p50_ms"), c.p(0.5));
            r.set(&key("p99_ms"), c.p(0.99));
            r.set(&key("max_ms"), c.max_ms());
            r.set(&key("from_post_p50_ms"), c.post_p(0.5));
            r.set(&key("from_post_p99_ms"), c.post_p(0.99));
        }
    }

    // --- drain scaling: one backlog, 1 / 2 / 4 concurrent drains, each beside COPY ------------
    if scale_leads > 0 && !scale_drains.is_empty() {
        let big = Workload::named(scale_leads, batch_size, "scale")?;
        eprintln!(
            "scaling: {scale_leads} leads ({} valid, {} chunks), drains {scale_drains:?}",
            big.valid(),
            big.queued_chunks().count()
        );
        let rounds = scaling::scaling_phase(
            &app,
            &big,
            &redis_url,
            &database_url,
            &scale_drains,
            drain_timeout_s,
        )
        .await?;
        r.set("scale_leads", scale_leads as f64);
        r.set("scale_valid_leads", big.valid() as f64);
        let round2 = |v: f64| (v * 100.0).round() / 100.0;
        r.extra.insert(
            "drain_scaling".into(),
            json!(
                rounds
                    .iter()
                    .map(|round| {
                        let copy = big.valid() as f64 / round.copy_s;
                        json!({
                            "drains": round.drained.drains,
                            "leads_per_s": round.leads_per_s().round(),
                            "copy_leads_per_s": copy.round(),
                            "vs_copy": round2(round.leads_per_s() / copy),
                            "elapsed_s": round2(round.drained.elapsed_s),
                            "drain_cpu_s": round2(round.drained.cpu_s),
                            "postgres_cpu_s": round2(round.postgres_cpu_s),
                            "redis_cpu_s": round2(round.redis_cpu_s),
                            "machine_busy_s": round2(round.machine_busy_s),
                            "peak_rss_mb": round2(round.drained.peak_rss_mb),
                            "invocations": round.drained.invocations,
                            "queue_s": round2(round.queue_s),
                            "queue_wal_bytes_per_lead": (round.queue_wal_bytes / big.valid() as f64).round(),
                            "drain_wal_bytes_per_lead": (round.drain_wal_bytes / big.valid() as f64).round(),
                        })
                    })
                    .collect::<Vec<_>>()
            ),
        );
    }

    // --- 202 -> completed under cargo lambda watch ---------------------------------------------
    if watch_runs > 0 {
        match watch::watch_phase(
            &redis_url,
            &database_url,
            &app.queue,
            watch_runs,
            Duration::from_secs(watch_timeout_s as u64),
        )
        .await
        {
            Ok(w) => {
                let p = watch::WatchLatency::p;
                eprintln!(
                    "cargo lambda watch, 1 lead, {} runs: 202 -> completed p50 {:.1} ms, max {:.1} ms; POST -> completed p50 {:.1} ms, max {:.1} ms; import-fn's answer p50 {:.1} ms",
                    w.runs,
                    p(&w.after_202, 0.5),
                    p(&w.after_202, 1.0),
                    p(&w.after_post, 0.5),
                    p(&w.after_post, 1.0),
                    p(&w.import, 0.5)
                );
                r.set("watch_runs", w.runs as f64);
                r.set("watch_completion_p50_ms", p(&w.after_202, 0.5));
                r.set("watch_completion_max_ms", p(&w.after_202, 1.0));
                r.set("watch_from_post_p50_ms", p(&w.after_post, 0.5));
                r.set("watch_from_post_max_ms", p(&w.after_post, 1.0));
                r.set("watch_import_p50_ms", p(&w.import, 0.5));
            }
            Err(e) => {
                eprintln!("cargo lambda watch: not measured: {e:#}");
                r.extra
                    .insert("watch_not_measured".into(), json!(format!("{e:#}")));
            }
        }
    }

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
    r.set(
        "csv_vs_json_import",
        ratio("csv_import_leads_per_s", "import_leads_per_s", &r),
    );
    // CPU per lead, JSON's over CSV's: above 1 when CSV costs less.
    r.set(
        "csv_vs_json_import_cpu",
        ratio(
            "import_leads_local_cpu_us_per_lead",
            "csv_import_leads_local_cpu_us_per_lead",
            &r,
        ),
    );
    // The same figures of a run of the commit before the durable payload, when given (a
    // missing or unreadable file only leaves them out).
    if let Ok(path) = std::env::var("BENCH_OLD_RESULTS")
        && !path.trim().is_empty()
    {
        let old = std::fs::read_to_string(path.trim())
            .map_err(anyhow::Error::from)
            .and_then(|text| Ok(serde_json::from_str::<Value>(&text)?));
        match old {
            Ok(old) => {
                r.extra.insert("before_rerun".into(), old);
            }
            Err(e) => eprintln!("BENCH_OLD_RESULTS={path} left out: {e:#}"),
        }
    }

    r.set("load_avg_end", load_average());
    report::write_all(&root(), &r, &functions)?;
    Ok(())
}
