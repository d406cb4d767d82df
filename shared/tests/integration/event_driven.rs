//! Drains start with the work: an accepted import wakes the local run's drain loop at once
//! (no schedule tick needed), and a large backlog fans out to more drains, never more than
//! `DRAIN_MAX_CONCURRENCY`. (Under the Lambda emulator the same is shown with real async
//! invokes: scripts/lambda-emulator-test.sh.)

use crate::support::app::{TestApp, spawn_app_with};
use crate::support::leads::synthetic_leads;
use serde_json::json;
use shared::local_run::start_drain_loop;
use std::time::{Duration, Instant};

/// No schedule tick during a test: only kicks start drains.
const NO_SCHEDULE: (&str, &str) = ("DRAIN_INTERVAL_MS", "600000");

async fn wait_until_completed(t: &TestApp, import_id: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let doc = t.get_status(import_id).await.body;
        if doc["status"] == "completed" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{import_id} not completed within {within:?}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn an_accepted_import_starts_a_drain_at_once() {
    let t = spawn_app_with(&[NO_SCHEDULE]).await;
    let mut app = t.app.clone();
    let drains = start_drain_loop(&mut app);
    let t = TestApp { app, ..t };
    for n in 0..3 {
        let id = format!("kicked-{n}");
        let answer = t
            .post_import(
                &json!({"importId": id, "createdBy": "u1", "leads": synthetic_leads(1, &id, 0, 0)})
                    .to_string(),
            )
            .await;
        assert_eq!(answer.status, 202);
        wait_until_completed(&t, &id, Duration::from_secs(5)).await;
        t.assert_job_accounted(&id, 1).await;
    }
    drains.abort();
}

#[tokio::test]
async fn a_large_backlog_fans_out_to_more_drains_and_stops_at_the_limit() {
    let overrides = [
        NO_SCHEDULE,
        ("DRAIN_MAX_CONCURRENCY", "3"),
        ("DRAIN_ENTRIES_PER_DRAIN", "2"),
        ("DRAIN_READ_COUNT", "1"),
        ("DRAIN_PARALLEL_BATCHES", "1"),
        ("BATCH_SIZE", "10"),
    ];
    let t = spawn_app_with(&overrides).await;
    // A backlog queued while nothing starts drains: 3 jobs of 400 leads, 120 entries.
    for n in 0..3 {
        t.post_accepted(
            &format!("backlog-{n}"),
            &synthetic_leads(400, &format!("bl{n}"), 0, 0),
        )
        .await;
    }
    let mut app = t.app.clone();
    let drains = start_drain_loop(&mut app);
    let t = TestApp { app, ..t };
    // One more import: its kick starts one drain, which finds the backlog and starts more.
    t.post_accepted("the-kick", &synthetic_leads(10, "kick", 0, 0))
        .await;
    let mut most_running = 0;
    let started = Instant::now();
    loop {
        let running: u64 = redis::cmd("ZCARD")
            .arg(t.key("lead:drains"))
            .query_async(&mut t.redis.clone())
            .await
            .unwrap();
        most_running = most_running.max(running);
        let done = t.get_status("backlog-2").await.body["status"] == "completed"
            && t.get_status("the-kick").await.body["status"] == "completed"
            && t.get_status("backlog-0").await.body["status"] == "completed"
            && t.get_status("backlog-1").await.body["status"] == "completed";
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backlog was not drained"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        (2..=3).contains(&most_running),
        "drains fanned out ({most_running} at once), never past DRAIN_MAX_CONCURRENCY=3"
    );
    for n in 0..3 {
        t.assert_job_accounted(&format!("backlog-{n}"), 400).await;
    }
    t.assert_job_accounted("the-kick", 10).await;
    drains.abort();
}

/// Entries deleted before any drain read them spoil the group's lag as Redis counts it (nil
/// until the group reads past them, one too many after). That must not look like a backlog:
/// an idle drain would wait for entries that are gone until its deadline, and then start
/// successors for them.
#[tokio::test]
async fn entries_deleted_before_they_were_read_are_no_backlog() {
    let t = spawn_app_with(&[NO_SCHEDULE]).await;
    t.post_accepted("read", &synthetic_leads(3, "read", 0, 0))
        .await;
    t.drain_all().await;
    let gone: String = redis::cmd("XADD")
        .arg(t.key("lead:imports"))
        .arg("*")
        .arg("note")
        .arg("deleted before any drain reads it")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let _: u64 = redis::cmd("XDEL")
        .arg(t.key("lead:imports"))
        .arg(&gone)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert!(
        t.xlen().await > 0,
        "the read entries are still in the stream"
    );
    let backlog = t.app.queue.backlog().await.unwrap();
    assert_eq!(backlog.entries(), 0, "{backlog:?}");

    // A drain with 30 s to go finds nothing and returns long before its deadline.
    let started = Instant::now();
    let report = t.drain_once().await;
    assert_eq!((report.entries, report.drains_started), (0, 0));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // A new entry after the deleted one is a backlog again.
    t.post_accepted("after", &synthetic_leads(2, "after", 0, 0))
        .await;
    assert!(t.app.queue.backlog().await.unwrap().entries() > 0);
    let started = Instant::now();
    t.drain_all().await;
    t.assert_job_accounted("after", 2).await;
    assert_eq!(t.app.queue.backlog().await.unwrap().entries(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
