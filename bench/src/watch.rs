//! The same latency under `cargo lambda watch`, the Lambda emulator: import-fn, drain-fn and
//! status-fn as the Lambda runtime runs them, drain-fn started only by import-fn's kick (an
//! `Invoke` of `DRAIN_FUNCTION_NAME=drain-fn` sent to the emulator through
//! `AWS_ENDPOINT_URL_LAMBDA`, with dummy credentials), the status read through status-fn.
//!
//! import-fn kicks at most once a second per execution environment (`drain_starter`), so each
//! import is posted a little over a second after import-fn answered the one before (its kick
//! is sent before that answer), and once no drain runs: otherwise its kick would be skipped
//! and, with no schedule under the emulator, nothing would drain it.

use crate::client::{self, Connection};
use crate::root;
use crate::workload::request_body;
use anyhow::{Context as _, bail, ensure};
use serde_json::Value;
use shared::redis::stream::Queue;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longer than import-fn's one kick a second.
const SPACING: Duration = Duration::from_millis(1_100);
const POLL_EVERY: Duration = Duration::from_millis(2);

pub struct WatchLatency {
    pub runs: usize,
    /// From import-fn's `202` (the end of its invocation) to status-fn reading `completed`.
    pub after_202: Vec<Duration>,
    /// From sending import-fn's invocation to the same.
    pub after_post: Vec<Duration>,
    /// How long the emulator took to return import-fn's answer.
    pub import: Vec<Duration>,
}

impl WatchLatency {
    pub fn p(samples: &[Duration], q: f64) -> f64 {
        client::percentile_ms(samples, q)
    }
}

/// `cargo lambda watch` in a process group of its own, stopped (the whole group) on drop.
struct Watch {
    child: std::process::Child,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        unsafe { libc::kill(-group, libc::SIGTERM) };
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `Err` says why it was not measured (no cargo-lambda, the emulator did not answer, ...).
pub async fn watch_phase(
    redis_url: &str,
    database_url: &str,
    queue: &Queue,
    runs: usize,
    timeout: Duration,
) -> anyhow::Result<WatchLatency> {
    let version = Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    ensure!(
        version.is_ok_and(|s| s.success()),
        "cargo-lambda is not installed (pip install cargo-lambda)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let log_path = root().join("target").join("bench").join("watch.log");
    std::fs::create_dir_all(log_path.parent().expect("a parent"))?;
    let log = std::fs::File::create(&log_path)?;
    let env = [
        format!("REDIS_URL={redis_url}"),
        format!("DATABASE_URL={database_url}"),
        "BLOCK_TIMEOUT=0".into(),
        "DRAIN_FUNCTION_NAME=drain-fn".into(),
        format!("AWS_ENDPOINT_URL_LAMBDA={endpoint}"),
        "AWS_ACCESS_KEY_ID=bench".into(),
        "AWS_SECRET_ACCESS_KEY=bench".into(),
        "AWS_REGION=us-east-1".into(),
        "RUST_LOG=info".into(),
    ];
    let mut command = Command::new("cargo");
    command
        .current_dir(root())
        .args([
            "lambda",
            "watch",
            "--release",
            "--ignore-changes",
            "--quiet",
        ])
        .args(["-P", &port.to_string()])
        .args(env.iter().flat_map(|e| ["--env-var", e.as_str()]))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group, so that stopping it stops the functions it started.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let _watch = Watch {
        child: command.spawn().context("starting cargo lambda watch")?,
    };
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    let mut conn = loop {
        if let Ok(conn) = Connection::open(addr).await {
            break conn;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "cargo lambda watch did not listen on {addr} (see {})",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut out = WatchLatency {
        runs,
        after_202: Vec::new(),
        after_post: Vec::new(),
        import: Vec::new(),
    };
    // The first import starts (and may have to build) import-fn, drain-fn and status-fn.
    let mut last_answer: Option<Instant> = None;
    for run in 0..=runs {
        let limit = if run == 0 {
            timeout
        } else {
            Duration::from_secs(30)
        };
        if let Some(last) = last_answer {
            tokio::time::sleep(SPACING.saturating_sub(last.elapsed())).await;
        }
        let quiet = Instant::now();
        while queue.drains_with_time_left(0).await? > 0 {
            ensure!(quiet.elapsed() < limit, "a drain is still registered");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let import_id = format!("watch-{run}");
        let sent = Instant::now();
        let answer = invoke(&mut conn, "import-fn", &import_event(&import_id)?, limit).await?;
        let accepted = Instant::now();
        last_answer = Some(accepted);
        ensure!(
            answer["statusCode"] == 202,
            "import-fn answered {answer} (see {})",
            log_path.display()
        );
        let status = status_event(&import_id);
        loop {
            let answer = invoke(&mut conn, "status-fn", &status, limit).await?;
            let doc: Value = answer["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            match doc["status"].as_str() {
                Some("completed") => break,
                Some("failed") => bail!("import {import_id} failed: {doc}"),
                _ => {}
            }
            ensure!(
                sent.elapsed() < limit,
                "import {import_id} not completed after {limit:?}: {answer} (see {})",
                log_path.display()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
        let done = Instant::now();
        if run > 0 {
            out.after_202.push(done - accepted);
            out.after_post.push(done - sent);
            out.import.push(accepted - sent);
        }
    }
    Ok(out)
}

async fn invoke(
    conn: &mut Connection,
    function: &str,
    event: &bytes::Bytes,
    limit: Duration,
) -> anyhow::Result<Value> {
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let answer = tokio::time::timeout(limit, conn.post_json(&path, event.clone()))
        .await
        .with_context(|| format!("{function} gave no answer within {limit:?}"))??;
    ensure!(
        answer.status == 200,
        "the emulator answered {} for {function}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    Ok(serde_json::from_slice(&answer.body)?)
}

/// events/import-seed.json carrying a 1-lead request of its own.
fn import_event(import_id: &str) -> anyhow::Result<bytes::Bytes> {
    let text = std::fs::read_to_string(root().join("events").join("import-seed.json"))?;
    let mut event: Value = serde_json::from_str(&text)?;
    let body = request_body(import_id, 1);
    event["body"] = Value::String(String::from_utf8(body.to_vec())?);
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("content-length");
    }
    Ok(bytes::Bytes::from(event.to_string()))
}

/// events/status.json asking for `import_id`.
fn status_event(import_id: &str) -> bytes::Bytes {
    let text =
        std::fs::read_to_string(root().join("events").join("status.json")).unwrap_or_default();
    bytes::Bytes::from(text.replace("unique-import-id", import_id))
}
