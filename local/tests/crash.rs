//! `leads-local` killed with SIGKILL in the middle of a 50,000-lead import, twice, and started
//! again: when every job is done, each lead is stored once or listed once with a reason, the
//! counts equal the table, and nothing is left pending (the invariant docs/guarantees.md states).

use local_servers::{PostgresServer, RedisServer, create_database};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JOBS: usize = 5;
const LEADS_PER_JOB: usize = 10_000;
/// Every 100th lead has an invalid email: 9,900 valid leads per job.
const VALID_PER_JOB: i64 = 9_900;

/// A running `leads-local`, killed with SIGKILL when dropped (a failing test leaves nothing).
struct Local(Child);

impl Local {
    fn start(port: u16, redis_url: &str, database_url: &str, log: &std::path::Path) -> Local {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_leads-local"))
            .env("REDIS_URL", redis_url)
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("CLAIM_IDLE_MS", "1000")
            .env("DRAIN_INTERVAL_MS", "100")
            // Slow enough that the test sees the import half done.
            .env("DRAIN_READ_COUNT", "4")
            .env("BATCH_DELAY", "20")
            .env_remove("REDIS_KEY_PREFIX")
            .env_remove("CONSUMER_NAME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start leads-local");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "leads-local did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Local(child)
    }

    /// SIGKILL: no shutdown code runs, as when a machine or container dies.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; returns the status code and the JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status, json)
}

fn leads(job: usize) -> Vec<Value> {
    (0..LEADS_PER_JOB)
        .map(|i| {
            let email = if i % 100 == 99 {
                format!("not-an-email-{i}")
            } else {
                format!("lead{i}@crash{job}.example.com")
            };
            json!({"fullName": format!("Lead {i}"), "email": email, "phone": "+1 555 010 0000"})
        })
        .collect()
}

async fn stored(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Waits until at least `at_least` leads are stored, polling every 10 ms.
async fn wait_for_rows(db: &sqlx::PgPool, at_least: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = stored(db).await;
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("leads-local-crash-{port}.log"));
    let total = VALID_PER_JOB * JOBS as i64;

    let local = Local::start(port, &redis.url(), &database_url, &log);
    for job in 0..JOBS {
        let body =
            json!({"importId": format!("crash-{job}"), "leads": leads(job), "createdBy": "u1"});
        let (status, answer) = http(port, "POST", "/leads/import", Some(&body.to_string()));
        assert_eq!(status, 202, "{answer}");
    }
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await
        .unwrap();

    // Killed twice in the middle of the drain, started again each time.
    let mut local = Some(local);
    // The second kill lands a few milliseconds after a commit: between COMMIT and XACK, or
    // in the next batch's transaction.
    for (at_least, delay_ms) in [(10_000, 0), (30_000, 7)] {
        let seen = wait_for_rows(&db, at_least).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        local.take().unwrap().kill();
        let at_kill = stored(&db).await;
        eprintln!("killed leads-local with {seen}..{at_kill} of {total} leads stored");
        assert!(at_kill < total, "killed before the import finished");
        local = Some(Local::start(port, &redis.url(), &database_url, &log));
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
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE import_id = $1")
            .bind(format!("crash-{job}"))
            .fetch_one(&db)
            .await
            .unwrap();
        let progress = &doc["progress"];
        assert_eq!(doc["status"], "completed", "{doc}");
        assert_eq!(progress["total"], LEADS_PER_JOB as u64);
        assert_eq!(
            progress["successful"].as_i64().unwrap(),
            rows,
            "rows = successful"
        );
        assert_eq!(rows, VALID_PER_JOB);
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
