//! Cancel (issue 15): the chunks not stored are decided as cancelled, the stored ones stay,
//! a drain stores nothing afterwards, and the cancel is idempotent. The races with a drain
//! mid-batch are in tests/failpoints.

use crate::support::app::spawn_app_with;
use crate::support::assertions::error_indexes;
use crate::support::leads::synthetic_leads;

#[tokio::test]
async fn a_cancel_decides_what_is_not_stored_and_nothing_is_stored_after_it() {
    // 300 leads, every 30th invalid: 290 valid leads in 6 entries of 50 (the last 40).
    let t = spawn_app_with(&[("DRAIN_READ_COUNT", "2"), ("DRAIN_PARALLEL_BATCHES", "1")]).await;
    t.post_accepted("to-cancel", &synthetic_leads(300, "cx", 30, 0))
        .await;
    // One invocation would drain it all: store two entries by hand instead, as a drain would.
    let store_two = t
        .app
        .store
        .load_chunks(
            &shared::domain::ImportId::parse("to-cancel").unwrap(),
            Some(&[0, 1]),
        )
        .await
        .unwrap()
        .unwrap();
    t.app.store.store_chunks(&store_two).await.unwrap();

    let cancelled = t.post("/leads/import/to-cancel/cancel").await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["progress"]["successful"], 100);
    assert_eq!(
        cancelled.body["progress"]["failed"], 200,
        "10 invalid + 190 cancelled"
    );
    let stored_at_cancel = t.lead_count("to-cancel").await;
    assert_eq!(stored_at_cancel, 100);

    // The drain finds every entry decided: it acks them and stores nothing.
    let report = t.drain_all().await;
    assert_eq!(report.entries, 6);
    assert_eq!(t.lead_count("to-cancel").await, stored_at_cancel);
    let doc = t.assert_job_accounted("to-cancel", 300).await;
    assert_eq!(doc["status"], "cancelled", "{doc}");
    let cancelled_indexes = error_indexes(&doc, "cancelled");
    assert_eq!(cancelled_indexes.len(), 190);
    assert!(
        cancelled_indexes.iter().all(|&i| i >= 103),
        "stored chunks stay stored"
    );

    // Again: the same document, 200; a finished import cannot be cancelled; unknown is 404.
    let again = t.post("/leads/import/to-cancel/cancel").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "cancelled");
    assert_eq!(again.body["progress"]["failed"], 200);
    t.post_accepted("done", &synthetic_leads(3, "done", 0, 0))
        .await;
    t.drain_all().await;
    let late = t.post("/leads/import/done/cancel").await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert_eq!(late.content_type, "application/problem+json");
    assert_eq!(t.post("/leads/import/nope/cancel").await.status, 404);
    assert_eq!(t.post("/leads/import/bad%20id/cancel").await.status, 400);

    let listed = t.get("/leads/imports?state=cancelled").await;
    assert_eq!(listed.body["imports"][0]["importId"], "to-cancel");
    assert_eq!(listed.body["imports"].as_array().unwrap().len(), 1);
}
