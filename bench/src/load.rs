//! The HTTP load phases against `leads-local`: `POST /leads/import` of the workload and
//! `GET status` over the finished jobs, each from `concurrency` keep-alive clients, timed per
//! request.

use crate::workload::Workload;
use crate::{client, env_usize};
use anyhow::ensure;
use bytes::Bytes;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Latencies {
    pub elapsed: Duration,
    pub requests: usize,
    pub p50: f64,
    pub p99: f64,
}

/// Runs `requests` (by index) over `concurrency` keep-alive connections; `make` gives each
/// one's path and, for a POST, its body; each answer must have status `expect`. POST bodies
/// are `content_type`.
async fn load<F>(
    addr: SocketAddr,
    concurrency: usize,
    requests: usize,
    expect: u16,
    content_type: &'static str,
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
                    Some(body) => conn.post(&path, content_type, body).await?,
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

pub async fn import_phase(
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
) -> anyhow::Result<Latencies> {
    let bodies: Vec<Bytes> = work.bodies.iter().map(|(_, b)| b.clone()).collect();
    let count = bodies.len();
    load(
        addr,
        concurrency,
        count,
        202,
        "application/json",
        move |i| (Some(bodies[i].clone()), "/leads/import".to_owned()),
    )
    .await
}

/// The same leads as [`import_phase`]'s, each request as a CSV body (its ids in the query).
pub async fn csv_import_phase(
    addr: SocketAddr,
    work: &Workload,
    concurrency: usize,
) -> anyhow::Result<Latencies> {
    let requests = work.csv_requests()?;
    let count = requests.len();
    load(addr, concurrency, count, 202, "text/csv", move |i| {
        let (path, body) = &requests[i];
        (Some(body.clone()), path.clone())
    })
    .await
}

/// First checks every job is `completed`, then sends `BENCH_STATUS_REQUESTS` (5,000) status
/// requests round-robin over the jobs.
pub async fn status_phase(
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
    load(
        addr,
        concurrency,
        requests,
        200,
        "application/json",
        move |i| (None, format!("/leads/import/{}/status", ids[i % ids.len()])),
    )
    .await
}
