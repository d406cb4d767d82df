//! The drain phase and its child process (`leads-bench drain-child`): drain-fn's handler run
//! in a process of its own, so that its peak RSS and CPU time are the drain's alone.

use crate::env_usize;
use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::app::App;
use shared::aws::lambda::{DrainFunction, scheduled_invocation};
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the drain child reports on stdout.
pub struct Drained {
    pub invocations: u64,
    pub leads_stored: u64,
    pub leads_failed: u64,
    pub elapsed_s: f64,
    pub peak_rss_mb: f64,
    /// User + system CPU seconds the draining process used (the rest of the wall time is
    /// spent waiting on Postgres and Redis).
    pub cpu_s: f64,
}

/// Runs the drain in a child process (this binary, `drain-child`) so that its peak RSS is
/// the drain's alone (the child reports its VmHWM); `wait4` gives its CPU time.
pub fn drain_phase(
    redis_url: &str,
    database_url: &str,
    timeout_s: usize,
) -> anyhow::Result<Drained> {
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
pub async fn drain_child() -> anyhow::Result<()> {
    let timeout = Duration::from_secs(env_usize("BENCH_DRAIN_TIMEOUT_S", 60)? as u64);
    let function = DrainFunction::new(App::from_env().await?).await;
    let started = Instant::now();
    let (mut invocations, mut stored, mut failed, mut entries) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let report = function
            .handle(scheduled_invocation(
                timeout,
                format!("bench-{invocations}"),
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
