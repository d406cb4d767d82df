//! Fault injection with failpoints (SPEC §6): the drain crashing between any two steps of a
//! batch, and an entry redelivered until it is dead-lettered. Every scenario ends with
//! `assert_job_accounted`: rows = successful, processed = total, no duplicate emails, nothing
//! pending, every lead stored or listed once with a reason.
//!
//! A binary of its own: the `fail` registry is process-wide, so a failpoint configured here
//! fires in any drain of the process. Each test holds a `FailScenario`, which runs the tests
//! that configure failpoints one at a time and clears every failpoint when it ends (a failing
//! test included).

// The harness of tests/integration. That binary uses every part of it (and so checks that
// none is dead); this one uses only some.
#[path = "../integration/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;
use support::app::{TestApp, spawn_app_with};
use support::assertions::error_indexes;
use support::leads::synthetic_leads;

/// Entries the group has read and acknowledged: read (XINFO GROUPS `entries-read`) less those
/// still pending.
async fn acked_count(t: &TestApp) -> u64 {
    let groups = t.stream_groups().await;
    let read: u64 = redis::from_redis_value_ref(&groups[0]["entries-read"]).unwrap();
    read - t.pending_count().await
}

/// Issue 3, item 7, first bullet: a crash (the failpoint returns an error, the invocation
/// fails) after reading, before COMMIT, after COMMIT and after the progress update; at the
/// first batch and in the middle of the import. A later invocation finishes the job exactly.
#[tokio::test]
async fn a_crash_at_every_step_boundary_loses_nothing_and_doubles_nothing() {
    let _scenario = fail::FailScenario::setup();
    // 1,000 leads, every 20th invalid: 950 valid leads in 19 entries of 50; 3 entries a round.
    let points = [
        "drain::after_read",
        "drain::before_commit",
        "drain::after_commit",
        "drain::after_progress",
    ];
    for point in points {
        for (when, actions) in [("first", "1*return"), ("mid", "3*off->1*return")] {
            let scenario = format!("{point} at the {when} batch");
            let t = spawn_app_with(&[("CLAIM_IDLE_MS", "1"), ("DRAIN_READ_COUNT", "3")]).await;
            t.post_accepted("fp-job", &synthetic_leads(1_000, "fp", 20, 0))
                .await;

            fail::cfg(point, actions).unwrap();
            let crashed = t.try_drain_once().await;
            fail::remove(point);
            assert!(
                crashed.is_err(),
                "{scenario}: the invocation reports the fault"
            );

            // What the crash left: the batch it hit is pending (the batch stored beside it
            // finishes); every acked entry's 50 leads are stored, and the pending batch's
            // only if the crash came after COMMIT.
            let committed_batch = matches!(point, "drain::after_commit" | "drain::after_progress");
            assert_eq!(
                t.pending_count().await,
                3,
                "{scenario}: the crashed batch is left pending"
            );
            let acked = acked_count(&t).await;
            if when == "mid" {
                assert!(acked >= 9, "{scenario}: three batches came first");
            }
            assert_eq!(
                t.lead_count("fp-job").await as u64,
                50 * (acked + 3 * u64::from(committed_batch)),
                "{scenario}: rows after the crash"
            );

            tokio::time::sleep(Duration::from_millis(5)).await; // idle > CLAIM_IDLE_MS
            let report = t.drain_all().await;
            // The replayed batch is reported from its recorded outcome, not stored again.
            assert_eq!(
                report.leads_stored + 50 * acked,
                950,
                "{scenario}: {report:?}"
            );
            let doc = t.assert_job_accounted("fp-job", 1_000).await;
            assert_eq!(doc["status"], "completed", "{scenario}: {doc}");
            assert_eq!(doc["progress"]["successful"], 950, "{scenario}");
            assert_eq!(doc["progress"]["failed"], 50, "{scenario}");
            assert_eq!(
                error_indexes(&doc, "invalid_email"),
                (0..1_000).filter(|i| i % 20 == 19).collect::<Vec<u32>>(),
                "{scenario}: only the invalid leads failed (no \"Email already exists\")"
            );
            assert!(t.dead_letters().await.is_empty(), "{scenario}");
        }
    }
}

/// An entry redelivered more than MAX_DELIVERIES times is dead-lettered with its reason; its
/// leads fail with that reason and the job ends `failed`.
#[tokio::test]
async fn an_entry_delivered_too_often_is_dead_lettered() {
    let _scenario = fail::FailScenario::setup();
    let t = spawn_app_with(&[
        ("MAX_DELIVERIES", "1"),
        ("CLAIM_IDLE_MS", "1"),
        ("DRAIN_READ_COUNT", "1"),
    ])
    .await;
    t.post_accepted("redelivered", &synthetic_leads(120, "rd", 0, 0))
        .await; // entries of 50, 50, 20

    fail::cfg("drain::after_read", "return").unwrap();
    let crashed = t.try_drain_once().await;
    fail::remove("drain::after_read");
    assert!(crashed.is_err());
    assert_eq!(t.pending_count().await, 1);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = t.drain_all().await;
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    assert_eq!(report.leads_stored, 70);

    let doc = t.assert_job_accounted("redelivered", 120).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["progress"]["successful"], 70);
    assert_eq!(doc["progress"]["failed"], 50);
    assert_eq!(
        error_indexes(&doc, "dead_letter"),
        (0..50).collect::<Vec<u32>>()
    );
    let reason = "Gave up after 2 deliveries without success";
    assert!(
        doc["progress"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["error"] == reason),
        "{doc}"
    );
    let dead = t.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], reason);
    assert_eq!(dead[0]["importId"], "redelivered");
    assert_eq!(dead[0]["seq"], "0");
    assert!(dead[0]["leads"].contains("lead0@rd.example.com"));
}

/// Issue 15, cancel: a drain crashes at a step of a batch (after reading, before COMMIT,
/// between COMMIT and ack, after the progress update) after a random number of batches, the
/// import is cancelled, and a later drain finishes: the counts add up to `total`, the chunks
/// committed before the cancel stay stored, and nothing is stored after it.
#[tokio::test]
async fn a_cancel_after_a_crash_at_any_step_stores_nothing_after_it() {
    let _scenario = fail::FailScenario::setup();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let points = [
        "drain::after_read",
        "drain::before_commit",
        "drain::after_commit",
        "drain::after_progress",
    ];
    for (n, point) in points.into_iter().enumerate() {
        // 0 to 4 batches of 3 entries come first (of 7 batches).
        let before = (seed as usize / (n + 1)) % 5;
        let scenario = format!("{point} after {before} batches (seed {seed})");
        let t = spawn_app_with(&[
            ("CLAIM_IDLE_MS", "1"),
            ("DRAIN_READ_COUNT", "3"),
            ("DRAIN_PARALLEL_BATCHES", "1"),
        ])
        .await;
        // 950 valid leads in 19 entries of 50.
        t.post_accepted("cancelled", &synthetic_leads(1_000, "cx", 20, 0))
            .await;
        fail::cfg(point, &format!("{before}*off->1*return")).unwrap();
        let crashed = t.try_drain_once().await;
        fail::remove(point);
        assert!(crashed.is_err(), "{scenario}");

        let answer = t.post("/leads/import/cancelled/cancel").await;
        assert_eq!(answer.status, 202, "{scenario}: {}", answer.body);
        let stored_at_cancel = t.lead_count("cancelled").await as u64;
        let committed = matches!(point, "drain::after_commit" | "drain::after_progress");
        let batches = before as u64 + u64::from(committed);
        assert_eq!(stored_at_cancel, 150 * batches, "{scenario}");

        tokio::time::sleep(Duration::from_millis(5)).await; // idle > CLAIM_IDLE_MS
        t.drain_all().await;
        assert_eq!(
            t.lead_count("cancelled").await as u64,
            stored_at_cancel,
            "{scenario}: nothing stored after the cancel"
        );
        let doc = t.assert_job_accounted("cancelled", 1_000).await;
        assert_eq!(doc["status"], "cancelled", "{scenario}: {doc}");
        assert_eq!(
            doc["progress"]["successful"], stored_at_cancel,
            "{scenario}"
        );
        assert_eq!(
            error_indexes(&doc, "cancelled").len() as u64,
            950 - stored_at_cancel,
            "{scenario}"
        );
        assert!(t.dead_letters().await.is_empty(), "{scenario}");
    }
}

/// Issue 15, cancel racing a drain: the drain is held inside its transaction (its chunks
/// claimed, its leads inserted, not committed) while the cancel runs. The cancel waits for
/// it, so that batch is stored whole, and every chunk the cancel decided stays unstored.
#[tokio::test]
async fn a_cancel_waits_for_a_drain_mid_transaction_and_wins_every_chunk_after() {
    let _scenario = fail::FailScenario::setup();
    let settings = [("DRAIN_READ_COUNT", "3"), ("DRAIN_PARALLEL_BATCHES", "1")];
    let t = spawn_app_with(&settings).await;
    t.post_accepted("raced", &synthetic_leads(1_000, "race", 0, 0))
        .await;
    fail::cfg("drain::before_commit", "pause").unwrap();
    // `pause` blocks its thread: the drain runs on a thread and runtime of its own (with
    // clients of its own), so this test's runtime keeps going.
    let drain_app = t.sibling(&settings);
    let draining = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                shared::aws::lambda::DrainFunction::new(drain_app)
                    .await
                    .handle(support::drain::scheduled_event(30_000))
                    .await
                    .map_err(|e| e.to_string())
            })
    });
    // Wait until the drain holds its transaction open.
    let mut waited = 0;
    while idle_in_transaction(&t).await == 0 {
        assert!(waited < 500, "the drain never reached its COMMIT");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    let app = t.app.clone();
    let cancelling = tokio::spawn(async move {
        shared::cancel::cancel_import(
            &app.store,
            &app.cache,
            &shared::webhook::Notifications::from_config(&app.config),
            &shared::job::caller::Caller::Unverified,
            "raced",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !cancelling.is_finished(),
        "the cancel waits for the drain's transaction"
    );
    fail::cfg("drain::before_commit", "off").unwrap();
    let drained = tokio::task::spawn_blocking(move || draining.join().unwrap())
        .await
        .unwrap();
    drained.expect("the held drain finishes");
    let cancelled = cancelling.await.unwrap().expect("the cancel succeeds");
    assert!(matches!(
        cancelled,
        shared::cancel::CancelAnswer::CancelledNow(_)
    ));
    let stored_at_cancel = t.lead_count("raced").await;
    assert!(stored_at_cancel >= 150, "the held batch was stored whole");
    assert_eq!(stored_at_cancel % 50, 0, "whole chunks only");

    t.drain_all().await;
    assert_eq!(t.lead_count("raced").await, stored_at_cancel);
    let doc = t.assert_job_accounted("raced", 1_000).await;
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(
        error_indexes(&doc, "cancelled").len() as i64,
        1_000 - stored_at_cancel
    );
}

/// Connections of the test's database holding a transaction open.
async fn idle_in_transaction(t: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
    )
    .fetch_one(&t.db)
    .await
    .unwrap()
}
