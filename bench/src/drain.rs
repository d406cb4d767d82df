//! The drain phases and their child processes (`leads-bench drain-child`): drain-fn's handler
//! run in processes of their own, so that their peak RSS and CPU time are the drains' alone.
//! One child is the drain phase; N children side by side, each its own consumer (its own
//! `CONSUMER_NAME`, as N Lambda execution environments are), are the scaling phase's drains.

use crate::env_usize;
use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::app::App;
use shared::aws::lambda::{DrainFunction, scheduled_invocation};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the drain children did, added up.
#[derive(Debug, Default, Clone)]
pub struct Drained {
    pub drains: usize,
    pub invocations: u64,
    pub leads_stored: u64,
    pub leads_failed: u64,
    /// From the moment every child was told to start to the moment the last one finished.
    pub elapsed_s: f64,
    /// The largest peak RSS of one child.
    pub peak_rss_mb: f64,
    /// User + system CPU seconds the draining processes used, all of them (the rest of the
    /// wall time is spent waiting on Postgres and Redis).
    pub cpu_s: f64,
}

impl Drained {
    pub fn processed(&self) -> u64 {
        self.leads_stored + self.leads_failed
    }
}

fn epoch_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `drains` children (this binary, `drain-child`), each with a consumer name of its own,
/// started together once all are ready; each reports its VmHWM (its peak RSS alone), and
/// `wait4` gives its CPU time. The fan-out is off in the children (no `DRAIN_FUNCTION_NAME`,
/// no local loop): exactly `drains` drains run.
pub fn drain_phase(
    redis_url: &str,
    database_url: &str,
    timeout_s: usize,
    drains: usize,
) -> anyhow::Result<Drained> {
    let mut children = Vec::new();
    for i in 0..drains.max(1) {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("drain-child")
            .env("REDIS_URL", redis_url)
            .env("DATABASE_URL", database_url)
            .env("BLOCK_TIMEOUT", "0")
            .env("CONSUMER_NAME", format!("bench-drain-{i}"))
            .env_remove("DRAIN_FUNCTION_NAME")
            .env("BENCH_DRAIN_TIMEOUT_S", timeout_s.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line)?;
        ensure!(
            line.trim() == "ready",
            "drain child {i} did not start: {line:?}"
        );
        children.push((child, out));
    }
    // Every child has its clients; start them at once.
    let started = epoch_s();
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().expect("piped"), "go")?;
    }
    let mut total = Drained {
        drains: children.len(),
        ..Drained::default()
    };
    let mut ended = started;
    for (child, mut out) in children {
        let mut text = String::new();
        out.read_to_string(&mut text)?;
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        ensure!(pid > 0, "wait4: {}", std::io::Error::last_os_error());
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "a drain child failed (status {status}): {text}"
        );
        let doc: Value = serde_json::from_str(text.trim()).context("drain child output")?;
        let n = |k: &str| doc[k].as_u64().unwrap_or(0);
        total.invocations += n("invocations");
        total.leads_stored += n("leadsStored");
        total.leads_failed += n("leadsFailed");
        total.peak_rss_mb = total.peak_rss_mb.max(n("peakRssKb") as f64 / 1024.0);
        total.cpu_s += [usage.ru_utime, usage.ru_stime]
            .iter()
            .map(|t| t.tv_sec as f64 + t.tv_usec as f64 / 1e6)
            .sum::<f64>();
        ended = ended.max(doc["endedAtS"].as_f64().unwrap_or(f64::NAN));
    }
    total.elapsed_s = ended - started;
    Ok(total)
}

/// The drain child: builds drain-fn's handler (`DrainFunction::handle`), says `ready`, waits
/// for a line on stdin, then invokes it with Lambda-like deadlines until an invocation finds
/// nothing; prints what it did as JSON.
pub async fn drain_child() -> anyhow::Result<()> {
    let timeout = Duration::from_secs(env_usize("BENCH_DRAIN_TIMEOUT_S", 60)? as u64);
    let consumer = std::env::var("CONSUMER_NAME").unwrap_or_default();
    let function = DrainFunction::new(App::from_env().await?).await;
    println!("ready");
    std::io::stdout().flush()?;
    std::io::stdin().read_line(&mut String::new())?;
    let started = Instant::now();
    let (mut invocations, mut stored, mut failed, mut entries) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let report = function
            .handle(scheduled_invocation(
                timeout,
                format!("bench-{consumer}-{invocations}"),
            ))
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
    let (elapsed, ended) = (started.elapsed().as_secs_f64(), epoch_s());
    // VmHWM is this process's own peak RSS. (The parent's `ru_maxrss` from wait4 would not do:
    // Linux charges the pre-exec image, i.e. the bench's own memory, to a spawned child.)
    let peak_kb = crate::server_cpu::peak_rss_kb(std::process::id());
    println!(
        "{}",
        json!({"invocations": invocations, "entries": entries, "leadsStored": stored,
               "leadsFailed": failed, "elapsedS": elapsed, "endedAtS": ended,
               "peakRssKb": peak_kb})
    );
    Ok(())
}
