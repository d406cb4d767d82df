//! `leads-local` killed with SIGKILL in the middle of a 50,000-lead import, twice, and started
//! again: when every job is done, each lead is stored once or listed once with a reason, the
//! counts equal the table, and nothing is left pending (the invariant docs/guarantees.md states).
//! The first job updates leads stored before (`onExisting=update`), so the kills land in its
//! updates too: it ends with every existing lead updated exactly once and none created.

mod support;

use local_servers::{PostgresServer, RedisServer, create_database};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Local, free_port, http};

/// Slow enough that the test sees the import half done.
const SLOW: &[(&str, &str)] = &[
    ("CLAIM_IDLE_MS", "1000"),
    ("DRAIN_INTERVAL_MS", "100"),
    ("DRAIN_READ_COUNT", "4"),
    ("BATCH_DELAY", "20"),
];

const JOBS: usize = 5;
const LEADS_PER_JOB: usize = 10_000;
/// Every 100th lead has an invalid email: 9,900 valid leads per job.
const VALID_PER_JOB: i64 = 9_900;
/// The job that updates the leads of an earlier import instead of creating its own.
const UPDATE_JOB: usize = 0;

fn leads(job: usize, name: &str) -> Vec<Value> {
    (0..LEADS_PER_JOB)
        .map(|i| {
            let email = if i % 100 == 99 {
                format!("not-an-email-{i}")
            } else {
                format!("lead{i}@crash{job}.example.com")
            };
            json!({"fullName": format!("{name} {i}"), "email": email, "phone": "+1 555 010 0000"})
        })
        .collect()
}

async fn stored(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Leads created plus leads updated: how far the drain has come.
async fn writes(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) + count(updated_by_import) FROM leads")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits until at least `at_least` writes are done, polling every 10 ms.
async fn wait_for_writes(db: &sqlx::PgPool, at_least: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = writes(db).await;
        if n >= at_least {
            return n;
        }
        assert!(Instant::now() < deadline, "only {n} leads stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn leads_local_killed_mid_import_loses_nothing_and_doubles_nothing() {
    // Started on this test's thread, which outlives every leads-local process below.
    let redis = RedisServer::start().expect("redis-server");
    let postgres = PostgresServer::start().expect("postgres");
    create_database(&postgres.url("postgres"), "leads")
        .await
        .unwrap();
    let database_url = postgres.url("leads");
    let port = free_port();
    let log = std::env::temp_dir().join(format!("leads-local-crash-{port}.log"));
    // Rows at the end: the earlier import's, then every job's but the update job's.
    let total = VALID_PER_JOB * JOBS as i64;

    let local = Local::start(port, &redis.url(), &database_url, &log, SLOW);
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await
        .unwrap();
    // The leads the update job will update, stored first.
    let body =
        json!({"importId": "before", "leads": leads(UPDATE_JOB, "Old Lead"), "createdBy": "u0"});
    let (status, answer) = http(port, "POST", "/leads/import", Some(&body.to_string()));
    assert_eq!(status, 202, "{answer}");
    wait_for_writes(&db, VALID_PER_JOB).await;
    let post = |job: usize| {
        let mut body = json!({"importId": format!("crash-{job}"), "leads": leads(job, "Lead"), "createdBy": "u1"});
        if job == UPDATE_JOB {
            body["onExisting"] = "update".into();
        }
        let (status, answer) = http(port, "POST", "/leads/import", Some(&body.to_string()));
        assert_eq!(status, 202, "{answer}");
    };

    // Killed twice in the middle of the drain, started again each time: first in the middle
    // of the update job's updates (the other jobs are posted after), then a few milliseconds
    // after a commit: between COMMIT and XACK, or in the next batch's transaction.
    post(UPDATE_JOB);
    let mut local = Some(local);
    let all_writes = VALID_PER_JOB * (JOBS as i64 + 1);
    for (at_least, delay_ms, below) in [
        (VALID_PER_JOB + 3_000, 0, 2 * VALID_PER_JOB),
        (VALID_PER_JOB + 30_000, 7, all_writes),
    ] {
        let seen = wait_for_writes(&db, at_least).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        local.take().unwrap().kill();
        let at_kill = writes(&db).await;
        eprintln!("killed leads-local with {seen}..{at_kill} of {all_writes} writes done");
        assert!(at_kill < below, "killed before that part was done");
        local = Some(Local::start(port, &redis.url(), &database_url, &log, SLOW));
        if below < all_writes {
            (0..JOBS).filter(|&job| job != UPDATE_JOB).for_each(post);
        }
    }

    // Every job finishes (bounded wait), then the invariant holds exactly.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut docs = Vec::new();
    while docs.len() < JOBS {
        assert!(
            Instant::now() < deadline,
            "jobs not done in 120 s: {docs:?}; log in {}",
            log.display()
        );
        docs.clear();
        for job in 0..JOBS {
            let (status, doc) = http(
                port,
                "GET",
                &format!("/leads/import/crash-{job}/status"),
                None,
            );
            assert_eq!(status, 200, "{doc}");
            if doc["progress"]["processed"] == LEADS_PER_JOB as u64 {
                docs.push(doc);
            }
        }
        if docs.len() < JOBS {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    for (job, doc) in docs.iter().enumerate() {
        let (rows, updated): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE import_id = $1), count(*) FILTER (WHERE updated_by_import = $1 AND full_name LIKE 'Lead %') FROM leads",
        )
        .bind(format!("crash-{job}"))
        .fetch_one(&db)
        .await
        .unwrap();
        let progress = &doc["progress"];
        assert_eq!(doc["status"], "completed", "{doc}");
        assert_eq!(progress["total"], LEADS_PER_JOB as u64);
        assert_eq!(
            progress["created"].as_i64().unwrap(),
            rows,
            "rows = created"
        );
        assert_eq!(
            progress["updated"].as_i64().unwrap(),
            updated,
            "updated rows = updated"
        );
        assert_eq!(progress["skipped"], 0);
        let (created, updated) = if job == UPDATE_JOB {
            (0, VALID_PER_JOB)
        } else {
            (VALID_PER_JOB, 0)
        };
        assert_eq!((rows, updated), (created, updated), "job {job}");
        assert_eq!(progress["successful"].as_i64().unwrap(), VALID_PER_JOB);
        let errors = progress["errors"].as_array().unwrap();
        assert_eq!(errors.len() as u64, progress["failed"].as_u64().unwrap());
        let indexes: Vec<u64> = errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..LEADS_PER_JOB as u64)
            .filter(|i| i % 100 == 99)
            .collect();
        assert_eq!(
            indexes, expected,
            "only the invalid leads failed, each once"
        );
    }
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) - count(DISTINCT email) FROM leads")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(duplicates, 0, "no email stored twice");
    assert_eq!(stored(&db).await, total);

    let mut r = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("lead:imports")
        .arg("lead-import-processors")
        .query_async(&mut r)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("{pending:?}")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(0)),
        "nothing pending"
    );
    drop(local);
    let _ = std::fs::remove_file(&log);
}
