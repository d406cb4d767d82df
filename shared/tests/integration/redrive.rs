//! Dead letters can be re-driven once their cause is gone: the chunk is stored like a new one,
//! the job goes from `failed` to `completed`, and nothing is stored or counted twice.

use crate::support::app::{TestApp, spawn_app_with};
use crate::support::leads::synthetic_leads;
use serde_json::json;

/// Every entry a dead consumer held is claimed as its second delivery: over the limit of 1.
pub const DEAD_ON_SECOND_DELIVERY: [(&str, &str); 2] =
    [("MAX_DELIVERIES", "1"), ("CLAIM_IDLE_MS", "1")];

#[tokio::test]
async fn a_dead_lettered_chunk_is_redriven_to_completion() {
    let t = spawn_app_with(&DEAD_ON_SECOND_DELIVERY).await;
    dead_letter_and_redrive(&t).await;
}

/// A chunk goes to the dead letters (copied and acked in one MULTI) and is re-driven (queued
/// and removed from them in one MULTI) to completion. `t` runs with [`DEAD_ON_SECOND_DELIVERY`].
pub async fn dead_letter_and_redrive(t: &TestApp) {
    let leads = synthetic_leads(120, "redrive", 0, 0);
    t.post_import(&json!({"importId":"redriven","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    let held = t.read_as_ghost("crashed-drain", 1).await;
    assert_eq!(held.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let report = t.drain_all().await;
    assert_eq!(report.dead_lettered, 1);
    let failed = t.assert_job_accounted("redriven", 120).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["progress"]["failed"], 50,
        "the first chunk's 50 leads failed with the reason"
    );
    assert_eq!(t.dead_letters().await.len(), 1);

    let redriven = shared::redrive::redrive_dead_letters(&t.app, None)
        .await
        .unwrap();
    assert_eq!((redriven.requeued, redriven.undecodable), (1, 0));
    assert!(t.dead_letters().await.is_empty());
    assert_eq!(
        t.get_status("redriven").await.body["status"],
        "processing",
        "the chunk is outstanding again"
    );

    t.drain_all().await;
    let done = t.assert_job_accounted("redriven", 120).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"]["successful"], 120);
    assert_eq!(done["progress"]["errors"], json!([]));
    // A second re-drive finds nothing to do and changes nothing.
    let again = shared::redrive::redrive_dead_letters(&t.app, None)
        .await
        .unwrap();
    assert_eq!(again.requeued, 0);
    assert_eq!(t.lead_count("redriven").await, 120);
}

#[tokio::test]
async fn undecodable_dead_letters_stay_for_inspection() {
    let t = spawn_app_with(&[]).await;
    let _: String = redis::cmd("XADD")
        .arg(t.key("lead:imports"))
        .arg("*")
        .arg("garbage")
        .arg("1")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert_eq!(t.drain_all().await.dead_lettered, 1);
    let report = shared::redrive::redrive_dead_letters(&t.app, None)
        .await
        .unwrap();
    assert_eq!((report.requeued, report.undecodable), (0, 1));
    assert_eq!(t.dead_letters().await.len(), 1);
    assert_eq!(
        t.dead_letters().await[0]["reason"],
        "undecodable entry: field importId is missing"
    );
}
