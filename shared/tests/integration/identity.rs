//! Who may see a job (issue 6 item 4), shown by replaying API Gateway v2 events with a JWT
//! authorizer's claims (and an IAM identity) through `lambda_http`, as deployed.
//!
//! With an authorizer: `createdBy` comes from the caller (a body naming someone else is 403),
//! and only the creator reads the status; anyone else gets the 404 of an unknown id. An
//! authorizer context that names nobody (no `sub`, no ARN) is 401: it fails closed. Without
//! any authorizer (the local run, `events/import-seed.json`), the body's `createdBy` is trusted.

use crate::support::app::{TestApp, spawn_app};
use crate::support::assertions::assert_nothing_left;
use crate::support::events::{event_json, read_event, replay_event, set_event_body};
use http::StatusCode;
use serde_json::{Value, json};

const CREATOR: &str = "507f1f77bcf86cd799439011";

async fn stored_creator(t: &TestApp, import_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT created_by FROM import_jobs WHERE import_id = $1")
        .bind(import_id)
        .fetch_optional(&t.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_jwt_subject_is_the_creator_and_only_it_sees_the_job() {
    let t = spawn_app().await;
    let import = || shared::api::import_router(t.app.clone());
    let status = || shared::api::status_router(t.app.clone());

    // Before the import, another user's view of the id: an unknown job.
    let unknown = replay_event(status(), &read_event("status-other-user.json")).await;
    assert_eq!(unknown.status, 404);

    // The body has no createdBy: the JWT's sub becomes the creator.
    let accepted = replay_event(import(), &read_event("import-jwt.json")).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(
        stored_creator(&t, "unique-import-id").await.as_deref(),
        Some(CREATOR)
    );
    t.drain_all().await;
    let (stored_by,): (String,) =
        sqlx::query_as("SELECT created_by FROM leads WHERE import_id = 'unique-import-id'")
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert_eq!(stored_by, CREATOR);

    // The creator reads the status.
    let doc = replay_event(status(), &read_event("status-jwt.json")).await;
    assert_eq!(
        (doc.status, doc.body["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );

    // Another user gets exactly the 404 of an unknown id (from the cache and from Postgres).
    let other = replay_event(status(), &read_event("status-other-user.json")).await;
    assert_eq!(other, unknown, "indistinguishable from an unknown id");
    redis::cmd("DEL")
        .arg(t.key("import:job:unique-import-id"))
        .query_async::<()>(&mut t.redis.clone())
        .await
        .unwrap();
    assert_eq!(
        replay_event(status(), &read_event("status-other-user.json")).await,
        unknown
    );
    assert_eq!(
        replay_event(status(), &read_event("status-jwt.json"))
            .await
            .status,
        200
    );

    // An IAM principal that is not the creator does not see it either.
    assert_eq!(
        replay_event(status(), &read_event("status-iam.json")).await,
        unknown
    );
}

#[tokio::test]
async fn a_body_naming_another_creator_is_403_and_queues_nothing() {
    let t = spawn_app().await;
    let refused = replay_event(
        shared::api::import_router(t.app.clone()),
        &read_event("import-jwt-other-creator.json"),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.body["type"],
        "https://leads.example.com/problems/forbidden"
    );
    assert_eq!(t.xlen().await, 0);
    assert_eq!(stored_creator(&t, "impersonation-attempt").await, None);

    // Naming oneself is fine.
    let mut event = event_json("import-jwt.json");
    let mut request: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    request["createdBy"] = json!(CREATOR);
    set_event_body(&mut event, request.to_string().into_bytes());
    let answer = replay_event(
        shared::api::import_router(t.app.clone()),
        &event.to_string(),
    )
    .await;
    assert_eq!(answer.status, 202);
}

#[tokio::test]
async fn an_iam_caller_is_the_creator() {
    let t = spawn_app().await;
    let iam = event_json("status-iam.json");
    let arn = iam["requestContext"]["authorizer"]["iam"]["userArn"].clone();
    let mut event = event_json("import-jwt.json");
    event["requestContext"]["authorizer"] = iam["requestContext"]["authorizer"].clone();
    let accepted = replay_event(
        shared::api::import_router(t.app.clone()),
        &event.to_string(),
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    // The principal is the role, without the session name.
    assert_eq!(
        arn.as_str(),
        Some("arn:aws:sts::123456789012:assumed-role/crm-importer/importer")
    );
    assert_eq!(
        stored_creator(&t, "unique-import-id").await.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/crm-importer")
    );
    let by_creator = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status-iam.json"),
    )
    .await;
    assert_eq!(by_creator.status, 200);
    let by_other = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status-jwt.json"),
    )
    .await;
    assert_eq!(by_other.status, 404, "a JWT user is not the IAM principal");
}

#[tokio::test]
async fn without_an_authorizer_the_body_is_trusted_and_anyone_reads() {
    let t = spawn_app().await;
    let accepted = replay_event(
        shared::api::import_router(t.app.clone()),
        &read_event("import-seed.json"),
    )
    .await;
    assert_eq!(accepted.status, 202);
    assert_eq!(
        stored_creator(&t, "unique-import-id").await.as_deref(),
        Some(CREATOR)
    );
    // The unauthenticated status event reads it; so does the local router.
    let status = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status.json"),
    )
    .await;
    assert_eq!(status.status, 200);
    assert_eq!(t.get_status("unique-import-id").await.status, 200);
}

#[tokio::test]
async fn an_authorizer_that_names_nobody_is_401_never_an_unverified_caller() {
    let t = spawn_app().await;
    // A JWT without `sub`, with a body that names a creator: were it taken as an unverified
    // caller, the body's createdBy would be trusted and the import accepted.
    let event = event_json("import-jwt-no-sub.json");
    assert!(event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"].is_null());
    let mut request: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    request["createdBy"] = json!(CREATOR);
    let mut with_creator = event.clone();
    set_event_body(&mut with_creator, request.to_string().into_bytes());
    for event in [event.to_string(), with_creator.to_string()] {
        let refused = replay_event(shared::api::import_router(t.app.clone()), &event).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(
            refused.body["type"],
            "https://leads.example.com/problems/unauthorized"
        );
    }
    assert_nothing_left(&t).await;

    // A job that exists (imported without an authorizer, so anyone may read it unverified):
    // an IAM context without the principal's ARN still reads nothing of it.
    let accepted = replay_event(
        shared::api::import_router(t.app.clone()),
        &read_event("import-seed.json"),
    )
    .await;
    assert_eq!(accepted.status, 202);
    let refused = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status-iam-no-arn.json"),
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.get("progress").is_none(), "{}", refused.body);
    assert!(
        !refused.body.to_string().contains("unique-import-id"),
        "nothing of the job: {}",
        refused.body
    );
    // The same request without any authorizer is the local run's: it reads the job.
    assert_eq!(
        replay_event(
            shared::api::status_router(t.app.clone()),
            &read_event("status.json")
        )
        .await
        .status,
        200
    );
}

/// `event` (a JWT caller's status request) sent to `path?query` with `method` instead.
fn retargeted(event: &str, method: &str, path: &str, query: &str) -> String {
    let mut e = event_json(event);
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!(query);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e.to_string()
}

#[tokio::test]
async fn the_report_and_the_list_follow_the_status_rules() {
    let t = spawn_app().await;
    let router = || shared::api::router(t.app.clone());
    let accepted = replay_event(router(), &read_event("import-jwt.json")).await;
    assert_eq!(accepted.status, 202);
    let other_import = json!({"importId": "someone-elses", "createdBy": "u2", "leads": [{"fullName": "B", "email": "b@x.io"}]});
    assert_eq!(t.post_import(&other_import.to_string()).await.status, 202);

    let errors = "/leads/import/unique-import-id/errors";
    let mine = replay_event(router(), &retargeted("status-jwt.json", "GET", errors, "")).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let theirs = replay_event(
        router(),
        &retargeted("status-other-user.json", "GET", errors, ""),
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);

    // The list: only the caller's own, whatever createdBy it names.
    let list = replay_event(
        router(),
        &retargeted("status-jwt.json", "GET", "/leads/imports", ""),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<&str> = list.body["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["importId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["unique-import-id"]);
    let other_list = replay_event(
        router(),
        &retargeted("status-other-user.json", "GET", "/leads/imports", ""),
    )
    .await;
    assert_eq!(other_list.body["imports"], json!([]));
    let impersonating = replay_event(
        router(),
        &retargeted("status-jwt.json", "GET", "/leads/imports", "createdBy=u2"),
    )
    .await;
    assert_eq!(impersonating.status, 403, "{}", impersonating.body);
}
