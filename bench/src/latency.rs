//! Latency from an import's `202` to its status reading `completed`, through the API, with
//! drains started only by the import's kick: the local run (`shared::local_run::serve`, the
//! API and the drain loop that kicks wake) in this process on a loopback listener, its
//! schedule pushed out to `DRAIN_INTERVAL_MS=600000` so that it never helps.

use crate::client::{self, Connection};
use crate::workload::request_body;
use anyhow::{Context as _, bail, ensure};
use serde_json::Value;
use shared::app::App;
use shared::config::Config;
use shared::redis::stream::Queue;
use std::time::{Duration, Instant};

/// Runs before each size's measured ones and not counted (the local run's first Postgres
/// and Redis connections, the first drain's set-up).
const WARM_UP_RUNS: usize = 3;

/// How often the client asks for the status.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// What one import size measured, over `runs` imports.
pub struct Completion {
    pub leads: usize,
    pub runs: usize,
    /// From the `202` arriving to the first status read that says `completed`.
    pub after_202: Vec<Duration>,
    /// From sending the `POST` to the same status read.
    pub after_post: Vec<Duration>,
}

impl Completion {
    pub fn p(&self, q: f64) -> f64 {
        client::percentile_ms(&self.after_202, q)
    }

    pub fn max_ms(&self) -> f64 {
        client::percentile_ms(&self.after_202, 1.0)
    }

    pub fn post_p(&self, q: f64) -> f64 {
        client::percentile_ms(&self.after_post, q)
    }
}

/// One import of `leads` new leads after another, `runs` times each size, each only once no
/// drain runs any more (so that its kick, not a drain left running, starts its drain).
pub async fn completion_phase(
    redis_url: &str,
    database_url: &str,
    sizes: &[usize],
    runs: usize,
) -> anyhow::Result<Vec<Completion>> {
    let mut config = Config::from_env()?;
    config.redis_url = redis_url.to_owned();
    config.database_url = database_url.to_owned();
    config.drain_interval = Duration::from_millis(600_000);
    // A drain leaves as soon as the stream is empty (it does not wait BLOCK_TIMEOUT for more),
    // so that every measured import finds none running and kicks its own.
    config.block_timeout = Duration::ZERO;
    config.consumer_name = "bench-local-run".into();
    let app = App::new(config)?;
    let queue = app.queue.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shared::local_run::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let result = measure(addr, &queue, sizes, runs).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    result
}

async fn measure(
    addr: std::net::SocketAddr,
    queue: &Queue,
    sizes: &[usize],
    runs: usize,
) -> anyhow::Result<Vec<Completion>> {
    let mut conn = Connection::open(addr).await?;
    let mut out = Vec::new();
    for &leads in sizes {
        let mut completion = Completion {
            leads,
            runs,
            after_202: Vec::with_capacity(runs),
            after_post: Vec::with_capacity(runs),
        };
        for run in 0..WARM_UP_RUNS + runs {
            no_drain_running(queue).await?;
            let import_id = format!("latency-{leads}-{run}");
            let body = request_body(&import_id, leads);
            let sent = Instant::now();
            let answer = conn.post_json("/leads/import", body).await?;
            let accepted = Instant::now();
            ensure!(
                answer.status == 202,
                "import {import_id} answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
            let path = format!("/leads/import/{import_id}/status");
            let done = loop {
                let status = conn.get(&path).await?;
                let doc: Value = serde_json::from_slice(&status.body)
                    .with_context(|| format!("status of {import_id}"))?;
                match doc["status"].as_str() {
                    Some("completed") => break Instant::now(),
                    Some("failed") => bail!("import {import_id} failed: {doc}"),
                    _ => {}
                }
                ensure!(
                    sent.elapsed() < Duration::from_secs(30),
                    "import {import_id} not completed after 30 s: {doc}"
                );
                tokio::time::sleep(POLL_EVERY).await;
            };
            if run >= WARM_UP_RUNS {
                completion.after_202.push(done - accepted);
                completion.after_post.push(done - sent);
            }
        }
        out.push(completion);
    }
    Ok(out)
}

/// Waits until no drain is registered as running or starting.
async fn no_drain_running(queue: &Queue) -> anyhow::Result<()> {
    let started = Instant::now();
    while queue.drains_with_time_left(0).await? > 0 {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "a drain is still registered after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
