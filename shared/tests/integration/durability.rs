//! Accepted means durable: Postgres holds every accepted import's leads, so whatever Redis
//! loses after the `202` (a flush, a failover to a replica that missed writes) is queued again
//! from Postgres by the reconciler; outages never turn healthy entries into dead letters; no
//! trim removes an entry someone is working on; dead letters and idle consumers expire.

use crate::support::app::{TestApp, TestRedis, spawn_app_on, spawn_app_with};
use crate::support::drain::{Failures, drain_until_done, scheduled_event};
use crate::support::leads::synthetic_leads;
use crate::support::private_servers::{
    PrivateServers, spawn_app_on_redis, spawn_app_with_own_redis,
};
use local_servers::RedisServer;
use redis::AsyncCommands;
use std::time::Duration;

/// The reconciler looks at every unfinished job at once, on every invocation.
const RECONCILE_NOW: (&str, &str) = ("RECONCILE_AFTER_MS", "0");

/// One drain invocation with about 50 ms to work (its deadline margin is 3 s): it stores part
/// of a large backlog.
async fn drain_briefly(t: &TestApp) {
    t.drain_function()
        .await
        .handle(scheduled_event(3_050))
        .await
        .expect("drain invocation");
}

async fn flushall(t: &TestApp) {
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
}

/// Every job of `jobs` (id, total) completed, each lead stored once or failed with a reason.
async fn assert_all_completed(t: &TestApp, jobs: &[(&str, u64)]) {
    for (id, total) in jobs {
        let doc = t.assert_job_accounted(id, *total).await;
        assert_eq!(doc["status"], "completed", "{id}: {doc}");
    }
}

#[tokio::test]
async fn a_flushall_after_the_202_and_again_mid_drain_loses_no_lead() {
    let (_redis, t) = spawn_app_with_own_redis(&[RECONCILE_NOW, ("DRAIN_READ_COUNT", "2")]).await;
    // 3,000 leads, some invalid and some duplicated within the import, in three jobs.
    for (job, tag) in [("flush-a", "fa"), ("flush-b", "fb"), ("flush-c", "fc")] {
        t.post_accepted(job, &synthetic_leads(1_000, tag, 17, 23))
            .await;
    }
    flushall(&t).await;
    assert_eq!(t.xlen().await, 0, "Redis lost everything");

    // One invocation reconciles and stores part; then Redis loses everything again.
    let first = t.drain_once().await;
    assert_eq!(first.reconciled.jobs_checked, 3, "{first:?}");
    flushall(&t).await;
    let drained = drain_until_done(&t.drain_function().await, Failures::FailTheTest).await;
    assert!(
        drained.report.reconciled.chunks_requeued == 0 || drained.report.leads_stored > 0,
        "{:?}",
        drained.report
    );
    assert_all_completed(
        &t,
        &[("flush-a", 1_000), ("flush-b", 1_000), ("flush-c", 1_000)],
    )
    .await;
}

#[tokio::test]
async fn a_replica_promoted_after_it_missed_writes_still_completes_every_job_once() {
    let primary = RedisServer::start().unwrap();
    let replica = RedisServer::start().unwrap();
    let port = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    let mut on_replica = redis::Client::open(replica.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port(&primary.url()))
        .query_async(&mut on_replica)
        .await
        .unwrap();
    let t = spawn_app_on_redis(
        &primary.url(),
        &[
            RECONCILE_NOW,
            ("CLAIM_IDLE_MS", "1"),
            ("DRAIN_READ_COUNT", "3"),
        ],
    )
    .await;

    // Replicated: job one, queued, part of it stored.
    t.post_accepted("before-failover", &synthetic_leads(1_000, "bf", 11, 0))
        .await;
    drain_briefly(&t).await;
    // WAIT in short steps: the test's connection times replies out after 500 ms.
    let mut synced = 0;
    for _ in 0..100 {
        synced = redis::cmd("WAIT")
            .arg(1)
            .arg(100)
            .query_async(&mut t.redis.clone())
            .await
            .unwrap();
        if synced == 1 {
            break;
        }
    }
    assert_eq!(synced, 1, "the replica has every write so far");

    // The replica stops receiving writes (as a lagging replica does); the primary goes on:
    // more of job one stored and acked, job two accepted and queued.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut on_replica)
        .await
        .unwrap();
    drain_briefly(&t).await;
    t.post_accepted("after-failover", &synthetic_leads(500, "af", 0, 0))
        .await;
    drop(primary); // the primary dies; the replica that missed those writes is promoted

    let promoted = TestApp {
        app: t.sibling(&[
            ("REDIS_URL", &replica.url()),
            RECONCILE_NOW,
            ("CLAIM_IDLE_MS", "1"),
            ("CONSUMER_NAME", "after-failover"),
        ]),
        redis: TestRedis::Single(on_replica),
        redis_url: replica.url(),
        ..t
    };
    let report = drain_until_done(&promoted.drain_function().await, Failures::FailTheTest)
        .await
        .report;
    assert!(
        report.reconciled.chunks_requeued > 0,
        "job two's entries were queued again: {report:?}"
    );
    assert_all_completed(
        &promoted,
        &[("before-failover", 1_000), ("after-failover", 500)],
    )
    .await;
}

#[tokio::test]
async fn postgres_down_longer_than_max_deliveries_dead_letters_nothing() {
    let servers = PrivateServers::start(true);
    let overrides = [
        ("MAX_DELIVERIES", "2"),
        ("CLAIM_IDLE_MS", "20"),
        ("DRAIN_READ_COUNT", "4"),
    ];
    let t = spawn_app_on(&servers.redis_url, &servers.postgres_admin, &overrides).await;
    let drain = t.drain_function().await;
    drain.handle(scheduled_event(30_000)).await.unwrap(); // warm: migrations checked
    t.post_accepted("outage", &synthetic_leads(400, "outage", 0, 0))
        .await;
    servers.stop_postgres().await;
    // More deliveries than MAX_DELIVERIES, each failing on the outage.
    let mut failed = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        if drain.handle(scheduled_event(30_000)).await.is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 4, "the drain failed while Postgres was down");
    servers.start_postgres().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let drained = drain_until_done(&drain, Failures::RetryUntilNothingPending).await;
    assert_eq!(drained.report.dead_lettered, 0, "{:?}", drained.report);
    assert!(t.dead_letters().await.is_empty());
    let doc = t.assert_job_accounted("outage", 400).await;
    assert_eq!(doc["status"], "completed", "{doc}");
}

/// A drain that read entries and died holds them pending while another drain stores, acks
/// and trims beside it: the trim (one script: the bound is the oldest pending entry, or the
/// last delivered one when nothing is pending) never removes them, and they are claimed later.
#[tokio::test]
async fn trimming_beside_a_drain_that_died_holding_entries_loses_nothing() {
    let t = spawn_app_with(&[("CLAIM_IDLE_MS", "200"), ("DRAIN_READ_COUNT", "2")]).await;
    let healthy = t.drain_function().await;
    for round in 0..4 {
        t.post_accepted(
            &format!("trim-{round}"),
            &synthetic_leads(300, &format!("tr{round}"), 0, 0),
        )
        .await;
        assert_eq!(t.read_as_ghost(&format!("died-{round}"), 2).await.len(), 2);
        let report = healthy.handle(scheduled_event(30_000)).await.unwrap();
        assert!(report.entries > 0, "{report:?}");
        // Every entry still pending (held by a dead drain, or by nobody yet) is in the stream.
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(t.key("lead:imports"))
            .arg("lead-import-processors")
            .arg("-")
            .arg("+")
            .arg(1_000)
            .query_async(&mut t.redis.clone())
            .await
            .unwrap();
        assert!(
            !pending.is_empty(),
            "round {round}: the dead drain's entries are pending"
        );
        for (id, ..) in &pending {
            let still: Vec<redis::Value> = redis::cmd("XRANGE")
                .arg(t.key("lead:imports"))
                .arg(id)
                .arg(id)
                .query_async(&mut t.redis.clone())
                .await
                .unwrap();
            assert_eq!(still.len(), 1, "pending entry {id} was trimmed");
        }
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let drained = drain_until_done(&healthy, Failures::RetryUntilNothingPending).await;
    assert_eq!(drained.report.dead_lettered, 0);
    for round in 0..4 {
        let doc = t.assert_job_accounted(&format!("trim-{round}"), 300).await;
        assert_eq!(doc["status"], "completed", "{doc}");
    }
    assert!(
        t.xlen().await <= 1,
        "everything stored was trimmed but the last entry delivered"
    );
}

#[tokio::test]
async fn a_real_jobs_entry_that_does_not_decode_is_queued_again_from_postgres() {
    let t = spawn_app_with(&[]).await;
    t.post_accepted("changed-format", &synthetic_leads(120, "cf", 0, 0))
        .await;
    // A deploy with another format wrote seq 1 of this job: its leads do not decode.
    let ids = t.read_as_ghost("reader", 10).await;
    let mut r = t.redis.clone();
    let _: i64 = r.xdel(t.key("lead:imports"), &[&ids[1]]).await.unwrap();
    let _: String = r
        .xadd(
            t.key("lead:imports"),
            "*",
            &[
                ("importId", "changed-format"),
                ("seq", "1"),
                ("createdBy", "u1"),
                ("leads", r#"{"v2":"jane@example.com"}"#),
            ],
        )
        .await
        .unwrap();
    let _: i64 = redis::cmd("XGROUP")
        .arg("DELCONSUMER")
        .arg(t.key("lead:imports"))
        .arg("lead-import-processors")
        .arg("reader")
        .query_async(&mut r)
        .await
        .unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(t.key("lead:imports"))
        .arg("lead-import-processors")
        .arg("0")
        .query_async(&mut r)
        .await
        .unwrap();
    let report = t.drain_all().await;
    assert_eq!(
        report.dead_lettered, 1,
        "the bad entry is kept for inspection"
    );
    let dead = t.dead_letters().await;
    assert!(
        !dead[0]["reason"].contains("jane"),
        "no field value in the reason: {}",
        dead[0]["reason"]
    );
    let doc = t.assert_job_accounted("changed-format", 120).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(doc["progress"]["successful"], 120);
}

#[tokio::test]
async fn expired_dead_letters_and_idle_consumers_are_removed() {
    let (_redis, t) = spawn_app_with_own_redis(&[("IDLE_CONSUMER_MS", "1")]).await;
    let mut r = t.redis.clone();
    let stream = t.key("lead:imports");
    t.post_accepted("idle", &synthetic_leads(60, "idle", 0, 0))
        .await;
    t.drain_once().await; // creates the group; everything stored and acked
    // A consumer holding an entry, and one holding nothing.
    t.post_accepted("held", &synthetic_leads(10, "held", 0, 0))
        .await;
    assert_eq!(t.read_as_ghost("holder", 10).await.len(), 1);
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(&stream)
        .arg("lead-import-processors")
        .arg("empty-handed")
        .query_async(&mut r)
        .await
        .unwrap();
    // A dead letter from 1970, and one from now.
    let dead = t.key("lead:imports:dead");
    let _: String = r
        .xadd(&dead, "1000-0", &[("reason", "old"), ("email", "old@x.io")])
        .await
        .unwrap();
    let _: String = r
        .xadd(&dead, "*", &[("reason", "new"), ("email", "new@x.io")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = t.drain_once().await;
    assert_eq!(report.dead_letters_expired, 1, "{report:?}");
    let reasons: Vec<String> = t
        .dead_letters()
        .await
        .iter()
        .map(|d| d["reason"].clone())
        .collect();
    assert_eq!(reasons, ["new"]);
    let consumers: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&stream)
        .arg("lead-import-processors")
        .query_async(&mut r)
        .await
        .unwrap();
    let names: Vec<String> = consumers
        .iter()
        .map(|c| redis::from_redis_value_ref::<String>(&c[1]).unwrap())
        .collect();
    assert!(report.idle_consumers_removed >= 1, "{report:?}");
    assert_eq!(
        names,
        ["holder"],
        "only the consumer with a pending entry stays"
    );
}
