//! Fault injection (SPEC §6): two drains on one stream, poison entries, entries deleted while
//! pending, the status cache expiring mid-job, Redis and Postgres restarting mid-import, the
//! bounded stream, and an evicting Redis. Every scenario ends with `assert_job_accounted`:
//! rows = successful, processed = total, no duplicate emails, nothing pending, every lead
//! stored or listed once with a reason.
//!
//! A drain crashing between any two steps, and an entry redelivered until it is dead-lettered,
//! are injected with failpoints: they are in `tests/failpoints`, a binary of their own.

use crate::support::app::{TestApp, app_for, spawn_app, spawn_app_on, spawn_app_with};
use crate::support::assertions::error_indexes;
use crate::support::drain::{Failures, drain_until_done, scheduled_event};
use crate::support::leads::synthetic_leads;
use crate::support::log_capture::capture_logs;
use crate::support::private_servers::PrivateServers;
use redis::AsyncCommands;
use shared::aws::lambda::DrainFunction;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Two drains with their own consumer names on one stream, in parallel: each entry is taken
/// by one of them, and together they store every valid lead once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drains_at_once_share_the_stream() {
    let overrides = [("DRAIN_READ_COUNT", "5"), ("CONSUMER_NAME", "drain-a")];
    let t = spawn_app_with(&overrides).await;
    for j in 0..5 {
        t.post_accepted(
            &format!("both-{j}"),
            &synthetic_leads(1_000, &format!("both{j}"), 25, 0),
        )
        .await;
    }
    // 960 valid leads per job: 20 entries each.
    assert_eq!(t.xlen().await, 100);
    let a = DrainFunction::new(t.app.clone()).await;
    let b =
        DrainFunction::new(t.sibling(&[("DRAIN_READ_COUNT", "5"), ("CONSUMER_NAME", "drain-b")]))
            .await;
    let ra = tokio::spawn(async move { a.handle(scheduled_event(30_000)).await });
    let rb = tokio::spawn(async move { b.handle(scheduled_event(30_000)).await });
    let (ra, rb) = (ra.await.unwrap().unwrap(), rb.await.unwrap().unwrap());
    eprintln!("drain-a: {ra:?}\ndrain-b: {rb:?}");
    assert_eq!(ra.entries + rb.entries, 100);
    assert_eq!(ra.leads_stored + rb.leads_stored, 4_800);
    for j in 0..5 {
        let doc = t.assert_job_accounted(&format!("both-{j}"), 1_000).await;
        assert_eq!(doc["status"], "completed");
        assert_eq!(doc["progress"]["successful"], 960);
    }
}

/// The same entries processed by two drains at once: both store transactions race on the
/// same chunks, then two drains with `CLAIM_IDLE_MS=1` keep stealing the entries from each
/// other. Each lead is stored once and counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drains_on_the_same_entries_store_each_lead_once() {
    let overrides = |name| {
        [
            ("DRAIN_READ_COUNT", "2"),
            ("CLAIM_IDLE_MS", "1"),
            ("CONSUMER_NAME", name),
        ]
    };
    let t = spawn_app_with(&overrides("drain-a")).await;
    t.post_accepted("same-entries", &synthetic_leads(2_000, "same", 10, 0))
        .await; // 1,800 valid: 36 entries

    // A drain that read the first ten entries and died; two stores race on their chunks.
    let ghost = t.sibling(&[("CONSUMER_NAME", "ghost")]).queue;
    ghost.ensure_group().await.unwrap();
    let read = ghost.read_new(10, Duration::ZERO).await.unwrap();
    let chunks: Vec<_> = read.iter().map(|d| d.decode().unwrap()).collect();
    let a = t.app.clone();
    let b = t.sibling(&overrides("drain-b"));
    let (ca, cb) = (chunks.clone(), chunks.clone());
    let sa = tokio::spawn(async move { a.store.store_chunks(&ca).await.unwrap() });
    let sb = tokio::spawn(async move { b.store.store_chunks(&cb).await.unwrap() });
    let (oa, ob) = (sa.await.unwrap(), sb.await.unwrap());
    assert_eq!(
        oa, ob,
        "the loser of the race reports the winner's outcomes"
    );
    assert_eq!(oa.values().map(|o| o.successful).sum::<u32>(), 500);
    assert_eq!(t.lead_count("same-entries").await, 500);

    // Both drains now claim and reclaim everything (idle > 1 ms), in parallel.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let a = DrainFunction::new(t.app.clone()).await;
    let b = DrainFunction::new(t.sibling(&overrides("drain-b"))).await;
    let ra = tokio::spawn(async move { a.handle(scheduled_event(30_000)).await });
    let rb = tokio::spawn(async move { b.handle(scheduled_event(30_000)).await });
    let (ra, rb) = (ra.await.unwrap().unwrap(), rb.await.unwrap().unwrap());
    eprintln!("drain-a: {ra:?}\ndrain-b: {rb:?}");
    // Replays report the recorded outcome again, so the reports may add up to more.
    assert!(ra.leads_stored + rb.leads_stored >= 1_300);

    let doc = t.assert_job_accounted("same-entries", 2_000).await;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["progress"]["successful"], 1_800);
    assert_eq!(
        error_indexes(&doc, "invalid_email"),
        (0..2_000).filter(|i| i % 10 == 9).collect::<Vec<u32>>(),
        "no lead reported as \"Email already exists\" by a replay"
    );
}

/// Entries nobody can decode go to the dead-letter stream with the reason and are acked;
/// the jobs around them are not disturbed.
#[tokio::test]
async fn poison_entries_are_dead_lettered_and_acked() {
    let t = spawn_app().await;
    t.post_accepted("beside-poison", &synthetic_leads(120, "poison", 0, 0))
        .await;
    let stream = t.key("lead:imports");
    let mut r = t.redis.clone();
    let poison: [(&[(&str, &str)], &str); 4] = [
        (
            &[("garbage", "x")],
            "undecodable entry: field importId is missing",
        ),
        (
            &[
                ("importId", "no such!"),
                ("seq", "0"),
                ("createdBy", "u"),
                ("leads", "[]"),
            ],
            "undecodable entry: field importId is not a valid import id",
        ),
        (
            &[
                ("importId", "beside-poison"),
                ("seq", "x"),
                ("createdBy", "u"),
                ("leads", "[]"),
            ],
            "undecodable entry: field seq is not a number",
        ),
        (
            &[
                ("importId", "beside-poison"),
                ("seq", "9"),
                ("createdBy", "u"),
                ("leads", "{oops"),
            ],
            "undecodable entry: field leads is not a list of leads",
        ),
    ];
    let mut ids = Vec::new();
    for (fields, _) in &poison {
        let id: String = r.xadd(&stream, "*", fields).await.unwrap();
        ids.push(id);
    }

    let report = t.drain_all().await;
    assert_eq!(report.dead_lettered, 4, "{report:?}");
    let dead = t.dead_letters().await;
    assert_eq!(dead.len(), 4, "{dead:?}");
    for ((_, reason), id) in poison.iter().zip(&ids) {
        let letter = dead
            .iter()
            .find(|d| &d["originalId"] == id)
            .unwrap_or_else(|| panic!("{id} dead-lettered: {dead:?}"));
        assert!(letter["reason"].starts_with(reason), "{letter:?}");
    }
    assert_eq!(dead[0]["garbage"], "x", "the entry's fields are kept");

    let doc = t.assert_job_accounted("beside-poison", 120).await;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["progress"]["successful"], 120);
}

/// Entries deleted (XDEL) or trimmed (XTRIM) while pending: XAUTOCLAIM reports their ids,
/// and their chunks are queued again from the job's durable payload, so every lead is stored.
#[tokio::test]
async fn entries_deleted_while_pending_are_queued_again_from_postgres() {
    let t = spawn_app_with(&[("CLAIM_IDLE_MS", "1")]).await;

    // 200 leads, every 10th invalid: 180 valid leads in entries of 50, 50, 50, 30.
    t.post_accepted("xdel-job", &synthetic_leads(200, "xdel", 10, 0))
        .await;
    let ids = t.read_as_ghost("ghost", 10).await;
    assert_eq!(ids.len(), 4);
    let _: i64 = t
        .redis
        .clone()
        .xdel(t.key("lead:imports"), &[&ids[1]])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = t.drain_all().await;
    assert_eq!(report.leads_stored, 180, "{report:?}");
    let doc = t.assert_job_accounted("xdel-job", 200).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(doc["progress"]["successful"], 180);
    assert_eq!(doc["progress"]["failed"], 20, "the invalid ones");

    // A whole job trimmed away while pending.
    t.post_accepted("xtrim-job", &synthetic_leads(100, "xtrim", 0, 0))
        .await;
    assert_eq!(t.read_as_ghost("ghost", 10).await.len(), 2);
    trim_everything(&t).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = t.drain_once().await;
    assert_eq!(report.deleted_while_pending, 2, "{report:?}");
    assert_eq!(report.requeued, 2, "{report:?}");
    t.drain_all().await;
    let doc = t.assert_job_accounted("xtrim-job", 100).await;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["progress"]["successful"], 100);
}

/// A job accepted before payloads were kept (its `payload` is NULL) cannot be queued again:
/// the leads of its deleted entries fail with a reason, and the job still finishes.
#[tokio::test]
async fn deleted_entries_of_a_job_without_payload_fail_with_a_reason() {
    let t = spawn_app_with(&[("CLAIM_IDLE_MS", "1")]).await;
    let reason = "The stream entry was deleted from Redis before it was processed";
    t.post_accepted("legacy-job", &synthetic_leads(100, "legacy", 0, 0))
        .await;
    sqlx::query("UPDATE import_jobs SET payload = NULL")
        .execute(&t.db)
        .await
        .unwrap();
    assert_eq!(t.read_as_ghost("ghost", 10).await.len(), 2);
    trim_everything(&t).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = t.drain_once().await;
    assert_eq!(report.deleted_while_pending, 2, "{report:?}");
    let doc = t.assert_job_accounted("legacy-job", 100).await;
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["progress"]["successful"], 0);
    assert_eq!(
        error_indexes(&doc, "dead_letter"),
        (0..100).collect::<Vec<u32>>()
    );
    assert!(
        doc["progress"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["error"] == reason)
    );
}

async fn trim_everything(t: &TestApp) {
    let _: i64 = redis::cmd("XTRIM")
        .arg(t.key("lead:imports"))
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
}

/// `import:job:{id}` expiring mid-job: status is rebuilt from Postgres with the same
/// document, and the drain puts the key back before adding its outcomes.
#[tokio::test]
async fn the_status_cache_expiring_mid_job_changes_nothing() {
    let t = spawn_app().await;
    // 500 leads, every 10th invalid: 450 valid in 9 entries; a dead drain holds 4 of them.
    t.post_accepted("cache-job", &synthetic_leads(500, "cache", 10, 0))
        .await;
    assert_eq!(t.read_as_ghost("ghost", 4).await.len(), 4);
    t.drain_all().await;
    let key = t.key("import:job:cache-job");
    let mut r = t.redis.clone();

    let cached = t.get_status("cache-job").await.body;
    assert_eq!(cached["status"], "processing", "{cached}");
    assert_eq!(cached["progress"]["successful"], 250);
    let _: i64 = r.del(&key).await.unwrap();
    let rebuilt = t.get_status("cache-job").await.body;
    assert_eq!(rebuilt["status"], cached["status"]);
    assert_eq!(rebuilt["progress"], cached["progress"]);
    assert_eq!(rebuilt["createdAt"], cached["createdAt"]);

    // The key is gone when the rest of the job is drained (by another drain, after the
    // dead one's entries went idle): the drain rebuilds it from Postgres.
    let _: i64 = r.del(&key).await.unwrap();
    let rescuer = DrainFunction::new(t.sibling(&[("CLAIM_IDLE_MS", "1")])).await;
    let report = rescuer.handle(scheduled_event(30_000)).await.unwrap();
    assert_eq!(report.leads_stored, 200, "{report:?}");
    assert!(
        r.exists::<_, bool>(&key).await.unwrap(),
        "the drain rebuilt the key"
    );
    assert!(r.ttl::<_, i64>(&key).await.unwrap() > 0, "with its TTL");

    let doc = t.assert_job_accounted("cache-job", 500).await;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["progress"]["successful"], 450);
    assert_eq!(doc["progress"]["failed"], 50);
    let _: i64 = r.del(&key).await.unwrap();
    let from_postgres = t.get_status("cache-job").await.body;
    assert_eq!(from_postgres["status"], doc["status"]);
    assert_eq!(from_postgres["progress"], doc["progress"]);
}

/// Redis (AOF on) and Postgres each killed with SIGKILL and restarted, between drain
/// invocations and during one. Invocations may fail; later ones finish the work exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_postgres_restarts_mid_import() {
    let servers = PrivateServers::start(true);
    let mut t = spawn_app_on(
        &servers.redis_url,
        &servers.postgres_admin,
        &[
            ("CLAIM_IDLE_MS", "1"),
            ("DRAIN_READ_COUNT", "1"),
            ("BATCH_DELAY", "50"),
            ("DRAIN_DEADLINE_MARGIN_MS", "0"),
        ],
    )
    .await;
    // 3 jobs of 2,000 leads, every 50th invalid: 1,960 valid each, 40 entries each; one
    // entry per round and 50 ms between rounds make the import last several seconds.
    let jobs = ["restart-0", "restart-1", "restart-2"];
    for (j, id) in jobs.iter().enumerate() {
        t.post_accepted(id, &synthetic_leads(2_000, &format!("restart{j}"), 50, 0))
            .await;
    }
    let stored = |t: &TestApp| {
        let db = t.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM leads")
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let drain = Arc::new(t.drain_function().await);
    let mut failures = 0;
    let invoke_for = |ms: u64| {
        let drain = drain.clone();
        tokio::spawn(async move { drain.handle(scheduled_event(ms)).await.is_err() })
    };

    // Redis: between invocations, then during one.
    failures += u32::from(invoke_for(300).await.unwrap());
    let before = stored(&t).await;
    assert!(before > 0 && before < 5_880, "mid-import: {before}");
    let xlen = t.xlen().await;
    servers.restart_redis().await;
    t.reconnect_redis().await;
    assert_eq!(
        t.xlen().await,
        xlen,
        "the stream survived the restart (AOF)"
    );
    let running = invoke_for(700);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(stored(&t).await < 5_880, "still importing when Redis dies");
    servers.restart_redis().await;
    failures += u32::from(running.await.unwrap());

    // Postgres: between invocations, then during one.
    failures += u32::from(invoke_for(300).await.unwrap());
    servers.restart_postgres().await;
    let running = invoke_for(700);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        stored(&t).await < 5_880,
        "still importing when Postgres dies"
    );
    servers.restart_postgres().await;
    failures += u32::from(running.await.unwrap());

    t.reconnect_redis().await;
    failures += drain_until_done(&drain, Failures::RetryUntilNothingPending)
        .await
        .failed_invocations;
    eprintln!("failed invocations: {failures}");
    for id in jobs {
        let doc = t.assert_job_accounted(id, 2_000).await;
        assert_eq!(doc["status"], "completed", "{doc}");
        assert_eq!(doc["progress"]["successful"], 1_960);
    }
    assert_eq!(stored(&t).await, 5_880);
}

/// Acked entries are trimmed at each invocation; an entry still pending (here under a drain
/// that died) is never trimmed, and is processed once it is reclaimed.
#[tokio::test]
async fn the_stream_is_trimmed_but_never_past_a_pending_entry() {
    let t = spawn_app().await;
    t.post_accepted("trim-a", &synthetic_leads(500, "trima", 0, 0))
        .await; // 10 entries
    t.drain_all().await;
    assert!(
        t.xlen().await <= 1,
        "acked entries trimmed: {}",
        t.xlen().await
    );

    t.post_accepted("trim-b", &synthetic_leads(500, "trimb", 0, 0))
        .await;
    let held = t.read_as_ghost("ghost", 1).await;
    t.post_accepted("trim-c", &synthetic_leads(500, "trimc", 0, 0))
        .await;
    let report = t.drain_all().await;
    assert_eq!(report.entries, 19);
    assert_eq!(t.pending_count().await, 1);
    let still: redis::streams::StreamRangeReply = t
        .redis
        .clone()
        .xrange(t.key("lead:imports"), &held[0], &held[0])
        .await
        .unwrap();
    assert_eq!(
        still.ids.len(),
        1,
        "the pending entry is still in the stream"
    );
    assert_eq!(
        t.xlen().await,
        20,
        "nothing at or after the pending entry was trimmed"
    );

    let rescuer = DrainFunction::new(t.sibling(&[("CLAIM_IDLE_MS", "1")])).await;
    let report = rescuer.handle(scheduled_event(30_000)).await.unwrap();
    assert_eq!(report.leads_stored, 50);
    rescuer.handle(scheduled_event(30_000)).await.unwrap();
    assert!(
        t.xlen().await <= 1,
        "trimmed once acked: {}",
        t.xlen().await
    );
    for id in ["trim-a", "trim-b", "trim-c"] {
        let doc = t.assert_job_accounted(id, 500).await;
        assert_eq!(doc["status"], "completed");
    }
    let emails: BTreeSet<String> = sqlx::query_scalar("SELECT email FROM leads")
        .fetch_all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(emails.len(), 1_500);
}

/// The drain warns at start when Redis may evict keys (and stays quiet under noeviction).
#[tokio::test]
async fn an_evicting_redis_is_reported_at_start() {
    let redis = local_servers::RedisServer::start().unwrap();
    let app = app_for(
        &redis.url(),
        "postgres://nobody@127.0.0.1:1/none",
        "ev:",
        &[],
    );
    let (logs, _guard) = capture_logs();

    app.drain().check_redis_eviction_policy().await;
    assert!(!logs.text().contains("WARN"));

    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    app.drain().check_redis_eviction_policy().await;
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("allkeys-lru") && text.contains("noeviction"),
        "{text}"
    );
}
