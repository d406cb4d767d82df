//! Hard limits (issue 6 item 3): each one answers a clear `application/problem+json` and
//! leaves nothing behind — no stream entry, no job row, no cache key. The Lambda path (API
//! Gateway event through `lambda_http`) answers the same as the local router.

use crate::support::app::spawn_app;
use crate::support::assertions::assert_nothing_left;
use crate::support::events::{event_json, replay_event, set_event_body, set_event_body_base64};
use crate::support::requests::Answer;
use http::StatusCode;
use serde_json::{Value, json};

fn lead() -> Value {
    json!({"fullName": "Ada Lovelace", "email": "ada@example.com"})
}

/// The answer is a problem of `status` whose `type` ends with `slug`.
fn assert_problem(answer: &Answer, status: u16, slug: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.body["status"], status);
    let kind = answer.body["type"].as_str().unwrap();
    assert!(kind.ends_with(&format!("/{slug}")), "{kind} is {slug}");
    assert!(!answer.body["detail"].as_str().unwrap().is_empty());
    assert!(!answer.body["title"].as_str().unwrap().is_empty());
}

/// The message of the error at `pointer`.
fn message_at<'a>(answer: &'a Answer, pointer: &str) -> &'a str {
    answer.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {}", answer.body))
        .iter()
        .find(|e| e["pointer"] == pointer)
        .unwrap_or_else(|| panic!("an error at {pointer} in {}", answer.body))["message"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn body_over_4_mib_is_413_and_4_mib_is_read() {
    let max = shared::api::MAX_BODY_BYTES;
    assert_eq!(
        max,
        4 * 1024 * 1024,
        "documented in openapi.yaml, README.md and docs/security.md"
    );
    let t = spawn_app().await;
    let over = t
        .post_import_as("application/json", vec![b' '; max + 1])
        .await;
    assert_problem(&over, 413, "body-too-large");
    assert!(over.body["detail"].as_str().unwrap().contains("4194304"));
    // Exactly 4 MiB is read (and judged on its content: whitespace is not JSON).
    let at = t.post_import_as("application/json", vec![b' '; max]).await;
    assert_problem(&at, 400, "invalid-request");
    assert_nothing_left(&t).await;
}

/// A JSON import of exactly `size` bytes whose JSON-escaping adds more than a real import's:
/// ten leads, an ignored field of short strings (two quotes, so two backslashes, per 9 bytes),
/// then spaces.
fn import_body_of(size: usize) -> Vec<u8> {
    let leads: Vec<Value> = (0..10)
        .map(|i| {
            json!({"fullName": format!("Lead {i}"), "email": format!("lead{i}@example.com"),
                "phone": "+1234567890", "status": "NEW", "source": "WEBSITE"})
        })
        .collect();
    let head = json!({ "leads": leads }).to_string();
    let mut body = format!(r#"{},"extra":["#, head.strip_suffix('}').unwrap());
    let (item, end) = (r#""abcdef","#, r#""0"]}"#);
    while body.len() + item.len() + end.len() <= size {
        body.push_str(item);
    }
    body.push_str(end);
    let mut body = body.into_bytes();
    body.resize(size, b' ');
    assert_eq!(body.len(), size);
    body
}

/// The body limit is one that AWS lets through. Lambda refuses an event of
/// `LAMBDA_PAYLOAD_LIMIT` bytes or more, and API Gateway's event holds the body JSON-escaped or
/// base64-encoded, beside headers and the request context. Events carrying a body at the limit
/// and one byte over it, in both encodings, with a JWT authorizer's context and headers at HTTP
/// API's 10 KiB maximum, are all smaller than Lambda's limit: so the function sees them, and
/// answers 202, and its own 413.
///
/// `cargo lambda watch` (scripts/lambda-emulator-test.sh) runs the function on these events
/// too, but cannot show the limit itself: its runtime API accepts events of any size.
#[tokio::test]
async fn bodies_at_and_just_over_the_limit_reach_the_function_in_both_encodings() {
    let t = spawn_app().await;
    let max = shared::api::MAX_BODY_BYTES;
    let mut template = event_json("import-jwt.json");
    let header_bytes = |event: &Value| -> usize {
        let headers = event["headers"].as_object().unwrap();
        headers
            .iter()
            .map(|(k, v)| k.len() + v.as_str().unwrap().len())
            .sum()
    };
    let room = 10 * 1024 - header_bytes(&template) - "x-padding".len();
    template["headers"]["x-padding"] = json!("p".repeat(room));
    assert_eq!(header_bytes(&template), 10 * 1024);
    for (size, expected) in [(max, 202), (max + 1, 413)] {
        let body = import_body_of(size);
        for base64 in [false, true] {
            let mut event = template.clone();
            if base64 {
                set_event_body_base64(&mut event, &body);
            } else {
                set_event_body(&mut event, body.clone());
                let escaped = event["body"].to_string().len() - 2;
                let overhead = escaped as f64 / size as f64 - 1.0;
                assert!(overhead > 0.2, "escaping adds {overhead:.3}");
            }
            let event = event.to_string();
            let what = format!(
                "a {size}-byte body, base64 {base64}: a {}-byte event",
                event.len()
            );
            eprintln!("{what}");
            assert!(event.len() < shared::api::LAMBDA_PAYLOAD_LIMIT, "{what}");
            let router = shared::api::import_router(t.app.clone());
            let answer = replay_event(router, &event).await;
            assert_eq!(answer.status.as_u16(), expected, "{what}: {}", answer.body);
            if expected == 413 {
                assert_eq!(
                    answer.body["type"], "https://leads.example.com/problems/body-too-large",
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn more_leads_than_the_default_limit_is_413() {
    let t = spawn_app().await;
    assert_eq!(
        t.app.config.max_leads_per_import, 10_000,
        "documented default"
    );
    let leads = vec![json!({}); 10_001];
    let answer = t
        .post_import(&json!({"leads": leads, "createdBy": "u"}).to_string())
        .await;
    assert_problem(&answer, 413, "too-many-leads");
    assert!(answer.body["detail"].as_str().unwrap().contains("10000"));
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn request_field_lengths_are_400() {
    let t = spawn_app().await;
    let long_id = t
        .post_import(
            &json!({"importId": "x".repeat(129), "leads": [lead()], "createdBy": "u"}).to_string(),
        )
        .await;
    assert_problem(&long_id, 400, "invalid-request");
    assert!(message_at(&long_id, "/importId").contains("128"));
    let long_creator = t
        .post_import(&json!({"leads": [lead()], "createdBy": "u".repeat(129)}).to_string())
        .await;
    assert_problem(&long_creator, 400, "invalid-request");
    assert!(message_at(&long_creator, "/createdBy").contains("128"));
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn lead_field_lengths_fail_that_lead_alone() {
    let t = spawn_app().await;
    let leads = json!([
        {"fullName": "n".repeat(201), "email": "a@example.com"},
        {"fullName": "Ok", "email": format!("{}@{}.com", "a".repeat(64), "b".repeat(190))},
        {"fullName": "Ok", "email": "c@example.com", "phone": format!("+{}", "1".repeat(16))},
        {"fullName": "é".repeat(200), "email": "d@example.com"},
    ]);
    let answer = t
        .post_import(&json!({"importId": "lengths", "leads": leads, "createdBy": "u"}).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    t.drain_all().await;
    let doc = t.assert_job_accounted("lengths", 4).await;
    let codes: Vec<(u64, &str)> = doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [(0, "too_long"), (1, "too_long"), (2, "invalid_phone")]
    );
    assert_eq!(
        doc["progress"]["successful"], 1,
        "200 characters (not bytes) pass"
    );
}

/// The codes of a job's errors, by index.
fn error_codes(doc: &Value) -> Vec<(u64, String)> {
    doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Values serde_json cannot build (a lone surrogate, `1e400`) and invisible characters fail
/// their lead alone, and the same address spelt another way (NFD, capitals, the domain's
/// A-labels) is the same person: a duplicate in the import, and one already stored afterwards.
#[tokio::test]
async fn bad_values_fail_their_lead_and_one_person_is_one_email() {
    let t = spawn_app().await;
    // Written by hand: no JSON library writes a lone surrogate or 1e400.
    let body = r#"{"importId":"odd-values","createdBy":"u","x":[1e400,"\udfff"],"leads":[
        {"fullName":"\ud800","email":"a@example.com"},
        {"fullName":"B","email":"b@example.com","phone":1e400},
        1e400,
        {"fullName":"Caf\u00e9","email":"caf\u00e9@b\u00fccher.example","\ud800":-1e999},
        {"fullName":"Cafe","email":"CAFE\u0301@XN--BCHER-KVA.EXAMPLE"},
        {"fullName":"D","email":"d\u200b@example.com"},
        {"fullName":"E","email":"e@example.com"}
    ]}"#;
    let answer = t.post_import(body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    t.drain_all().await;
    let doc = t.assert_job_accounted("odd-values", 7).await;
    let expected = [
        (0, "invalid_text"),
        (1, "wrong_type"),
        (2, "not_an_object"),
        (4, "duplicate_in_import"),
        (5, "invalid_email"),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(i, c)| (*i, c.to_string())).collect();
    assert_eq!(error_codes(&doc), expected, "{doc}");
    assert_eq!(doc["progress"]["successful"], 2);
    let errors = doc["progress"]["errors"].to_string();
    assert!(
        errors.contains("zero-width"),
        "the reason says why: {errors}"
    );
    assert!(
        !errors.contains("example"),
        "no address in a reason: {errors}"
    );
    // The stored spelling, and the same person sent again in other spellings.
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM leads ORDER BY email")
        .fetch_all(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, ["café@xn--bcher-kva.example", "e@example.com"]);
    let again = r#"{"importId":"same-person","createdBy":"u","leads":[
        {"fullName":"C","email":"  Cafe\u0301@B\u00dcCHER.example "},
        {"fullName":"E","email":"E@EXAMPLE.COM"}
    ]}"#;
    assert_eq!(t.post_import(again).await.status, StatusCode::ACCEPTED);
    t.drain_all().await;
    let doc = t.assert_job_accounted("same-person", 2).await;
    let codes: Vec<String> = error_codes(&doc).into_iter().map(|(_, c)| c).collect();
    assert_eq!(codes, ["email_exists", "email_exists"], "{doc}");
}

#[tokio::test]
async fn deep_json_nesting_is_400_not_a_stack_overflow() {
    let t = spawn_app().await;
    // serde_json alone would refuse 128+ levels in values it builds but skip ignored ones
    // without a limit: the parser bounds every level, known field or not, at MAX_JSON_DEPTH.
    let max = shared::job::request::MAX_JSON_DEPTH;
    for depth in [max + 1, 129, 100_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for body in [
            format!(
                r#"{{"leads":[{{"fullName":"A","email":"a@b.co","x":{deep}}}],"createdBy":"u"}}"#
            ),
            format!(
                r#"{{"extra":{deep},"leads":[{{"fullName":"A","email":"a@b.co"}}],"createdBy":"u"}}"#
            ),
            format!(r#"{{"leads":{deep},"createdBy":"u"}}"#),
            format!(r#"{{"leads":[{{"fullName":{deep},"email":"a@b.co"}}],"createdBy":"u"}}"#),
        ] {
            let answer = t.post_import(&body).await;
            assert_problem(&answer, 400, "invalid-request");
            assert!(
                answer.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("levels deep"),
                "{}",
                answer.body
            );
        }
    }
    assert_nothing_left(&t).await;
    // Up to the limit, nesting in an unknown field is ignored.
    let inner = max - 3;
    let at_limit = format!(
        r#"{{"leads":[{{"fullName":"A","email":"a@b.co","meta":{}{}}}],"createdBy":"u"}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    );
    assert_eq!(t.post_import(&at_limit).await.status, StatusCode::ACCEPTED);
    let ok = t
        .post_import(r#"{"leads":[{"fullName":"A","email":"a@b.co","meta":[[[{"a":[1]}]]]}],"createdBy":"u"}"#)
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn non_utf8_bodies_are_400() {
    let t = spawn_app().await;
    let valid = json!({"leads": [lead()], "createdBy": "u"}).to_string();
    let mut in_value = br#"{"leads":[{"fullName":""#.to_vec();
    in_value.extend_from_slice(&[0xc3, 0x28]);
    in_value.extend_from_slice(br#"","email":"a@b.co"}],"createdBy":"u"}"#);
    let mut in_key = br#"{"leads":[{"fullName":"A","email":"a@b.co"}],"createdBy":"u",""#.to_vec();
    in_key.extend_from_slice(&[0xff]);
    in_key.extend_from_slice(br#"":1}"#);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(valid.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let latin1: Vec<u8> = br#"{"leads":[{"fullName":"Ren"#
        .iter()
        .copied()
        .chain([0xe9])
        .chain(br#"","email":"r@b.co"}],"createdBy":"u"}"#.iter().copied())
        .collect();
    for body in [in_value, in_key, utf16, latin1] {
        let answer = t.post_import_as("application/json", body).await;
        assert_problem(&answer, 400, "invalid-request");
    }
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn only_json_and_csv_content_types_are_accepted() {
    let t = spawn_app().await;
    let body = json!({"leads": [lead()], "createdBy": "u"}).to_string();
    for content_type in [
        "",
        "text/plain",
        "text/json",
        "text/csvx",
        "application/jsonp",
        "application/xml",
        "multipart/mixed; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json-patch",
    ] {
        let request = http::Request::post("/leads/import");
        let request = if content_type.is_empty() {
            request
        } else {
            request.header("content-type", content_type)
        };
        let answer = t
            .call(request.body(axum::body::Body::from(body.clone())).unwrap())
            .await;
        assert_problem(&answer, 415, "unsupported-media-type");
        assert!(
            answer.body["detail"].as_str().unwrap().contains("text/csv"),
            "the refusal names both types: {}",
            answer.body
        );
    }
    assert_nothing_left(&t).await;
    // CSV is read as CSV (csv_import.rs imports it): this JSON is no CSV with an email column.
    let csv = t
        .post_import_as("Text/CSV; charset=utf-8", body.clone().into_bytes())
        .await;
    assert_problem(&csv, 400, "invalid-request");
    // Multipart is read as multipart: this JSON has no part, let alone a file part.
    let form = t
        .post_import_as("multipart/form-data; boundary=x", body.clone().into_bytes())
        .await;
    assert_problem(&form, 400, "invalid-request");
    for content_type in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/vnd.leads+json",
    ] {
        let answer = t
            .post_import_as(content_type, body.clone().into_bytes())
            .await;
        assert!(
            answer.status.is_success(),
            "{content_type}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn duplicate_top_level_keys_are_400() {
    let t = spawn_app().await;
    for (body, pointer) in [
        (
            r#"{"createdBy":"a","leads":[{}],"createdBy":"b"}"#,
            "/createdBy",
        ),
        (r#"{"createdBy":"a","leads":[{}],"leads":[{}]}"#, "/leads"),
        (
            r#"{"importId":"x","importId":"x","createdBy":"a","leads":[{}]}"#,
            "/importId",
        ),
    ] {
        let answer = t.post_import(body).await;
        assert_problem(&answer, 400, "invalid-request");
        assert_eq!(message_at(&answer, pointer), "duplicate key");
    }
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn numbers_and_other_types_where_strings_belong_are_400() {
    let t = spawn_app().await;
    for (body, pointer, message) in [
        (
            json!({"importId": 7, "leads": [lead()], "createdBy": "u"}),
            "/importId",
            "importId must be a string, not a number",
        ),
        (
            json!({"leads": [lead()], "createdBy": 507}),
            "/createdBy",
            "createdBy must be a string, not a number",
        ),
        (
            json!({"leads": [lead()], "createdBy": ["u"]}),
            "/createdBy",
            "createdBy must be a string, not an array",
        ),
        (
            json!({"leads": [lead()], "createdBy": true}),
            "/createdBy",
            "createdBy must be a string, not a boolean",
        ),
        (
            json!({"leads": 3, "createdBy": "u"}),
            "/leads",
            "leads must be an array, not a number",
        ),
    ] {
        let answer = t.post_import(&body.to_string()).await;
        assert_problem(&answer, 400, "invalid-request");
        assert_eq!(message_at(&answer, pointer), message);
    }
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn import_ids_outside_the_charset_are_400_and_touch_no_key() {
    let t = spawn_app().await;
    for id in [
        "a b",
        "a*",
        "*",
        "import:job:{x}",
        "../x",
        "a/b",
        "-x",
        ".x",
        ":x",
        "é",
        "a\r\nDEL x",
        "a\u{0}",
        "",
    ] {
        let answer = t
            .post_import(&json!({"importId": id, "leads": [lead()], "createdBy": "u"}).to_string())
            .await;
        assert_problem(&answer, 400, "invalid-request");
        assert!(!message_at(&answer, "/importId").is_empty());
    }
    for id in ["a%20b", "a*", "%7Bx%7D", "-x", "%C3%A9", "a%0D%0A", "%FF"] {
        let answer = t.get_status(id).await;
        assert_problem(&answer, 400, "invalid-request");
    }
    assert_nothing_left(&t).await;
}

/// The same limits through API Gateway's event and `lambda_http`, as deployed.
#[tokio::test]
async fn the_lambda_path_enforces_the_same_limits() {
    let t = spawn_app().await;
    let template = event_json("import-seed.json");
    let replay = |body: Vec<u8>, content_type: &str| {
        let mut event = template.clone();
        event["headers"]["content-type"] = json!(content_type);
        set_event_body(&mut event, body);
        let router = shared::api::import_router(t.app.clone());
        async move { replay_event(router, &event.to_string()).await }
    };
    let too_large = replay(
        vec![b' '; shared::api::MAX_BODY_BYTES + 1],
        "application/json",
    )
    .await;
    assert_eq!(
        (too_large.status, too_large.body["type"].as_str().unwrap()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "https://leads.example.com/problems/body-too-large"
        )
    );
    let not_utf8 = replay(vec![0xff, 0xfe, b'{', b'}'], "application/json").await;
    assert_eq!(not_utf8.status, 400);
    let plain = replay(b"fullName,email".to_vec(), "text/plain").await;
    assert_eq!(plain.status, 415);
    // CSV is read, and a header without a lead is the request's own problem.
    let csv = replay(b"fullName,email".to_vec(), "text/csv").await;
    assert_eq!(csv.status, 400);
    let deep = format!(
        r#"{{"leads":{}{},"createdBy":"u"}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let too_deep = replay(deep.into_bytes(), "application/json").await;
    assert_eq!(too_deep.status, 400);
    let bad_id = replay(
        json!({"importId": "a{b}", "leads": [lead()], "createdBy": "u"})
            .to_string()
            .into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(
        (
            bad_id.status,
            bad_id.body["errors"][0]["pointer"].as_str().unwrap()
        ),
        (StatusCode::BAD_REQUEST, "/importId")
    );
    assert_nothing_left(&t).await;
}
