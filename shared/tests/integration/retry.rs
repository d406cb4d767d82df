//! Retry (issue 15): the failures of a finished import are imported again as a new import,
//! linked both ways; transient failures by default, every failure with `?all=true`.

use crate::contract::conforms_to_contract;
use crate::redrive::DEAD_ON_SECOND_DELIVERY;
use crate::support::app::spawn_app_with;
use crate::support::leads::synthetic_leads;
use serde_json::json;

#[tokio::test]
async fn a_dead_lettered_chunk_is_retried_as_a_linked_import_that_completes() {
    let t = spawn_app_with(&DEAD_ON_SECOND_DELIVERY).await;
    // 120 leads, every 40th invalid: 117 valid in entries of 50, 50, 17.
    t.post_accepted("parent", &synthetic_leads(120, "retry", 40, 0))
        .await;
    let early = t.post("/leads/import/parent/retry").await;
    assert_eq!(early.status, 409, "unfinished: {}", early.body);
    assert_eq!(early.content_type, "application/problem+json");

    // The first entry is held by a drain that dies, then dead-lettered on redelivery.
    assert_eq!(t.read_as_ghost("crashed-drain", 1).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(t.drain_all().await.dead_lettered, 1);
    let failed = t.assert_job_accounted("parent", 120).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["progress"]["failed"], 53,
        "50 dead letters + 3 invalid"
    );

    let retried = t.post("/leads/import/parent/retry").await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    conforms_to_contract("post", "/leads/import/{importId}/retry", &retried);
    conforms_to_contract("post", "/leads/import/{importId}/retry", &early);
    assert_eq!(retried.body["parentImportId"], "parent");
    assert_eq!(retried.body["total"], 50, "only the transient failures");
    let child = retried.body["importId"].as_str().unwrap().to_owned();
    assert_ne!(child, "parent");
    assert_eq!(
        retried.location.as_deref(),
        Some(format!("/leads/import/{child}/status").as_str())
    );

    t.drain_all().await;
    let done = t.assert_job_accounted(&child, 50).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["successful"], 50);
    assert_eq!(done["parentImportId"], "parent");
    let status = "/leads/import/{importId}/status";
    conforms_to_contract("get", status, &t.get_status("parent").await);
    conforms_to_contract("get", status, &t.get_status(&child).await);
    assert_eq!(t.lead_count(&child).await, 50);
    let parent = t.get_status("parent").await.body;
    assert_eq!(parent["childImportIds"], json!([child]), "{parent}");
    // The list shows the links too.
    let listed = t.get("/leads/imports?createdBy=u1").await.body;
    assert_eq!(listed["imports"][0]["parentImportId"], "parent");
    assert_eq!(listed["imports"][1]["childImportIds"], json!([child]));

    // Every failure, with ?all=true: the 3 invalid leads fail again, and the 50 the first
    // retry stored now exist.
    let all = t.post("/leads/import/parent/retry?all=true").await;
    assert_eq!(all.status, 202, "{}", all.body);
    assert_eq!(all.body["total"], 53, "every failed lead of the parent");
    let second = all.body["importId"].as_str().unwrap().to_owned();
    t.drain_all().await;
    let again = t.assert_job_accounted(&second, 53).await;
    assert_eq!(again["progress"]["failed"], 53);
    let codes: Vec<&str> = again["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == "email_exists").count(), 50);
    assert_eq!(codes.iter().filter(|c| **c == "invalid_email").count(), 3);
    let parent = t.get_status("parent").await.body;
    assert_eq!(parent["childImportIds"], json!([child, second]));

    // A completed import without failures has nothing to retry.
    let nothing = t.post(&format!("/leads/import/{child}/retry")).await;
    assert_eq!(nothing.status, 409, "{}", nothing.body);
    assert_eq!(t.post("/leads/import/nope/retry").await.status, 404);
    assert_eq!(
        t.post("/leads/import/parent/retry?all=maybe").await.status,
        400
    );
}
