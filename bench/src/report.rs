//! Writes what a run measured: `target/bench/results.json`, `BENCHMARKS.md` (its hand-written
//! "Scaling on paper" section is kept) and `docs/bench-leads-per-s.svg`.

use crate::bootstraps::Function;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

#[derive(Default)]
pub struct Results {
    numbers: Map<String, Value>,
    pub extra: Map<String, Value>,
}

impl Results {
    pub fn set(&mut self, key: &str, value: f64) {
        let rounded = if value.abs() >= 100.0 {
            value.round()
        } else {
            (value * 100.0).round() / 100.0
        };
        self.numbers.insert(key.to_owned(), json!(rounded));
    }

    pub fn get(&self, key: &str) -> f64 {
        self.numbers
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    }
}

const SCALING_HEADING: &str = "## Scaling on paper";
const BEFORE_AFTER_HEADING: &str = "## Before and after the durable payload";
const PROFILES_HEADING: &str = "## Profiles, changes, and what did not help";

/// The hand-written sections, in the order they are written back.
const HAND_WRITTEN: [&str; 3] = [PROFILES_HEADING, BEFORE_AFTER_HEADING, SCALING_HEADING];

/// The section of the old BENCHMARKS.md under `heading`: from the heading (a line of its own)
/// to the next heading of the same level, or to the end.
fn section(old: &str, heading: &str) -> Option<String> {
    let start = old.match_indices(heading).map(|(i, _)| i).find(|&i| {
        (i == 0 || old[..i].ends_with('\n')) && old[i + heading.len()..].starts_with(['\n', '\r'])
    })?;
    let rest = &old[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |e| e + heading.len() + 1);
    Some(rest[..end].trim_end().to_owned())
}

/// The hand-written sections of the old BENCHMARKS.md, kept as they are; "Scaling on paper"
/// gets a placeholder when it is missing.
fn kept_sections(old: &str) -> String {
    HAND_WRITTEN
        .iter()
        .filter_map(|heading| {
            section(old, heading).or_else(|| {
                (*heading == SCALING_HEADING).then(|| {
                    format!("{SCALING_HEADING}\n\n(hand-written; `make bench` keeps this section)")
                })
            })
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

pub fn write_all(root: &Path, r: &Results, functions: &[Function]) -> anyhow::Result<()> {
    let machine = machine();
    let commit = commit(root);
    let date = run_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut doc = Map::new();
    doc.insert("date".into(), json!(date));
    doc.insert("commit".into(), json!(commit));
    doc.insert("machine".into(), json!(machine));
    for (k, v) in &r.numbers {
        doc.insert(k.clone(), v.clone());
    }
    for (k, v) in &r.extra {
        doc.insert(k.clone(), v.clone());
    }
    let dir = root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&Value::Object(doc))? + "\n",
    )?;

    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::write(root.join("docs").join("bench-leads-per-s.svg"), chart(r))?;

    let path = root.join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let scaling = kept_sections(&old);
    std::fs::write(
        &path,
        markdown(r, functions, &machine, &commit, &date, &scaling),
    )?;
    eprintln!(
        "wrote target/bench/results.json, BENCHMARKS.md and docs/bench-leads-per-s.svg under {}",
        root.display()
    );
    Ok(())
}

fn run_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn commit(root: &Path) -> String {
    let root = root.display().to_string();
    let head = run_output("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = !run_output("git", &["-C", &root, "status", "--porcelain"]).is_empty();
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_owned(), |m| m.trim().to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let postgres = postgres_version();
    let redis = run_output("redis-server", &["--version"]);
    let redis = redis
        .split_whitespace()
        .find(|w| w.starts_with("v="))
        .map_or(redis.clone(), |v| format!("Redis {}", &v[2..]));
    format!("{model}, {cpus} CPUs, {mem_gb:.1} GB RAM; {postgres}; {redis}")
}

fn postgres_version() -> String {
    let mut candidates = vec!["postgres".to_owned()];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<String> = dirs
            .filter_map(|d| d.ok())
            .map(|d| d.path().join("bin/postgres").display().to_string())
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    candidates
        .iter()
        .map(|c| run_output(c, &["--version"]))
        .find(|v| !v.is_empty())
        .map_or("PostgreSQL (unknown version)".to_owned(), |v| {
            v.replace("postgres (PostgreSQL) ", "PostgreSQL ")
        })
}

fn fmt_rate(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let whole = v.round() as u64;
    let s = whole.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn markdown(
    r: &Results,
    functions: &[Function],
    machine: &str,
    commit: &str,
    date: &str,
    scaling: &str,
) -> String {
    let g = |k: &str| r.get(k);
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "<!-- `make bench` rewrites everything above the hand-written sections \"Profiles, changes, and what did not help\", \"Before and after the durable payload\" and \"Scaling on paper\", which it keeps. -->\n"
    );
    let _ = writeln!(s, "* **Machine**: {machine}");
    let _ = writeln!(s, "* **Date**: {date}");
    let _ = writeln!(s, "* **Commit**: {commit}");
    let _ = writeln!(
        s,
        "* **Workload**: {} leads ({} valid after import-time validation; every 101st has an invalid email, every 211th repeats the previous email) in requests of 1,000; `BATCH_SIZE={}`, `DRAIN_READ_COUNT={}`, `DRAIN_PARALLEL_BATCHES={}`; {} concurrent HTTP connections",
        fmt_rate(g("leads")),
        fmt_rate(g("valid_leads")),
        g("batch_size"),
        g("drain_read_count"),
        g("drain_parallel_batches"),
        g("concurrency")
    );
    let _ = writeln!(
        s,
        "* **Servers**: private `redis-server` (AOF, `appendfsync everysec`) and PostgreSQL with its default durable settings (`fsync=on`, `synchronous_commit=on`), both on loopback, sharing the CPUs with the bench"
    );
    let _ = writeln!(
        s,
        "* **Reproduce**: `make bench` (or `make bench BENCH_LEADS=20000`); knobs such as `DRAIN_READ_COUNT` and `BATCH_SIZE` are read from the environment, and `BENCH_LATENCY_RUNS` (100), `BENCH_SCALE_LEADS` (500,000), `BENCH_SCALE_DRAINS` (1,2,4), `BENCH_WATCH_RUNS` (20; 0 skips) and `BENCH_OLD_RESULTS` (another run's results.json to show beside) size the later phases. Raw figures: `target/bench/results.json`."
    );
    let _ = writeln!(s, "* **Load**: {}\n", load_note(r));
    let _ = writeln!(s, "![leads/s per method](docs/bench-leads-per-s.svg)\n");
    let _ = writeln!(s, "## Throughput, each beside its baseline\n");
    let _ = writeln!(s, "| Measure | Result | Baseline | Ratio | Target |");
    let _ = writeln!(s, "|---|---:|---:|---:|---|");
    let _ = writeln!(
        s,
        "| Drain (stream → every job `completed`, drain-fn's handler, {} invocation(s)) vs COPY into an identical empty table | {} leads/s | {} leads/s | {:.2} | ≥ 0.8: {} |",
        g("drain_invocations"),
        fmt_rate(g("drain_leads_per_s")),
        fmt_rate(g("copy_leads_per_s")),
        g("drain_vs_copy"),
        verdict(g("drain_vs_copy") >= 0.8)
    );
    let _ = writeln!(
        s,
        "| Drain vs the seed's algorithm (INSERT per lead, 50 per batch, 100 ms between batches; {} leads) | {} leads/s | {} leads/s | {:.0} | ≥ 100: {} |",
        fmt_rate(g("seed_algorithm_leads")),
        fmt_rate(g("drain_leads_per_s")),
        fmt_rate(g("seed_algorithm_leads_per_s")),
        g("drain_vs_seed_algorithm"),
        verdict(g("drain_vs_seed_algorithm") >= 100.0)
    );
    let _ = writeln!(
        s,
        "| Import (`POST /leads/import` to `leads-local`, 1,000 leads each) vs pipelined XADD of the same entries | {} leads/s | {} leads/s | {:.2} | ≥ 0.5: {} |",
        fmt_rate(g("import_leads_per_s")),
        fmt_rate(g("raw_xadd_leads_per_s")),
        g("import_vs_xadd"),
        verdict(g("import_vs_xadd") >= 0.5)
    );
    let _ = writeln!(
        s,
        "| CSV import (the same requests as `text/csv` bodies, ids in the query; median of 3 runs) vs the JSON import above, by wall time | {} leads/s | {} leads/s | {:.2} | ≥ 1: {} |",
        fmt_rate(g("csv_import_leads_per_s")),
        fmt_rate(g("import_leads_per_s")),
        g("csv_vs_json_import"),
        verdict(g("csv_vs_json_import") >= 1.0)
    );
    let _ = writeln!(
        s,
        "| The same, by `leads-local`'s CPU per lead (what a Lambda bills; steadier than a half-second wall time on a shared machine): JSON over CSV | {:.2} µs | {:.2} µs | {:.2} | ≥ 1: {} |",
        g("csv_import_leads_local_cpu_us_per_lead"),
        g("import_leads_local_cpu_us_per_lead"),
        g("csv_vs_json_import_cpu"),
        verdict(g("csv_vs_json_import_cpu") >= 1.0)
    );
    cost_section(&mut s, r);
    payload_section(&mut s, r);
    completion_section(&mut s, r);
    scaling_section(&mut s, r);
    let _ = writeln!(s, "\n## Latency, memory, size\n");
    let _ = writeln!(s, "| Measure | Result | Target |");
    let _ = writeln!(s, "|---|---:|---|");
    let _ = writeln!(
        s,
        "| Import request latency p50 / p99 | {:.1} / {:.1} ms | |",
        g("import_p50_ms"),
        g("import_p99_ms")
    );
    let _ = writeln!(
        s,
        "| Status (`GET …/status`, {} requests) p50 / p99 | {:.2} / {:.2} ms | |",
        fmt_rate(g("status_requests")),
        g("status_p50_ms"),
        g("status_p99_ms")
    );
    let _ = writeln!(
        s,
        "| Peak RSS of the draining process (VmHWM of a child process running the handler) | {:.1} MB | ≤ 64 MB: {} |",
        g("drain_peak_rss_mb"),
        verdict(g("drain_peak_rss_mb") <= 64.0)
    );
    let _ = writeln!(
        s,
        "| Drain: CPU seconds of the draining process / Postgres / Redis, over the drain's wall time | {:.2} / {:.2} / {:.2} s over {:.2} s | |",
        g("drain_process_cpu_s"),
        g("drain_postgres_cpu_s"),
        g("drain_redis_cpu_s"),
        g("drain_elapsed_s")
    );
    let _ = writeln!(
        s,
        "| Server-side `INSERT … SELECT … ON CONFLICT (email) DO NOTHING RETURNING` of the COPYed rows into an identical empty table (the ceiling of the statement the drain falls back to when a batch meets stored emails) | {} leads/s | |",
        fmt_rate(g("insert_select_on_conflict_leads_per_s"))
    );
    let _ = writeln!(
        s,
        "| `leads-local` start to first answered request (migrations applied, external servers) | {:.0} ms | |",
        g("leads_local_cold_start_ms")
    );
    for f in functions {
        let size = f.bytes.map_or("not built".to_owned(), |b| {
            format!("{:.2} MB", b as f64 / 1_000_000.0)
        });
        let target = f.bytes.map_or("≤ 8 MB: not measured".to_owned(), |b| {
            format!("≤ 8 MB: {}", verdict(b <= 8_000_000))
        });
        let _ = writeln!(
            s,
            "| `{}` bootstrap size (`{}`) | {size} | {target} |",
            f.name,
            f.path.file_name().map_or(String::new(), |_| f
                .path
                .strip_prefix(crate::root())
                .unwrap_or(&f.path)
                .display()
                .to_string())
        );
        let cold = match f.cold_start_ms {
            Some(ms) => format!("{ms:.0} ms"),
            None => format!("n/a ({})", f.note),
        };
        let _ = writeln!(
            s,
            "| `{}` cold start: exec to first answer under a local Runtime API emulator (median of 3) | {cold} | |",
            f.name
        );
    }
    let _ = writeln!(s, "\n## What is measured\n");
    let _ = writeln!(
        s,
        "* **COPY**: `COPY … FROM STDIN` (text format) of the valid rows into `leads_copy`, made with `CREATE TABLE … (LIKE leads INCLUDING ALL)` (same checks, same unique email index), one statement, one commit."
    );
    let _ = writeln!(
        s,
        "* **Seed's algorithm**: the first 1,000 valid leads, one autocommitted `INSERT … ON CONFLICT (email) DO NOTHING` each, 50 per batch, 100 ms sleep between batches, into `leads_seed` (same shape)."
    );
    let _ = writeln!(
        s,
        "* **Raw XADD**: the entries the import queues (same four fields, same leads JSON, serialized beforehand), XADDed by one client in pipelines of 1,000 commands to a stream of their own."
    );
    let _ = writeln!(
        s,
        "* **Import**: `target/release/leads-local` serving its router on a loopback port (its drain schedule pushed out of the way); the bench's keep-alive HTTP/1.1 clients post the 1,000-lead requests; the rate counts every lead sent. Each request: parse and judge, `INSERT` the job with its payload, the enqueue script, `UPDATE` the job as queued, and the kick's check of the drains registered."
    );
    let _ = writeln!(
        s,
        "* **Drain**: a child process runs `shared::aws::lambda::DrainFunction::handle` (drain-fn's handler) with Lambda-style deadlines (60 s, less `DRAIN_DEADLINE_MARGIN_MS`) until an invocation finds nothing; timed from the moment the child, its clients built, is told to start until its last invocation finds the stream empty (`BLOCK_TIMEOUT=0`, so no idle wait is counted). The bench then checks rows = valid leads, no email twice, and every job `completed`."
    );
    let _ = writeln!(
        s,
        "* **Status**: `GET /leads/import/{{id}}/status` round-robin over the finished jobs, from the same number of connections."
    );
    let _ = writeln!(
        s,
        "* **Cold start**: the release binary started with `AWS_LAMBDA_RUNTIME_API` pointing at the bench's emulator, given one event (`events/`), timed from spawn to its response POST: process start, runtime init, client setup and the first Redis/Postgres round trips. Not Lambda's own init (sandbox, download), which adds to it."
    );
    let _ = writeln!(
        s,
        "* **Import, since the event-driven drains**: an accepted import kicks a drain unless one is registered as running; during the import phase the bench registers a placeholder drain, so each import makes that check (as it does while drains run) and kicks none, and the import is measured alone, as before. The CPU figures are `leads-local`'s, and the Postgres and Redis servers', over the import phase."
    );
    let _ = writeln!(
        s,
        "* **Durable payload**: the valid leads of every request of the workload written as JSON and compressed with zstd level 1, as `shared::postgres::payload` does, on one thread, the fastest of 3 passes, in thread CPU time (so other work on the machine does not count); then each job's row inserted (autocommitted, as the import does) into a table shaped like `import_jobs`, alternately with its payload and with `NULL` in its place, median of each."
    );
    let _ = writeln!(
        s,
        "* **202 → completed**: the local run (`shared::local_run::serve`: the API and the drain loop, `DRAIN_MAX_CONCURRENCY` drains at once) in the bench's process on a loopback port, `DRAIN_INTERVAL_MS=600000` so the schedule never runs, `BLOCK_TIMEOUT=0` so a drain leaves when the stream is empty. Each import (new emails, one keep-alive connection) is posted once no drain is registered, so its own kick starts its drain; then `GET …/status` every 2 ms until `completed`. Timed from the `202` arriving (and from sending the `POST`) to that answer; 3 warm-up imports per size are not counted. p99 is the nearest rank. The `leads` table holds the drain phase's {} rows at the start (after a `CHECKPOINT`) and grows by every import, 1 lead first, then 10,000.",
        fmt_rate(g("completion_leads_rows_before"))
    );
    let _ = writeln!(
        s,
        "* **Drain scaling**: {} leads of the same synthetic kind, queued through the import use case (`accept_import`, what `POST /leads/import` runs, 4 at a time) by a client whose drain starter is off, so nothing drains meanwhile; then COPY of the same valid rows into an identical empty table; then `N` drain processes (`leads-bench drain-child`, drain-fn's handler, each its own `CONSUMER_NAME`, fan-out off, `DRAIN_PARALLEL_BATCHES` batches each) started together and timed until the last finds the stream empty. Every round starts from empty tables and an empty Redis (`TRUNCATE`, `FLUSHALL`), with a `CHECKPOINT` before COPY and before the drain. CPU seconds: the drain processes (wait4), Postgres (postmaster and backends), Redis, and the whole machine (`/proc/stat`), over the drain; WAL: `pg_current_wal_lsn()` before and after queueing and draining (after the `CHECKPOINT`, the first change to each page writes a full-page image, as it does after every checkpoint in production).",
        fmt_rate(g("scale_leads"))
    );
    let _ = writeln!(
        s,
        "* **Under `cargo lambda watch`**: the three functions built in release and run by the emulator (`--release`), import-fn with `DRAIN_FUNCTION_NAME=drain-fn`, `AWS_ENDPOINT_URL_LAMBDA` at the emulator and dummy credentials, so drain-fn runs only when import-fn's kick invokes it, and `BLOCK_TIMEOUT=0`; the bench sends API Gateway events (`events/import-seed.json` with a 1-lead body of its own) to import-fn's `Invoke` endpoint and polls status-fn the same way every 2 ms. import-fn kicks at most once a second per execution environment, so each import is sent 1.1 s after import-fn answered the previous one, and once no drain is registered; the first (building and starting the functions) is not counted.\n"
    );
    s.push_str(scaling);
    s.push('\n');
    s
}

/// The figures BENCHMARKS.md recorded at 8348200 (2026-11-28 15:37 UTC), the last run before
/// the durable payload and the event-driven drains.
const RECORDED_BEFORE: [(&str, f64); 6] = [
    ("import_leads_per_s", 333_768.0),
    ("raw_xadd_leads_per_s", 1_504_906.0),
    ("import_vs_xadd", 0.22),
    ("drain_leads_per_s", 117_189.0),
    ("copy_leads_per_s", 228_337.0),
    ("drain_vs_copy", 0.51),
];

fn load_note(r: &Results) -> String {
    format!(
        "1-minute load average {:.1} when the run started and {:.1} when it ended, on {} cores shared with other work (a colleague's tests): absolute figures swing with it, ratios to a baseline of the same run much less",
        r.get("load_avg_start"),
        r.get("load_avg_end"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// What a Lambda bills (duration × memory): CPU seconds per 100,000 leads and the peak RSS
/// of the process doing the work, for the import and for the drain.
fn cost_section(s: &mut String, r: &Results) {
    let g = |k: &str| r.get(k);
    let per_100k = |cpu_s: f64, leads: f64| cpu_s * 100_000.0 / leads;
    let import = per_100k(g("import_leads_local_cpu_s"), g("leads"));
    let drain = per_100k(g("drain_process_cpu_s"), g("valid_leads"));
    let _ = writeln!(s, "\n## CPU and memory per 100,000 leads\n");
    let _ = writeln!(
        s,
        "| Work | CPU s of the process doing it | Target | CPU s of Postgres / Redis meanwhile | Peak RSS |"
    );
    let _ = writeln!(s, "|---|---:|---|---:|---:|");
    let _ = writeln!(
        s,
        "| Import (`leads-local` serving `POST /leads/import`; per lead sent) | {import:.2} | ≤ 0.3: {} | {:.2} / {:.2} | {:.1} MB |",
        verdict(import <= 0.3),
        per_100k(g("import_postgres_cpu_s"), g("leads")),
        per_100k(g("import_redis_cpu_s"), g("leads")),
        g("import_peak_rss_mb")
    );
    let _ = writeln!(
        s,
        "| Drain (drain-fn's handler in a child process; per lead stored) | {drain:.2} | ≤ 0.5: {} | {:.2} / {:.2} | {:.1} MB |",
        verdict(drain <= 0.5),
        per_100k(g("drain_postgres_cpu_s"), g("valid_leads")),
        per_100k(g("drain_redis_cpu_s"), g("valid_leads")),
        g("drain_peak_rss_mb")
    );
    let _ = writeln!(
        s,
        "\nThe import's peak RSS is `leads-local`'s (the whole local run: API and drain loop, after its start-up and the import phase); import-fn holds the API alone."
    );
}

fn payload_section(s: &mut String, r: &Results) {
    let g = |k: &str| r.get(k);
    let _ = writeln!(s, "\n## The durable payload, measured\n");
    let rerun = r.extra.get("before_rerun");
    let mut header = "| Run | Import leads/s | XADD leads/s | `import_vs_xadd` | Drain leads/s | COPY leads/s | `drain_vs_copy` |\n|---|---:|---:|---:|---:|---:|---:|\n".to_owned();
    let row = |label: String, get: &dyn Fn(&str) -> f64| {
        format!(
            "| {label} | {} | {} | {:.2} | {} | {} | {:.2} |\n",
            fmt_rate(get("import_leads_per_s")),
            fmt_rate(get("raw_xadd_leads_per_s")),
            get("import_vs_xadd"),
            fmt_rate(get("drain_leads_per_s")),
            fmt_rate(get("copy_leads_per_s")),
            get("drain_vs_copy"),
        )
    };
    header.push_str(&row(
        "8348200, before the payload: as recorded in BENCHMARKS.md (2026-11-28)".into(),
        &|k| {
            RECORDED_BEFORE
                .iter()
                .find(|(name, _)| *name == k)
                .map_or(f64::NAN, |(_, v)| *v)
        },
    ));
    if let Some(old) = rerun {
        let get = |k: &str| old.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        header.push_str(&row(
            format!(
                "{}, before the payload: re-run this session ({})",
                old.get("commit").and_then(Value::as_str).unwrap_or("?"),
                old.get("date").and_then(Value::as_str).unwrap_or("?")
            ),
            &get,
        ));
    }
    header.push_str(&row("This run".into(), &|k| r.get(k)));
    s.push_str(&header);
    let _ = writeln!(
        s,
        "\nWhat building the payload costs the import, measured apart in this run (CPU time of one thread, the fastest of 3 passes):\n"
    );
    let _ = writeln!(
        s,
        "| Per valid lead | The workload's leads (they differ only by a number) | Leads that vary like real ones (generated names, domains, phones) |"
    );
    let _ = writeln!(s, "|---|---:|---:|");
    let both = |name: &str| {
        (
            g(&format!("payload_{name}")),
            g(&format!("payload_varied_{name}")),
        )
    };
    let (json, zstd) = (both("json_us_per_lead"), both("zstd_us_per_lead"));
    let _ = writeln!(
        s,
        "| CPU to write the leads as JSON / to compress that (zstd level 1) | {:.2} / {:.2} µs | {:.2} / {:.2} µs |",
        json.0, zstd.0, json.1, zstd.1
    );
    let (raw, stored) = (both("json_bytes_per_lead"), both("stored_bytes_per_lead"));
    let _ = writeln!(
        s,
        "| Payload: JSON → stored | {:.0} → {:.0} bytes | {:.0} → {:.0} bytes |",
        raw.0, stored.0, raw.1, stored.1
    );
    let share = both("share_of_import_cpu");
    let _ = writeln!(
        s,
        "| Building it, as a share of `leads-local`'s CPU per lead sent in the import phase ({:.2} µs) | {:.0} % | {:.0} % (an estimate: such leads also cost more to parse) |",
        g("import_leads_local_cpu_us_per_lead"),
        share.0 * 100.0,
        share.1 * 100.0
    );
    let _ = writeln!(s, "\n| Measure | Result |");
    let _ = writeln!(s, "|---|---:|");
    let _ = writeln!(
        s,
        "| A 1,000-lead job's `INSERT` (autocommitted, as the import does it) with / without its payload (varied leads), median | {:.2} / {:.2} ms |",
        g("payload_insert_with_ms"),
        g("payload_insert_without_ms")
    );
    let _ = writeln!(
        s,
        "| Import phase: CPU seconds of `leads-local` / Postgres / Redis, over its wall time | {:.2} / {:.2} / {:.2} s over {:.2} s |",
        g("import_leads_local_cpu_s"),
        g("import_postgres_cpu_s"),
        g("import_redis_cpu_s"),
        g("import_elapsed_s")
    );
}

/// Milliseconds, to a tenth below 100.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn completion_section(s: &mut String, r: &Results) {
    let g = |k: &str| r.get(k);
    let local = g("completion_runs").is_finite();
    let watch = g("watch_runs").is_finite();
    let skipped = r.extra.get("watch_not_measured").and_then(Value::as_str);
    if !local && !watch && skipped.is_none() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## From `202` to `completed`, drains started by the import's kick\n"
    );
    let _ = writeln!(
        s,
        "| Import | Runs | p50 | p99 | Worst | From sending the POST: p50 / p99 | Goal |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    if local {
        let row = |s: &mut String, leads: usize, goal: String| {
            let k = |name: &str| g(&format!("completion_{leads}_{name}"));
            let _ = writeln!(
                s,
                "| {} lead{}, local run (`local_run::serve`, in-process) | {} | {} | {} | {} | {} / {} | {goal} |",
                fmt_rate(leads as f64),
                if leads == 1 { "" } else { "s" },
                g("completion_runs"),
                ms(k("p50_ms")),
                ms(k("p99_ms")),
                ms(k("max_ms")),
                ms(k("from_post_p50_ms")),
                ms(k("from_post_p99_ms")),
            );
        };
        row(
            s,
            1,
            format!(
                "p50 ≤ 100 ms: {}; worst ≤ 200 ms: {}",
                verdict(g("completion_1_p50_ms") <= 100.0),
                verdict(g("completion_1_max_ms") <= 200.0)
            ),
        );
        row(
            s,
            10_000,
            format!(
                "p50 ≤ 150 ms: {}",
                verdict(g("completion_10000_p50_ms") <= 150.0)
            ),
        );
    }
    if watch {
        let _ = writeln!(
            s,
            "| 1 lead, `cargo lambda watch` (import-fn → `Invoke` → drain-fn; status through status-fn) | {} | {} | | {} | {} / worst {} | POST → completed, worst ≤ 1 s: {} |",
            g("watch_runs"),
            ms(g("watch_completion_p50_ms")),
            ms(g("watch_completion_max_ms")),
            ms(g("watch_from_post_p50_ms")),
            ms(g("watch_from_post_max_ms")),
            verdict(g("watch_from_post_max_ms") <= 1000.0)
        );
        let _ = writeln!(
            s,
            "\nUnder the emulator the `202` comes late: `cargo lambda watch` answers an `Invoke` with `InvocationType=Event` only once the function has returned (Lambda queues the event and answers at once), so import-fn's kick waits for its drain, up to `DRAIN_KICK_TIMEOUT_MS` (500 ms), and import-fn took {} (p50) to answer. The drain is then done before the `202`, which is why 202 → completed is near zero there: POST → completed is the figure to read, and the goal is judged on it.",
            ms(g("watch_import_p50_ms"))
        );
    } else if let Some(why) = skipped {
        let _ = writeln!(
            s,
            "\nUnder `cargo lambda watch`: not measured in this run ({why})."
        );
    }
}

fn scaling_section(s: &mut String, r: &Results) {
    let Some(rounds) = r.extra.get("drain_scaling").and_then(Value::as_array) else {
        return;
    };
    let _ = writeln!(
        s,
        "\n## Drain scaling: one backlog, concurrent drains, each beside COPY\n"
    );
    let _ = writeln!(
        s,
        "A backlog of {} leads ({} valid, in {}-lead entries), drained by N drain processes at once (each `DRAIN_PARALLEL_BATCHES={}`), each round beside COPY of the same rows in the same round.\n",
        fmt_rate(r.get("scale_leads")),
        fmt_rate(r.get("scale_valid_leads")),
        r.get("batch_size"),
        r.get("drain_parallel_batches")
    );
    let _ = writeln!(
        s,
        "| Drains | Drain leads/s | COPY leads/s | Ratio | Wall | CPU s: drains / Postgres / Redis | CPU s of other processes | Cores busy (machine) | WAL per lead: queueing / draining | Peak RSS per drain |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for round in rounds {
        let f = |k: &str| round.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let ours = f("drain_cpu_s") + f("postgres_cpu_s") + f("redis_cpu_s");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} s | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} | {:.0} / {:.0} bytes | {:.1} MB |",
            f("drains"),
            fmt_rate(f("leads_per_s")),
            fmt_rate(f("copy_leads_per_s")),
            f("vs_copy"),
            f("elapsed_s"),
            f("drain_cpu_s"),
            f("postgres_cpu_s"),
            f("redis_cpu_s"),
            (f("machine_busy_s") - ours).max(0.0),
            f("machine_busy_s") / f("elapsed_s"),
            f("queue_wal_bytes_per_lead"),
            f("drain_wal_bytes_per_lead"),
            f("peak_rss_mb")
        );
    }
}

/// A horizontal bar chart of leads/s per method, log scale (the seed's rate is three orders
/// of magnitude below the others).
fn chart(r: &Results) -> String {
    let bars = [
        (
            "Raw pipelined XADD (import limit)",
            "raw_xadd_leads_per_s",
            "#9e9e9e",
        ),
        (
            "Import: POST /leads/import",
            "import_leads_per_s",
            "#1e88e5",
        ),
        ("COPY (write limit)", "copy_leads_per_s", "#9e9e9e"),
        ("Drain: stream → Postgres", "drain_leads_per_s", "#43a047"),
        ("Seed's algorithm", "seed_algorithm_leads_per_s", "#e53935"),
    ];
    let (width, left, right, top, bar_h, gap) = (860.0, 270.0, 110.0, 50.0, 34.0, 14.0);
    let height = top + bars.len() as f64 * (bar_h + gap) + 40.0;
    let plot = width - left - right;
    let max = bars
        .iter()
        .map(|b| r.get(b.1))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    let decades = max.log10().ceil().max(3.0);
    let x = |v: f64| left + plot * (v.max(1.0).log10() / decades).clamp(0.0, 1.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{}" y="26" font-size="16" font-weight="bold">Leads per second by method (log scale, {} leads)</text>"##,
        left - 250.0,
        fmt_rate(r.get("leads"))
    );
    for d in 0..=decades as u32 {
        let v = 10f64.powi(d as i32);
        let gx = x(v);
        let _ = writeln!(
            s,
            r##"<line x1="{gx:.1}" y1="{top}" x2="{gx:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#616161">{}</text>"##,
            height - 36.0,
            height - 20.0,
            fmt_rate(v)
        );
    }
    for (i, (label, key, color)) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let v = r.get(key);
        let w = x(v) - left;
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{color}"/><text x="{:.1}" y="{:.1}" fill="#212121">{}</text>"##,
            left - 8.0,
            y + bar_h / 2.0 + 4.0,
            label,
            left + w + 6.0,
            y + bar_h / 2.0 + 4.0,
            fmt_rate(v)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_section_is_kept_even_when_a_comment_names_it() {
        let old = "# Benchmarks\n\n<!-- rewritten above \"## Scaling on paper\" -->\n\n## Throughput\n\n| a |\n\n## Scaling on paper\n\nWhy it scales.\n\n## Later\n";
        assert_eq!(kept_sections(old), "## Scaling on paper\n\nWhy it scales.");
    }

    #[test]
    fn the_hand_written_sections_are_kept_in_their_order_and_the_rest_is_not() {
        let old = "# Benchmarks\n\n## Throughput\n\nold figures\n\n## Scaling on paper\n\nOn paper.\n\n## Before and after the durable payload\n\nIt costs this.\n\n## Profiles, changes, and what did not help\n\nCOPY.\n";
        assert_eq!(
            kept_sections(old),
            "## Profiles, changes, and what did not help\n\nCOPY.\n\n## Before and after the durable payload\n\nIt costs this.\n\n## Scaling on paper\n\nOn paper."
        );
    }

    #[test]
    fn the_section_runs_to_the_end_and_a_missing_one_gets_a_placeholder() {
        assert_eq!(
            kept_sections("## Scaling on paper\n\nAll of it.\n### Detail\nmore\n"),
            "## Scaling on paper\n\nAll of it.\n### Detail\nmore"
        );
        assert!(kept_sections("# Benchmarks\n").starts_with(SCALING_HEADING));
    }
}
