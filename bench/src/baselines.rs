//! The baselines each pipeline figure is read against: COPY and `INSERT … SELECT` (the write
//! side's limit), the seed's algorithm (what the pipeline replaces) and pipelined XADD (the
//! import side's limit). Each times the same valid leads of the `Workload`.

use crate::workload::Workload;
use anyhow::ensure;
use redis::AsyncCommands as _;
use shared::job::leads_json;
use shared::job::plan::QueuedChunk;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Leads the seed's algorithm gets: about 2 s of batch delays plus the inserts.
const SEED_SUBSET: usize = 1_000;

/// COPY of the valid rows into an empty table shaped like `leads` (same columns, checks,
/// unique email index), in one statement and one transaction.
pub async fn copy_baseline(db: &PgPool, work: &Workload) -> anyhow::Result<Duration> {
    sqlx::query("DROP TABLE IF EXISTS leads_copy")
        .execute(db)
        .await?;
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
                lead.phone.as_ref().map(|p| p.as_str()),
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
pub async fn insert_select_baseline(db: &PgPool) -> anyhow::Result<Duration> {
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
pub async fn seed_baseline(db: &PgPool, work: &Workload) -> anyhow::Result<(usize, Duration)> {
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
            .bind(lead.phone.as_ref().map(|p| p.as_str()))
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
pub async fn xadd_baseline(redis_url: &str, work: &Workload) -> anyhow::Result<Duration> {
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    let entries: Vec<(String, u32, String, String)> = work
        .queued_chunks()
        .map(|c| {
            let leads = leads_json::encode(&c.leads);
            (
                c.import_id.to_string(),
                c.seq,
                c.created_by.as_str().to_owned(),
                leads,
            )
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
