//! Transient faults: a dead socket after a Lambda freeze, a BLOCK longer than redis-rs's
//! default reply timeout, a slow Redis, and the API while Redis is down and back.

use crate::support::app::spawn_app_with;
use crate::support::leads::synthetic_leads;
use crate::support::private_servers::spawn_app_with_own_redis;
use http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

const SEED: &str = r#"{"importId":"while-down","leads":[{"fullName":"John Doe","email":"john@example.com"}],"createdBy":"u1"}"#;

/// Redis stopped before the import: Postgres records it (202), and once Redis is back the
/// reconciler queues it; the client never retries.
#[tokio::test]
async fn an_import_accepted_while_redis_is_down_completes_when_it_returns_without_a_retry() {
    let (mut redis, mut t) = spawn_app_with_own_redis(&[("RECONCILE_AFTER_MS", "0")]).await;
    redis.kill();
    let accepted = t.post_import(SEED).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(
        accepted.location.as_deref(),
        Some("/leads/import/while-down/status")
    );
    let pending = t.get_status("while-down").await;
    assert_eq!(pending.body["status"], "pending", "read from Postgres");

    redis.start_again().unwrap();
    t.reconnect_redis().await; // the test's own connection, not the app's
    let report = t.drain_once().await;
    assert_eq!(report.reconciled.jobs_queued_late, 1, "{report:?}");
    t.drain_all().await;
    let doc = t.assert_job_accounted("while-down", 1).await;
    assert_eq!(doc["status"], "completed");
}

#[tokio::test]
async fn a_socket_killed_during_a_freeze_costs_one_retry_not_a_failure() {
    // Its own Redis: the test kills every client of the server but its own.
    let (_redis, t) = spawn_app_with_own_redis(&[]).await;
    t.post_import(SEED).await;
    // What a frozen Lambda finds on thaw: the server closed its connections meanwhile.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert!(killed >= 1, "the app's connection was there to kill");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .execute(&t.db)
        .await
        .unwrap();
    assert_eq!(t.get_status("while-down").await.status, StatusCode::OK);
    assert_eq!(
        t.drain_once().await.leads_stored,
        1,
        "the drain works on fresh connections"
    );
}

#[tokio::test]
async fn a_block_longer_than_the_default_reply_timeout_is_not_an_error() {
    // redis-rs times replies out after 500 ms unless told otherwise; the drain blocks 1.5 s.
    let t = spawn_app_with(&[("BLOCK_TIMEOUT", "1500")]).await;
    let started = Instant::now();
    let report = t.drain_once().await;
    assert_eq!(report.entries, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it did block: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_redis_delays_the_drain_but_fails_nothing() {
    // Its own server: a sleeping Redis would stall the other tests too.
    let (_redis, t) = spawn_app_with_own_redis(&[]).await;
    let leads = synthetic_leads(200, "slow", 0, 0);
    t.post_import(&json!({"importId":"slow","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    // A second client makes the server sleep 1.2 s while the drain works.
    let url = t.redis_url.clone();
    let sleeper = tokio::spawn(async move {
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        let client = redis::Client::open(url).unwrap();
        let mut c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("1.2")
            .query_async(&mut c)
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = t.drain_all().await;
    sleeper.await.unwrap();
    assert_eq!(report.leads_stored, 200);
    t.assert_job_accounted("slow", 200).await;
}
