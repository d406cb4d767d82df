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

mod client;
mod emulator;
mod report;

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use redis::AsyncCommands as _;
use serde_json::{Value, json};
use shared::app::App;
use shared::config::Config;
use shared::import_plan::{ImportPlan, QueuedChunk};
use shared::import_request::ImportRequest;
use shared::lambda::DrainFunction;
use shared::local_servers::{PostgresServer, RedisServer, create_database};
use sqlx::PgPool;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Leads per `POST /leads/import`.
const LEADS_PER_REQUEST: usize = 1_000;
/// Leads the seed's algorithm gets: about 2 s of batch delays plus the inserts.
const SEED_SUBSET: usize = 1_000;
const CREATED_BY: &str = "507f1f77bcf86cd799439011";

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

/// The synthetic import: `n` leads in requests of `LEADS_PER_REQUEST`. Lead `i` is invalid
/// when `i % 101 == 100`, and repeats the email of lead `i - 1` when `i % 211 == 210`.
struct Workload {
    bodies: Vec<(String, Bytes)>,
    plans: Vec<ImportPlan>,
}

impl Workload {
    fn new(n: usize, batch_size: usize) -> anyhow::Result<Self> {
        let mut bodies = Vec::new();
        let mut plans = Vec::new();
        for (r, start) in (0..n).step_by(LEADS_PER_REQUEST).enumerate() {
            let leads: Vec<Value> = (start..n.min(start + LEADS_PER_REQUEST))
                .map(|i| {
                    let email = if i % 101 == 100 {
                        format!("not-an-email-{i}")
                    } else if i % 211 == 210 && i > start {
                        format!("lead{}@bench.example.com", i - 1)
                    } else {
                        format!("lead{i}@bench.example.com")
                    };
                    json!({
                        "fullName": format!("Lead Number {i}"),
                        "email": email,
                        "phone": format!("+1 (555) 01{:04}", i % 10_000),
                        "status": "NEW",
                        "source": "website",
                    })
                })
                .collect();
            let import_id = format!("bench-{r:06}");
            let body = serde_json::to_vec(&json!({
                "importId": import_id,
                "createdBy": CREATED_BY,
                "leads": leads,
            }))?;
            let request = ImportRequest::parse(&body, usize::MAX)
                .map_err(|p| anyhow::anyhow!("synthetic request refused: {p:?}"))?;
            plans.push(ImportPlan::new(request, batch_size));
            bodies.push((import_id, Bytes::from(body)));
        }
        Ok(Workload { bodies, plans })
    }

    fn queued_chunks(&self) -> impl Iterator<Item = QueuedChunk> + '_ {
        self.plans.iter().flat_map(|p| {
            p.chunks.iter().map(|c| QueuedChunk {
                import_id: p.import_id.to_string(),
                seq: c.seq,
                created_by: p.created_by.as_str().to_owned(),
                leads: c.leads.clone(),
            })
        })
    }

    fn valid(&self) -> usize {
        self.plans
            .iter()
            .flat_map(|p| &p.chunks)
            .map(|c| c.leads.len())
            .sum()
    }

    fn rejected(&self) -> usize {
        self.plans.iter().map(|p| p.rejected.len()).sum()
    }
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

    // Nothing lost, nothing doubled, every job completed.
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

/// COPY of the valid rows into an empty table shaped like `leads` (same columns, checks,
/// unique email index), in one statement and one transaction.
async fn copy_baseline(db: &PgPool, work: &Workload) -> anyhow::Result<Duration> {
    sqlx::query("CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)")
        .execute(db)
        .await?;
    let mut data = Vec::with_capacity(work.valid() * 120);
    for chunk in work.queued_chunks() {
        for l in &chunk.leads {
            let lead = &l.lead;
            for (i, field) in [
                Some(lead.full_name.as_str()),
                Some(lead.email.as_str()),
                lead.phone.as_deref(),
                Some(lead.status.as_str()),
                Some(lead.source.as_str()),
                Some(chunk.created_by.as_str()),
                Some(chunk.import_id.as_str()),
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    data.push(b'\t');
                }
                match field {
                    None => data.extend_from_slice(b"\\N"),
                    Some(text) => copy_escape(text, &mut data),
                }
            }
            data.push(b'\n');
        }
    }
    let mut conn = db.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY leads_copy (full_name, email, phone, status, source, created_by, import_id) FROM STDIN",
        )
        .await?;
    for piece in data.chunks(1 << 20) {
        copy.send(piece).await?;
    }
    let rows = copy.finish().await?;
    let elapsed = started.elapsed();
    ensure!(rows as usize == work.valid(), "COPY stored {rows} rows");
    Ok(elapsed)
}

/// The drain's kind of statement without the drain: a server-side `INSERT … SELECT … ON
/// CONFLICT (email) DO NOTHING RETURNING` of the COPYed rows into another identical empty
/// table, in one statement. The ceiling of an ON CONFLICT design on this machine.
async fn insert_select_baseline(db: &PgPool) -> anyhow::Result<Duration> {
    sqlx::query("CREATE TABLE leads_upsert (LIKE leads INCLUDING ALL)")
        .execute(db)
        .await?;
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO leads_upsert (full_name, email, phone, status, source, created_by, import_id)
         SELECT full_name, email, phone, status, source, created_by, import_id FROM leads_copy
         ON CONFLICT (email) DO NOTHING RETURNING import_id, email",
    )
    .fetch_all(db)
    .await?;
    Ok(started.elapsed())
}

/// CPU seconds used so far by the server listening on `port`: the postmaster (with the
/// backends it has reaped) and its live children for Postgres, the process for Redis.
fn server_cpu_s(port: u16, postgres: bool) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let port = port.to_string();
    let stat = |pid: &str| -> Option<Vec<u64>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &text[text.rfind(')')? + 2..];
        Some(
            after
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect(),
        )
    };
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let Some(server) = pids.iter().find(|pid| {
        let args: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if postgres {
            args.windows(2).any(|w| w[0] == "-p" && w[1] == port)
                && args.first().is_some_and(|a| a.ends_with("postgres"))
        } else {
            args.first().is_some_and(|a| a.contains("redis-server"))
                && args.iter().any(|a| a.ends_with(&format!(":{port}")))
        }
    }) else {
        return f64::NAN;
    };
    // Fields after the name: [0] state, [1] ppid, ..., [11] utime, [12] stime, [13] cutime, [14] cstime.
    let own = stat(server).map_or(0, |f| f[11] + f[12] + f[13] + f[14]);
    let children: u64 = pids
        .iter()
        .filter_map(|pid| stat(pid))
        .filter(|f| f[1].to_string() == *server)
        .map(|f| f[11] + f[12])
        .sum();
    (own + children) as f64 / tick
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next()?.parse().ok())
        .unwrap_or(0)
}

fn copy_escape(text: &str, out: &mut Vec<u8>) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// The seed's algorithm: one INSERT per lead, 50 per batch, 100 ms between batches.
async fn seed_baseline(db: &PgPool, work: &Workload) -> anyhow::Result<(usize, Duration)> {
    sqlx::query("CREATE TABLE leads_seed (LIKE leads INCLUDING ALL)")
        .execute(db)
        .await?;
    let rows: Vec<(QueuedChunk, usize)> = work
        .queued_chunks()
        .flat_map(|c| (0..c.leads.len()).map(move |i| (c.clone(), i)))
        .take(SEED_SUBSET)
        .collect();
    let started = Instant::now();
    for (b, batch) in rows.chunks(50).enumerate() {
        if b > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (chunk, i) in batch {
            let lead = &chunk.leads[*i].lead;
            sqlx::query(
                "INSERT INTO leads_seed (full_name, email, phone, status, source, created_by, import_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (email) DO NOTHING",
            )
            .bind(lead.full_name.as_str())
            .bind(lead.email.as_str())
            .bind(lead.phone.as_deref())
            .bind(lead.status.as_str())
            .bind(lead.source.as_str())
            .bind(chunk.created_by.as_str())
            .bind(chunk.import_id.as_str())
            .execute(db)
            .await?;
        }
    }
    Ok((rows.len(), started.elapsed()))
}

/// The same entries (same fields, same leads JSON) XADDed by a bare client, 1,000 commands
/// per pipeline, into a stream of their own (deleted afterwards).
async fn xadd_baseline(redis_url: &str, work: &Workload) -> anyhow::Result<Duration> {
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let entries: Vec<(String, u32, String, String)> = work
        .queued_chunks()
        .map(|c| {
            let leads = serde_json::to_string(&c.leads).expect("leads serialize");
            (c.import_id, c.seq, c.created_by, leads)
        })
        .collect();
    let key = "bench:raw-xadd";
    let started = Instant::now();
    for group in entries.chunks(1_000) {
        let mut pipe = redis::pipe();
        for (import_id, seq, created_by, leads) in group {
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("importId")
                .arg(import_id)
                .arg("seq")
                .arg(seq)
                .arg("createdBy")
                .arg(created_by)
                .arg("leads")
                .arg(leads)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    let elapsed = started.elapsed();
    let len: usize = conn.xlen(key).await?;
    ensure!(len == entries.len(), "XADD left {len} entries");
    conn.del::<_, ()>(key).await?;
    Ok(elapsed)
}

/// `target/release/leads-local` on a loopback port, with its drain schedule pushed out of the
/// way (the bench drains in its own phase).
struct LeadsLocal {
    child: std::process::Child,
    addr: SocketAddr,
    ready_ms: f64,
}

impl LeadsLocal {
    fn start(redis_url: &str, database_url: &str) -> anyhow::Result<Self> {
        let exe = sibling_binary("leads-local")?;
        let started = Instant::now();
        let mut child = Command::new(&exe)
            .env("REDIS_URL", redis_url)
            .env("DATABASE_URL", database_url)
            .env("PORT", "0")
            .env("BLOCK_TIMEOUT", "0")
            .env("DRAIN_INTERVAL_MS", "86400000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("leads-local exited before listening");
            };
            let line = line?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break addr.parse::<SocketAddr>()?;
            }
        };
        // Keep reading its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // "Ready" is the first answered request, not the log line.
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                use std::io::Write as _;
                let _ = s.write_all(
                    b"GET /leads/import/none/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                let mut first = [0u8; 12];
                if s.read_exact(&mut first).is_ok() {
                    break;
                }
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "leads-local did not answer"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(LeadsLocal {
            child,
            addr,
            ready_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

impl Drop for LeadsLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A binary built next to this one (`target/release/...`).
fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    ensure!(
        path.is_file(),
        "{} is missing: cargo build --release -p {name}",
        path.display()
    );
    Ok(path)
}

struct Latencies {
    elapsed: Duration,
    requests: usize,
    p50: f64,
    p99: f64,
}

/// Runs `requests` (by index) over `concurrency` keep-alive connections; each answer must
/// have status `expect`.
async fn load<F>(
    addr: SocketAddr,
    concurrency: usize,
    requests: usize,
    expect: u16,
    make: F,
) -> anyhow::Result<Latencies>
where
    F: Fn(usize) -> (Option<Bytes>, String) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(requests) {
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = client::Connection::open(addr).await?;
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return anyhow::Ok(samples);
                }
                let (body, path) = make(i);
                let answer = match body {
                    Some(body) => conn.post_json(&path, body).await?,
                    None => conn.get(&path).await?,
                };
                ensure!(
                    answer.status == expect,
                    "{path} answered {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                );
                samples.push(answer.elapsed);
            }
        }));
    }
    let mut samples = Vec::with_capacity(requests);
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(Latencies {
        elapsed: started.elapsed(),
        requests: samples.len(),
        p50: client::percentile_ms(&samples, 0.50),
        p99: client::percentile_ms(&samples, 0.99),
    })
}

async fn import_phase(
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
) -> anyhow::Result<Latencies> {
    let bodies: Vec<Bytes> = work.bodies.iter().map(|(_, b)| b.clone()).collect();
    let count = bodies.len();
    load(addr, concurrency, count, 202, move |i| {
        (Some(bodies[i].clone()), "/leads/import".to_owned())
    })
    .await
}

/// First checks every job is `completed`, then polls statuses round-robin for ~3 s worth.
async fn status_phase(
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
) -> anyhow::Result<Latencies> {
    let mut conn = client::Connection::open(addr).await?;
    for (import_id, _) in &work.bodies {
        let answer = conn
            .get(&format!("/leads/import/{import_id}/status"))
            .await?;
        let doc: Value = serde_json::from_slice(&answer.body)?;
        ensure!(
            doc["status"] == "completed",
            "job {import_id} is not completed: {doc}"
        );
    }
    let ids: Vec<String> = work.bodies.iter().map(|(id, _)| id.clone()).collect();
    let requests = env_usize("BENCH_STATUS_REQUESTS", 5_000)?;
    load(addr, concurrency, requests, 200, move |i| {
        (None, format!("/leads/import/{}/status", ids[i % ids.len()]))
    })
    .await
}

/// What the drain child reports on stdout.
struct Drained {
    invocations: u64,
    leads_stored: u64,
    leads_failed: u64,
    elapsed_s: f64,
    peak_rss_mb: f64,
    /// User + system CPU seconds the draining process used (the rest of the wall time is
    /// spent waiting on Postgres and Redis).
    cpu_s: f64,
}

/// Runs the drain in a child process (this binary, `drain-child`) so that its peak RSS is
/// the drain's alone (the child reports its VmHWM); `wait4` gives its CPU time.
fn drain_phase(redis_url: &str, database_url: &str, timeout_s: usize) -> anyhow::Result<Drained> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("drain-child")
        .env("REDIS_URL", redis_url)
        .env("DATABASE_URL", database_url)
        .env("BLOCK_TIMEOUT", "0")
        .env("BENCH_DRAIN_TIMEOUT_S", timeout_s.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)?;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    ensure!(pid > 0, "wait4: {}", std::io::Error::last_os_error());
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the drain child failed (status {status}): {out}"
    );
    let doc: Value = serde_json::from_str(out.trim()).context("drain child output")?;
    let n = |k: &str| doc[k].as_u64().unwrap_or(0);
    Ok(Drained {
        invocations: n("invocations"),
        leads_stored: n("leadsStored"),
        leads_failed: n("leadsFailed"),
        elapsed_s: doc["elapsedS"].as_f64().unwrap_or(f64::NAN),
        peak_rss_mb: n("peakRssKb") as f64 / 1024.0,
        cpu_s: [usage.ru_utime, usage.ru_stime]
            .iter()
            .map(|t| t.tv_sec as f64 + t.tv_usec as f64 / 1e6)
            .sum(),
    })
}

/// The drain child: drain-fn's handler (`DrainFunction::handle`) invoked with Lambda-like
/// deadlines until an invocation finds nothing; prints what it did as JSON.
async fn drain_child() -> anyhow::Result<()> {
    let timeout = Duration::from_secs(env_usize("BENCH_DRAIN_TIMEOUT_S", 60)? as u64);
    let function = DrainFunction::new(App::from_env().await?).await;
    let event: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
        serde_json::from_str(include_str!("../../events/drain-scheduled.json"))?;
    let started = Instant::now();
    let (mut invocations, mut stored, mut failed, mut entries) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let mut context = lambda_runtime::Context::default();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        context.deadline = now_ms + timeout.as_millis() as u64;
        context.request_id = format!("bench-{invocations}");
        let report = function
            .handle(lambda_runtime::LambdaEvent::new(event.clone(), context))
            .await
            .map_err(|e| anyhow::anyhow!("drain invocation failed: {e}"))?;
        invocations += 1;
        stored += report.leads_stored;
        failed += report.leads_failed;
        entries += report.entries;
        if report.entries == 0 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // VmHWM is this process's own peak RSS. (The parent's `ru_maxrss` from wait4 would not do:
    // Linux charges the pre-exec image, i.e. the bench's own memory, to a spawned child.)
    let peak_kb = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{}",
        json!({"invocations": invocations, "entries": entries, "leadsStored": stored,
               "leadsFailed": failed, "elapsedS": elapsed, "peakRssKb": peak_kb})
    );
    Ok(())
}

/// One function's release bootstrap.
pub struct Function {
    pub name: String,
    pub path: PathBuf,
    pub bytes: Option<u64>,
    pub cold_start_ms: Option<f64>,
    pub note: String,
}

/// Sizes of the bootstraps (`target/lambda/<fn>/bootstrap`, else `target/release/<fn>`) and
/// their cold start: exec to the first answer under the Runtime API emulator, median of 3.
async fn bootstrap_phase(redis_url: &str, database_url: &str, work: &Workload) -> Vec<Function> {
    let target = root().join("target");
    let status_event = read_event("status.json").replace(
        "unique-import-id",
        work.bodies.first().map_or("none", |(id, _)| id.as_str()),
    );
    let events = [
        ("import-fn", read_event("import-seed.json")),
        ("drain-fn", read_event("drain-scheduled.json")),
        ("status-fn", status_event),
    ];
    let env = vec![
        ("REDIS_URL".to_owned(), redis_url.to_owned()),
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("BLOCK_TIMEOUT".to_owned(), "0".to_owned()),
    ];
    let mut out = Vec::new();
    for (name, event) in events {
        let lambda = target.join("lambda").join(name).join("bootstrap");
        let path = if lambda.is_file() {
            lambda
        } else {
            target.join("release").join(name)
        };
        let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
        let mut f = Function {
            name: name.to_owned(),
            path: path.clone(),
            bytes,
            cold_start_ms: None,
            note: String::new(),
        };
        if bytes.is_none() {
            f.note = "not built".into();
            out.push(f);
            continue;
        }
        let mut samples = Vec::new();
        for _ in 0..3 {
            match emulator::cold_start(&path, &env, &event, Duration::from_secs(20)).await {
                Ok(c) if c.ok => samples.push(c.ms),
                Ok(c) => {
                    f.note = format!("answered with an error: {}", c.answer);
                    break;
                }
                Err(e) => {
                    f.note = format!("{e:#}");
                    break;
                }
            }
        }
        if !samples.is_empty() {
            samples.sort_by(f64::total_cmp);
            f.cold_start_ms = Some(samples[samples.len() / 2]);
        }
        out.push(f);
    }
    out
}

fn read_event(name: &str) -> String {
    std::fs::read_to_string(root().join("events").join(name)).unwrap_or_default()
}
