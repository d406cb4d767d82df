//! The HTTP API of SPEC §3 against real Redis and Postgres, through the routers the Lambdas
//! serve, and through `lambda_http`'s own adapter with the API Gateway events in `events/`.

use crate::support::app::{TestApp, spawn_app, spawn_app_with};
use crate::support::assertions::assert_nothing_left;
use crate::support::events::{read_event, replay_event};
use crate::support::leads::synthetic_leads;
use http::StatusCode;
use serde_json::json;

const SEED_BODY: &str = r#"{"importId":"unique-import-id","leads":[{"fullName":"John Doe","email":"john@example.com","phone":"+1234567890","status":"NEW","source":"WEBSITE"}],"createdBy":"507f1f77bcf86cd799439011"}"#;

#[tokio::test]
async fn seed_example_through_api_gateway_events_end_to_end() {
    let t = spawn_app().await;
    let accepted = replay_event(
        shared::api::import_router(t.app.clone()),
        &read_event("import-seed.json"),
    )
    .await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert_eq!(
        accepted.location.as_deref(),
        Some("/leads/import/unique-import-id/status")
    );
    assert_eq!(
        accepted.body,
        json!({"importId":"unique-import-id","status":"pending","total":1,"statusUrl":"/leads/import/unique-import-id/status"})
    );

    let pending = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status.json"),
    )
    .await;
    assert_eq!(pending.body["status"], "pending");

    let report = t.drain_once().await;
    assert_eq!((report.entries, report.leads_stored), (1, 1));

    let done = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status.json"),
    )
    .await;
    assert_eq!(done.status, 200);
    let doc = done.body;
    assert_eq!(doc["status"], "completed");
    assert_eq!(
        doc["progress"],
        json!({"total":1,"processed":1,"successful":1,"created":1,"updated":0,"skipped":0,"failed":0,"errors":[]})
    );
    let stored: (String, String, Option<String>, String, String, String) = sqlx::query_as(
        "SELECT full_name, email, phone, status, source, created_by FROM leads WHERE import_id = 'unique-import-id'",
    )
    .fetch_one(&t.db)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (
            "John Doe".into(),
            "john@example.com".into(),
            Some("+1234567890".into()),
            "NEW".into(),
            "WEBSITE".into(),
            "507f1f77bcf86cd799439011".into()
        )
    );
}

#[tokio::test]
async fn a_job_is_one_entry_per_chunk_with_its_cache_key_and_ttl() {
    let t = spawn_app().await;
    let leads = synthetic_leads(120, "chunks", 0, 0);
    let answer = t
        .post_import(&json!({"importId":"chunked","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(t.xlen().await, 3, "120 leads in entries of BATCH_SIZE=50");
    let ttl: i64 = redis::cmd("TTL")
        .arg(t.key("import:job:chunked"))
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert!((3500..=3600).contains(&ttl), "CACHE_TTL applies: {ttl}");
    t.drain_all().await;
    let groups = t.stream_groups().await;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        redis::from_redis_value_ref::<String>(&groups[0]["name"]).unwrap(),
        "lead-import-processors"
    );
    t.assert_job_accounted("chunked", 120).await;
}

#[tokio::test]
async fn a_retry_with_the_same_payload_gets_the_current_status() {
    let t = spawn_app().await;
    assert_eq!(t.post_import(SEED_BODY).await.status, StatusCode::ACCEPTED);
    // Same leads, different formatting and case: the same import.
    let again = SEED_BODY
        .replace("john@example.com", "John@Example.com")
        .replace("\"leads\":", "\"leads\" : ");
    let retry = t.post_import(&again).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body["status"], "pending");
    assert_eq!(retry.body["progress"]["total"], 1);
    assert_eq!(t.xlen().await, 1, "the retry queued nothing");
    t.drain_all().await;
    assert_eq!(t.post_import(SEED_BODY).await.body["status"], "completed");
}

#[tokio::test]
async fn the_same_id_with_other_leads_is_a_conflict() {
    let t = spawn_app().await;
    t.post_import(SEED_BODY).await;
    let other = t
        .post_import(&SEED_BODY.replace("John Doe", "Jane Doe"))
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(other.content_type, "application/problem+json");
    assert_eq!(other.body["status"], 409);
    assert_eq!(t.xlen().await, 1);
}

#[tokio::test]
async fn an_import_without_id_gets_a_uuid_v7() {
    let t = spawn_app().await;
    let answer = t
        .post_import(r#"{"leads":[{"fullName":"A","email":"a@b.co"}],"createdBy":"u"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let id = answer.body["importId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(
        answer.location.unwrap(),
        format!("/leads/import/{id}/status")
    );
}

#[tokio::test]
async fn bad_requests_get_problem_details_and_queue_nothing() {
    let t = spawn_app_with_small_limit().await;
    let valid_lead = json!({"fullName":"A","email":"a@b.co"});
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", b"[]".to_vec(), 400),
        (
            "application/json",
            json!({"leads":[valid_lead]}).to_string().into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"createdBy":"u"}).to_string().into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"createdBy":"u","leads":[]}).to_string().into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"createdBy":"u","leads":"x"})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"createdBy":5,"leads":[valid_lead]})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"importId":"no spaces","createdBy":"u","leads":[valid_lead]})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            "application/json",
            json!({"createdBy":"u","leads":[valid_lead, valid_lead, valid_lead, valid_lead]})
                .to_string()
                .into_bytes(),
            413,
        ),
        (
            "application/json",
            vec![b' '; shared::api::MAX_BODY_BYTES + 1],
            413,
        ),
        (
            "text/plain",
            json!({"createdBy":"u","leads":[valid_lead]})
                .to_string()
                .into_bytes(),
            415,
        ),
        ("application/x-www-form-urlencoded", b"a=b".to_vec(), 415),
    ];
    for (content_type, body, expected) in cases {
        let answer = t.post_import_as(content_type, body).await;
        assert_eq!(
            answer.status.as_u16(),
            expected,
            "{content_type}: {}",
            answer.body
        );
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.body["status"], expected);
        for field in ["type", "title", "detail"] {
            assert!(answer.body[field].is_string(), "{field} in {}", answer.body);
        }
    }
    assert_nothing_left(&t).await;
}

async fn spawn_app_with_small_limit() -> TestApp {
    spawn_app_with(&[("MAX_LEADS_PER_IMPORT", "3")]).await
}

#[tokio::test]
async fn validation_errors_name_the_pointer() {
    let t = spawn_app().await;
    let answer = t.post_import(r#"{"importId":"-x","leads":{}}"#).await;
    let pointers: Vec<&str> = answer.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/importId", "/createdBy", "/leads"]);
}

#[tokio::test]
async fn status_of_unknown_and_malformed_ids() {
    let t = spawn_app().await;
    let unknown = t.get_status("never-imported").await;
    assert_eq!(
        (unknown.status, unknown.content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    let malformed = t.get_status("bad%20id").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let elsewhere = t
        .call(
            http::Request::get("/nope")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (elsewhere.status, elsewhere.content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    let wrong_method = t
        .call(
            http::Request::delete("/leads/import")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_email_already_in_the_table_fails_with_the_seed_words() {
    let t = spawn_app().await;
    t.post_import(SEED_BODY).await;
    t.drain_all().await;
    let second = SEED_BODY.replace("unique-import-id", "second-import");
    t.post_import(&second).await;
    t.drain_all().await;
    let doc = t.assert_job_accounted("second-import", 1).await;
    assert_eq!(
        doc["progress"]["errors"],
        json!([{"index":0,"error":"Email already exists","field":"email","code":"email_exists"}])
    );
    assert_eq!(doc["status"], "completed");
}

#[tokio::test]
async fn postgres_down_answers_503_and_leaks_nothing() {
    let t = spawn_app().await.with_postgres_down();
    let answer = t.post_import(SEED_BODY).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.content_type, "application/problem+json");
    let text = answer.body.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("postgres://"),
        "no connection detail leaks: {text}"
    );
    assert_eq!(t.xlen().await, 0, "nothing queued");
}

#[tokio::test]
async fn an_import_is_accepted_while_redis_is_unreachable() {
    let t = spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let answer = t.post_import(SEED_BODY).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let (has_payload, queued): (bool, bool) = sqlx::query_as(
        "SELECT payload IS NOT NULL, queued_at IS NOT NULL FROM import_jobs WHERE import_id = 'unique-import-id'",
    )
    .fetch_one(&t.db)
    .await
    .unwrap();
    assert!(has_payload && !queued, "durable in Postgres, queued later");
    let status = t.get_status("unique-import-id").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body["status"], "pending");
}

#[tokio::test]
async fn the_bad_request_events_get_their_problems_and_queue_nothing() {
    let t = spawn_app().await;
    for (event, status) in [
        ("import-bad-json.json", 400),
        ("import-missing-created-by.json", 400),
        ("import-form-encoded.json", 415),
    ] {
        let response = replay_event(
            shared::api::import_router(t.app.clone()),
            &read_event(event),
        )
        .await;
        assert_eq!(response.status, status, "{event}: {response:?}");
        assert_eq!(response.content_type, "application/problem+json", "{event}");
        assert_eq!(response.body["status"], status, "{event}");
    }
    let response = replay_event(
        shared::api::status_router(t.app.clone()),
        &read_event("status-bad-id.json"),
    )
    .await;
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(t.xlen().await, 0, "nothing queued");
}
