//! What the durable payload (`import_jobs.payload`, shared/src/postgres/payload.rs) costs the
//! import, measured apart from the rest of it: the CPU of building it (the valid leads as
//! JSON, then zstd at level 1, as `payload::encode` does) per lead and its size, on the
//! workload's leads and on leads that vary as real ones do; and the job's `INSERT` with it and
//! without it on the same database.

use crate::workload::{Workload, varied_plans};
use shared::job::leads_json;
use shared::job::plan::ImportPlan;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The level `shared::postgres::payload` compresses at.
const ZSTD_LEVEL: i32 = 1;

/// Building the payloads of a set of jobs.
pub struct Build {
    /// CPU µs per valid lead to write the leads as JSON.
    pub json_us_per_lead: f64,
    /// CPU µs per valid lead to compress that JSON.
    pub zstd_us_per_lead: f64,
    pub json_bytes_per_lead: f64,
    pub stored_bytes_per_lead: f64,
}

impl Build {
    pub fn us_per_lead(&self) -> f64 {
        self.json_us_per_lead + self.zstd_us_per_lead
    }
}

pub struct PayloadCost {
    pub workload: Build,
    pub varied: Build,
    /// Median wall time of one varied job's `INSERT` (autocommitted, as the import does it)
    /// with the payload and with `NULL` in its place.
    pub insert_with_ms: f64,
    pub insert_without_ms: f64,
}

/// CPU time of this thread (not wall time: other work on the machine does not count).
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Builds every job's payload three times and keeps the fastest pass of each step (the least
/// disturbed by other work). No await inside: one thread does it all.
fn build(plans: &[ImportPlan]) -> anyhow::Result<(Build, Vec<Vec<u8>>)> {
    let valid: usize = plans
        .iter()
        .flat_map(|p| &p.chunks)
        .map(|c| c.leads.len())
        .sum();
    let (mut json_cpu, mut zstd_cpu) = (Duration::MAX, Duration::MAX);
    let (mut payloads, mut json_bytes) = (Vec::new(), 0);
    for _ in 0..3 {
        let started = thread_cpu();
        let texts: Vec<String> = plans
            .iter()
            .map(|p| leads_json::encode(p.chunks.iter().flat_map(|c| &c.leads)))
            .collect();
        let encoded = thread_cpu();
        payloads = texts
            .iter()
            .map(|t| zstd::bulk::compress(t.as_bytes(), ZSTD_LEVEL))
            .collect::<Result<Vec<_>, _>>()?;
        let compressed = thread_cpu();
        json_cpu = json_cpu.min(encoded - started);
        zstd_cpu = zstd_cpu.min(compressed - encoded);
        json_bytes = texts.iter().map(String::len).sum::<usize>();
    }
    let stored: usize = payloads.iter().map(Vec::len).sum();
    let per_lead = |v: f64| v / valid.max(1) as f64;
    Ok((
        Build {
            json_us_per_lead: per_lead(json_cpu.as_secs_f64() * 1e6),
            zstd_us_per_lead: per_lead(zstd_cpu.as_secs_f64() * 1e6),
            json_bytes_per_lead: per_lead(json_bytes as f64),
            stored_bytes_per_lead: per_lead(stored as f64),
        },
        payloads,
    ))
}

pub async fn payload_phase(db: &PgPool, work: &Workload) -> anyhow::Result<PayloadCost> {
    let (workload, _) = build(work.plans())?;
    let plans = varied_plans(work.plans().len() * 1_000, work.plans()[0].batch_size)?;
    let (varied, payloads) = build(&plans)?;

    // The job's row with and without its payload, in a table shaped like import_jobs,
    // alternating so that both see the same conditions.
    sqlx::query("DROP TABLE IF EXISTS import_jobs_payload")
        .execute(db)
        .await?;
    sqlx::query("CREATE TABLE import_jobs_payload (LIKE import_jobs INCLUDING ALL)")
        .execute(db)
        .await?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (plan, payload) in plans.iter().zip(&payloads) {
        for (variant, samples) in [(true, &mut with), (false, &mut without)] {
            let id = format!(
                "{}-{}",
                plan.import_id.as_str(),
                if variant { "p" } else { "n" }
            );
            let started = Instant::now();
            sqlx::query(
                "INSERT INTO import_jobs_payload (import_id, created_by, payload_hash, total, chunk_count, batch_size, rejected, created_at, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8) ON CONFLICT (import_id) DO NOTHING",
            )
            .bind(&id)
            .bind(plan.created_by.as_str())
            .bind(&plan.payload_hash)
            .bind(plan.total as i32)
            .bind(plan.chunks.len() as i32)
            .bind(plan.batch_size as i32)
            .bind(sqlx::types::Json(&plan.rejected))
            .bind(variant.then_some(payload.as_slice()))
            .execute(db)
            .await?;
            samples.push(started.elapsed());
        }
    }
    sqlx::query("DROP TABLE import_jobs_payload")
        .execute(db)
        .await?;
    let median_ms = |samples: &mut Vec<Duration>| {
        samples.sort_unstable();
        samples
            .get(samples.len() / 2)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(PayloadCost {
        workload,
        varied,
        insert_with_ms: median_ms(&mut with),
        insert_without_ms: median_ms(&mut without),
    })
}
