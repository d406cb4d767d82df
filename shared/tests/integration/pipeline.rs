//! The whole pipeline over real servers: a 10,000-lead import with invalid and duplicate
//! leads mixed in, drained by drain-fn's handler, checked lead by lead.

use crate::support::app::{spawn_app, spawn_app_with};
use crate::support::leads::synthetic_leads;
use crate::support::private_servers::spawn_app_with_own_redis;
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn ten_thousand_leads_with_five_percent_bad_emails() {
    let t = spawn_app().await;
    let leads = synthetic_leads(10_000, "big", 20, 0); // every 20th email invalid: 500
    let answer = t
        .post_import(&json!({"importId":"big-import","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(t.xlen().await, 190, "9,500 valid leads in entries of 50");

    let report = t.drain_all().await;
    assert_eq!(report.leads_stored, 9_500);

    let doc = t.assert_job_accounted("big-import", 10_000).await;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["progress"]["successful"], 9_500);
    assert_eq!(doc["progress"]["failed"], 500);
    let indexes: Vec<u64> = doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..10_000).filter(|i| i % 20 == 19).collect();
    assert_eq!(indexes, expected);
    assert!(
        doc["progress"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["code"] == "invalid_email")
    );
    // Every stored row is the lead the request sent, normalized.
    let row: (String, String, Option<String>, String, String) =
        sqlx::query_as("SELECT full_name, email, phone, status, source FROM leads WHERE email = 'lead7@big.example.com'")
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            "Lead 7".into(),
            "lead7@big.example.com".into(),
            Some("+15550100000".into()),
            "NEW".into(),
            "WEBSITE".into()
        )
    );
}

#[tokio::test]
async fn duplicates_inside_and_across_imports() {
    let t = spawn_app().await;
    // Every 10th lead repeats the previous email; every 25th is invalid.
    let leads = synthetic_leads(1_000, "dups", 25, 10);
    t.post_import(&json!({"importId":"first","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    // A second import that overlaps the first on its first 100 leads.
    let overlap = synthetic_leads(100, "dups", 0, 0);
    t.post_import(&json!({"importId":"second","leads":overlap,"createdBy":"u2"}).to_string())
        .await;
    t.drain_all().await;

    let first = t.assert_job_accounted("first", 1_000).await;
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for e in first["progress"]["errors"].as_array().unwrap() {
        *by_code
            .entry(e["code"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // 40 invalid (i % 25 == 24); duplicates at i % 10 == 9 unless that lead is invalid (i=49,99,...: none
    // coincide since 25 and 10 share i % 50 == 49) -> 100 duplicates minus the 20 that are invalid.
    let invalid = (0..1000).filter(|i| i % 25 == 24).count() as u64;
    let dups = (0..1000).filter(|i| i % 10 == 9 && i % 25 != 24).count() as u64;
    assert_eq!(by_code.get("invalid_email"), Some(&invalid));
    assert_eq!(by_code.get("duplicate_in_import"), Some(&dups));
    let dup = first["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["index"] == 9)
        .unwrap();
    assert_eq!(
        dup["error"],
        "Duplicate email in this import: same as lead 8"
    );

    // The second import's leads that the first stored fail with "Email already exists".
    let second = t.assert_job_accounted("second", 100).await;
    let stored_by_first: i64 = second["progress"]["failed"].as_i64().unwrap();
    assert!(stored_by_first > 0);
    assert_eq!(
        first["progress"]["successful"].as_i64().unwrap()
            + second["progress"]["successful"].as_i64().unwrap(),
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM leads")
            .fetch_one(&t.db)
            .await
            .unwrap()
    );
}

/// Batches stored side by side (`DRAIN_PARALLEL_BATCHES`) whose leads collide: two imports of
/// the same 1,000 emails, the second in reverse order, so that concurrent transactions insert
/// the same addresses. Each email is stored once, and exactly one of its two leads fails.
#[tokio::test]
async fn parallel_batches_with_colliding_emails_store_each_email_once() {
    let t = spawn_app_with(&[("DRAIN_PARALLEL_BATCHES", "4"), ("DRAIN_READ_COUNT", "1")]).await;
    let leads = synthetic_leads(1_000, "both", 0, 0);
    let reversed: Vec<_> = leads.iter().rev().cloned().collect();
    for (id, leads) in [("forward", &leads), ("backward", &reversed)] {
        let answer = t
            .post_import(&json!({"importId":id,"leads":leads,"createdBy":"u1"}).to_string())
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    t.drain_all().await;

    let failed_emails = |doc: &serde_json::Value, email_of: &dyn Fn(u64) -> u64| -> Vec<u64> {
        doc["progress"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|e| assert_eq!(e["code"], "email_exists", "{e}"))
            .map(|e| email_of(e["index"].as_u64().unwrap()))
            .collect()
    };
    let forward = t.assert_job_accounted("forward", 1_000).await;
    let backward = t.assert_job_accounted("backward", 1_000).await;
    let mut failed = failed_emails(&forward, &|i| i);
    failed.extend(failed_emails(&backward, &|i| 999 - i));
    failed.sort_unstable();
    assert_eq!(
        failed,
        (0..1_000).collect::<Vec<u64>>(),
        "every email failed in exactly one of the two imports"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(DISTINCT email) FROM leads")
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(rows, 1_000);
    assert_eq!(
        t.lead_count("forward").await + t.lead_count("backward").await,
        1_000
    );
}

/// The local run serves the API and drains in one process. A drain waiting for new entries
/// (`XREADGROUP … BLOCK`) must not hold the process's other Redis commands: an import posted
/// meanwhile is answered at once (before the block would end), and the waiting drain picks
/// its entry up.
#[tokio::test]
async fn an_import_is_not_held_behind_a_drain_waiting_for_entries() {
    // Its own Redis: the test counts the server's blocked clients.
    let (_redis, t) = spawn_app_with_own_redis(&[("BLOCK_TIMEOUT", "60000")]).await;
    let drain = t.app.drain();
    let waiting = tokio::spawn(async move {
        drain
            .run_until(tokio::time::Instant::now() + std::time::Duration::from_secs(90))
            .await
    });
    // Wait for this drain's read, the only client of the server that can block.
    let mut redis = t.redis.clone();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut redis)
            .await
            .unwrap();
        if info.contains("blocked_clients:1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let leads = synthetic_leads(10, "unblocked", 0, 0);
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        t.post_import(
            &json!({"importId":"while-blocked","leads":leads,"createdBy":"u1"}).to_string(),
        ),
    )
    .await
    .expect("the import is answered while the drain's read is blocked (not after its 60 s)");
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        t.get_status("while-blocked"),
    )
    .await
    .expect("status is answered while the drain's read is blocked");
    assert_eq!(status.status, 200);

    // The waiting read is woken by the new entry and stores it.
    let mut stored = 0;
    for _ in 0..500 {
        stored = t.lead_count("while-blocked").await;
        if stored == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stored, 10, "the blocked drain picked up the new entry");
    waiting.abort();
}
