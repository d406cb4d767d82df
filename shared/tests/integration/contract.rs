//! `openapi.yaml` is the contract: real responses, from the real routers against real Redis and
//! Postgres, are checked against the response the contract documents for their operation and
//! status code (documented status, documented media type, body valid against its schema).

use crate::support::app::{spawn_app, spawn_app_with};
use crate::support::events::{read_event, replay_event};
use crate::support::leads::synthetic_leads;
use crate::support::requests::Answer;
use http::StatusCode;
use serde_json::{Value, json};

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

/// Follows a local `$ref` (`#/components/...`).
fn deref<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved $ref {r}")),
        None => node,
    }
}

/// A validator for one schema node of the spec, with `#/components/...` references resolvable.
fn validator(spec: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root.as_object_mut()
        .expect("a schema object")
        .insert("components".into(), spec["components"].clone());
    jsonschema::draft202012::new(&root).expect("a valid JSON Schema")
}

/// Asserts that `answer` is what the contract documents for `method path` (for other test
/// modules).
pub fn conforms_to_contract(method: &str, path: &str, answer: &Answer) {
    conforms(&spec(), method, path, answer);
}

/// Asserts that `answer` is what the contract documents for `method path`.
fn conforms(spec: &Value, method: &str, path: &str, answer: &Answer) {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    let code = answer.status.as_str();
    let response = deref(
        spec,
        operation["responses"]
            .get(code)
            .unwrap_or_else(|| panic!("{method} {path}: status {code} is not documented")),
    );
    let media = answer.content_type.split(';').next().unwrap().trim();
    let schema = response["content"]
        .get(media)
        .map(|c| &c["schema"])
        .unwrap_or_else(|| panic!("{method} {path} {code}: media type {media:?} not documented"));
    let v = validator(spec, schema);
    let errors: Vec<String> = v
        .iter_errors(&answer.body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {code}: {} does not match the contract: {errors:?}",
        answer.body
    );
}

const IMPORT: &str = "/leads/import";
const STATUS: &str = "/leads/import/{importId}/status";
const ERRORS: &str = "/leads/import/{importId}/errors";
const IMPORTS: &str = "/leads/imports";
const CANCEL: &str = "/leads/import/{importId}/cancel";

#[test]
fn the_contract_is_openapi_3_1_with_both_operations_and_valid_examples() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(spec["paths"][IMPORT]["post"]["operationId"], "importLeads");
    assert_eq!(
        spec["paths"][STATUS]["get"]["operationId"],
        "getImportStatus"
    );
    // Every example of a body validates against its own schema.
    let mut checked = 0;
    let mut stack = vec![&spec["paths"], &spec["components"]["responses"]];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                if let (Some(schema), Some(Value::Object(examples))) =
                    (map.get("schema"), map.get("examples"))
                {
                    let v = validator(&spec, schema);
                    for (name, example) in examples {
                        let errors: Vec<String> = v
                            .iter_errors(&example["value"])
                            .map(|e| e.to_string())
                            .collect();
                        assert!(errors.is_empty(), "example {name}: {errors:?}");
                        checked += 1;
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(checked >= 11, "examples checked: {checked}");
}

/// API Gateway's own refusals behind an authorizer (`401` for a bad JWT, `403` for a refused
/// SigV4 request) come before any function runs, so no local run produces them: their bodies, as
/// API Gateway documents them, are checked against the contract of both operations instead.
#[test]
fn the_gateways_own_refusals_are_documented_for_both_operations() {
    let spec = spec();
    for (method, path) in [
        ("post", IMPORT),
        ("get", STATUS),
        ("get", ERRORS),
        ("get", IMPORTS),
        ("post", CANCEL),
        ("post", "/leads/import/{importId}/retry"),
    ] {
        for (status, message) in [(401, "Unauthorized"), (403, "Forbidden")] {
            let answer = Answer {
                status: StatusCode::from_u16(status).unwrap(),
                content_type: "application/json".into(),
                location: None,
                body: json!({ "message": message }),
            };
            conforms(&spec, method, path, &answer);
        }
    }
}

/// The `403` import-fn answers behind an authorizer, replayed as API Gateway delivers it.
#[tokio::test]
async fn a_real_refusal_behind_an_authorizer_matches_the_contract() {
    let spec = spec();
    let t = spawn_app().await;
    let answer = replay_event(
        shared::api::import_router(t.app.clone()),
        &read_event("import-jwt-other-creator.json"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    conforms(&spec, "post", IMPORT, &answer);
}

/// The functions' own `401`: an authorizer context that names nobody (a JWT without `sub`, an
/// IAM context without the principal's ARN), replayed as API Gateway would deliver it.
#[tokio::test]
async fn the_functions_own_401_matches_the_contract() {
    let spec = spec();
    let t = spawn_app().await;
    for (router, method, path, event) in [
        (
            shared::api::import_router(t.app.clone()),
            "post",
            IMPORT,
            "import-jwt-no-sub.json",
        ),
        (
            shared::api::status_router(t.app.clone()),
            "get",
            STATUS,
            "status-iam-no-arn.json",
        ),
    ] {
        let answer = replay_event(router, &read_event(event)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{event}");
        assert_eq!(answer.content_type, "application/problem+json", "{event}");
        conforms(&spec, method, path, &answer);
    }
}

#[tokio::test]
async fn real_responses_of_a_whole_job_match_the_contract() {
    let spec = spec();
    let t = spawn_app().await;
    let mut leads = synthetic_leads(60, "contract", 7, 11);
    leads.push(json!(42));
    leads.push(json!({"fullName": "Ada", "email": "ada@x.io", "status": "HOT"}));
    let body = json!({"importId": "contract-1", "leads": leads, "createdBy": "u1"}).to_string();

    let accepted = t.post_import(&body).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    conforms(&spec, "post", IMPORT, &accepted);

    let pending = t.get_status("contract-1").await;
    assert_eq!(pending.body["status"], "pending");
    conforms(&spec, "get", STATUS, &pending);

    let retry = t.post_import(&body).await;
    assert_eq!(retry.status, StatusCode::OK);
    conforms(&spec, "post", IMPORT, &retry);

    t.drain_once().await;
    let processing = t.get_status("contract-1").await;
    conforms(&spec, "get", STATUS, &processing);
    t.drain_all().await;
    let done = t.get_status("contract-1").await;
    assert_eq!(done.body["status"], "completed");
    assert!(
        !done.body["progress"]["errors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    conforms(&spec, "get", STATUS, &done);

    let generated = t
        .post_import(r#"{"leads":[{"fullName":"B","email":"b@x.io"}],"createdBy":"u1"}"#)
        .await;
    conforms(&spec, "post", IMPORT, &generated);

    // A CSV import's 202 carries its column mapping.
    let csv = t
        .call(
            http::Request::post("/leads/import?createdBy=u1")
                .header("content-type", "text/csv")
                .body(axum::body::Body::from(
                    "First Name,Last Name,E-mail,Company\nC,D,c@x.io,X\n",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(csv.status, StatusCode::ACCEPTED, "{}", csv.body);
    assert_eq!(csv.body["mapping"]["attributes"], json!(["Company"]));
    conforms(&spec, "post", IMPORT, &csv);

    // A dry run's 200 is its report.
    let dry = t
        .call(
            http::Request::post("/leads/import?createdBy=u1&dryRun=true")
                .header("content-type", "text/csv")
                .body(axum::body::Body::from("Name,E-mail\nC,c@x.io\nD,bad\n"))
                .unwrap(),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["failedByCode"], json!({"invalid_email": 1}));
    conforms(&spec, "post", IMPORT, &dry);

    // The errors report's pages, the list, and their refusals.
    for query in ["limit=2", "limit=2&cursor=13", "cursor=x", "limit=0"] {
        let page = t
            .get(&format!("/leads/import/contract-1/errors?{query}"))
            .await;
        conforms(&spec, "get", ERRORS, &page);
    }
    conforms(
        &spec,
        "get",
        ERRORS,
        &t.get("/leads/import/nope/errors").await,
    );
    for query in [
        "createdBy=u1&limit=1",
        "state=completed",
        "state=x",
        "cursor=1.a",
    ] {
        let page = t.get(&format!("/leads/imports?{query}")).await;
        conforms(&spec, "get", IMPORTS, &page);
    }
}

#[tokio::test]
async fn real_problems_match_the_contract() {
    let spec = spec();
    let t = spawn_app_with(&[("MAX_LEADS_PER_IMPORT", "2")]).await;
    let lead = json!({"fullName": "A", "email": "a@b.co"});
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{".to_vec(), 400),
        (
            "application/json",
            br#"{"leads":[],"importId":"a b"}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            json!({"leads": [lead, lead, lead], "createdBy": "u"})
                .to_string()
                .into_bytes(),
            413,
        ),
        ("text/plain", b"fullName,email".to_vec(), 415),
        ("text/csv", b"fullName,phone\nA,1\n".to_vec(), 400),
        (
            "application/json",
            vec![b' '; shared::api::MAX_BODY_BYTES + 1],
            413,
        ),
    ];
    for (content_type, body, expected) in cases {
        let answer = t.post_import_as(content_type, body).await;
        assert_eq!(answer.status.as_u16(), expected, "{}", answer.body);
        conforms(&spec, "post", IMPORT, &answer);
    }
    t.post_import(&json!({"importId": "c", "leads": [lead], "createdBy": "u"}).to_string())
        .await;
    let conflict = t
        .post_import(&json!({"importId": "c", "leads": [lead], "createdBy": "v"}).to_string())
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    conforms(&spec, "post", IMPORT, &conflict);

    let unknown = t.get_status("never").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    conforms(&spec, "get", STATUS, &unknown);
    let malformed = t.get_status("bad%20id").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    conforms(&spec, "get", STATUS, &malformed);
    let not_utf8 = t.get_status("%FF%FE").await;
    assert_eq!(not_utf8.status, StatusCode::BAD_REQUEST);
    conforms(&spec, "get", STATUS, &not_utf8);
    let wrong_method = t
        .call(
            http::Request::put(IMPORT)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    conforms(&spec, "post", IMPORT, &wrong_method);
}

#[tokio::test]
async fn unavailable_matches_the_contract() {
    let spec = spec();
    // Postgres unreachable: nothing can be accepted (Redis alone is not enough).
    let t = spawn_app().await.with_postgres_down();
    let answer = t
        .post_import(r#"{"leads":[{"fullName":"A","email":"a@b.co"}],"createdBy":"u"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    conforms(&spec, "post", IMPORT, &answer);
}

/// The checker itself is not vacuous: wrong bodies, statuses and media types are caught.
#[test]
fn the_checker_catches_what_breaks_the_contract() {
    let spec = spec();
    let answer = |status: u16, content_type: &str, body: Value| Answer {
        status: StatusCode::from_u16(status).unwrap(),
        content_type: content_type.into(),
        location: None,
        body,
    };
    let fails = |method: &'static str, path: &'static str, a: Answer| {
        let spec = spec.clone();
        std::panic::catch_unwind(move || conforms(&spec, method, path, &a)).is_err()
    };
    let accepted = json!({"importId": "a", "status": "pending", "total": 1, "statusUrl": "/leads/import/a/status"});
    conforms(
        &spec,
        "post",
        IMPORT,
        &answer(202, "application/json", accepted.clone()),
    );
    let mut extra = accepted.clone();
    extra["secret"] = json!("x");
    assert!(fails(
        "post",
        IMPORT,
        answer(202, "application/json", extra)
    ));
    let mut bad_id = accepted.clone();
    bad_id["importId"] = json!("a b");
    assert!(fails(
        "post",
        IMPORT,
        answer(202, "application/json", bad_id)
    ));
    assert!(fails(
        "post",
        IMPORT,
        answer(500, "application/problem+json", json!({}))
    ));
    assert!(fails("post", IMPORT, answer(202, "text/plain", accepted)));
    let status = json!({"importId": "a", "status": "done", "progress": {"total": 1, "processed": 1, "successful": 1, "failed": 0, "errors": []}, "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z"});
    assert!(fails(
        "get",
        STATUS,
        answer(200, "application/json", status)
    ));
    assert!(fails(
        "get",
        STATUS,
        answer(
            404,
            "application/problem+json",
            json!({"title": "Not found"})
        )
    ));
}

/// The request's schemas say exactly what the parser refuses whole, so a client validating
/// against the contract and the service agree (schemathesis checks it from outside, `make
/// fuzz`): createdBy's pattern is `CreatedBy::parse`, and any JSON value is an item of leads.
#[test]
fn the_request_schema_is_what_the_parser_accepts() {
    let spec = spec();
    let request = &spec["components"]["schemas"]["ImportRequest"]["properties"];
    let created_by = validator(&spec, &request["createdBy"]);
    let item = validator(&spec, &request["leads"]["items"]);
    let spaces = [
        "",
        " ",
        "\t",
        "\n\r",
        "\u{85}",
        "\u{a0}",
        "\u{3000} \u{2028}",
    ];
    let cores = [
        "", "u", "a b", "é", "😀", "\u{feff}", "a\u{0}b", "a\u{7f}", "\u{9f}", "x\u{85}y",
        "y\u{9a}",
    ];
    let lengths = [1, 127, 128, 129];
    let mut checked = 0;
    for pad in spaces {
        for core in cores
            .iter()
            .map(|c| c.to_string())
            .chain(lengths.iter().map(|n| "é".repeat(*n)))
        {
            let raw = format!("{pad}{core}{pad}");
            assert_eq!(
                created_by.is_valid(&json!(raw)),
                shared::domain::CreatedBy::parse(&raw).is_ok(),
                "createdBy {raw:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100);
    for value in [
        json!(0),
        json!(null),
        json!("AAA"),
        json!([]),
        json!({"x": 1}),
    ] {
        assert!(item.is_valid(&value), "{value}");
    }
}
