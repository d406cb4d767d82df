//! Following an import (issue 15): the full errors report (JSON pages and CSV, with what each
//! lead carried), the bounded status document, progress figures, and the caller's list.

use crate::support::app::{TestApp, spawn_app};
use axum::body::Body;
use http::Request;
use serde_json::{Value, json};

/// Lead `i` of the big import: every 10th (index 9, 19, ...) has an invalid email; every
/// 10th from index 4 has an email the `leads` table holds already.
fn big_lead(i: usize) -> Value {
    let email = if i % 10 == 9 {
        format!("not-an-email-{i}")
    } else {
        format!("lead{i}@big.example.com")
    };
    json!({"fullName": format!("Lead {i}"), "email": email, "source": "event"})
}

/// The 10,000-lead import with its 2,000 failures, drained.
async fn big_import(t: &TestApp) {
    let taken: Vec<Value> = (0..10_000)
        .filter(|i| i % 10 == 4)
        .map(|i| json!({"fullName": "Earlier", "email": format!("lead{i}@big.example.com")}))
        .collect();
    t.post_accepted("earlier", &taken).await;
    t.drain_all().await;
    let leads: Vec<Value> = (0..10_000).map(big_lead).collect();
    t.post_accepted("big", &leads).await;
    t.drain_all().await;
}

#[tokio::test]
async fn the_report_holds_every_error_in_order_and_the_document_stays_small() {
    let t = spawn_app().await;
    big_import(&t).await;
    let expected: Vec<u64> = (0..10_000).filter(|i| i % 10 == 4 || i % 10 == 9).collect();
    assert_eq!(expected.len(), 2_000);

    // The document: the first 100 errors, the count, the report's URL; well under 64 KB.
    let (status, _, bytes) = t
        .call_raw(
            Request::get("/leads/import/big/status")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    t.assert_job_accounted("big", 10_000).await;
    let doc = t.get_status("big").await.body;
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["errorCount"], 2_000, "{}", doc["progress"]["errors"][0]);
    assert_eq!(doc["errorsUrl"], "/leads/import/big/errors");
    let shown: Vec<u64> = doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(shown, expected[..100]);
    assert!(
        doc["startedAt"].is_string() && doc["completedAt"].is_string(),
        "{doc}"
    );
    assert!(doc.get("etaSeconds").is_none(), "finished: {doc}");

    // Answered by Postgres (the cache gone), the document is the same, and as small.
    redis::cmd("DEL")
        .arg(t.key("import:job:big"))
        .arg(t.key("import:job:big:errors"))
        .query_async::<()>(&mut t.redis.clone())
        .await
        .unwrap();
    let (_, _, from_postgres) = t
        .call_raw(
            Request::get("/leads/import/big/status")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        from_postgres.len() < 64 * 1024,
        "{} bytes",
        from_postgres.len()
    );
    let from_postgres: Value = serde_json::from_slice(&from_postgres).unwrap();
    assert_eq!(from_postgres["progress"], doc["progress"]);
    assert_eq!(from_postgres["errorCount"], 2_000);

    // The JSON pages, 300 at a time: exactly the 2,000, in order.
    let report = t.error_report("big", 300).await;
    let indexes: Vec<u64> = report
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, expected);
    assert_eq!(report[0]["code"], "email_exists");
    assert_eq!(report[1]["code"], "invalid_email");

    // The CSV: the same 2,000 with what each lead carried.
    let (status, content_type, bytes) = t
        .call_raw(
            Request::get("/leads/import/big/errors")
                .header("accept", "text/csv")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut csv = csv::Reader::from_reader(&bytes[..]);
    assert_eq!(
        csv.headers().unwrap(),
        vec![
            "fullName", "email", "phone", "status", "source", "index", "line", "code", "error"
        ]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2_000);
    for (row, &i) in rows.iter().zip(&expected) {
        let lead = big_lead(i as usize);
        assert_eq!(&row[0], lead["fullName"].as_str().unwrap());
        assert_eq!(&row[1], lead["email"].as_str().unwrap());
        assert!(
            row[4].eq_ignore_ascii_case("event"),
            "as sent, or as stored (normalized)"
        );
        assert_eq!(row[5].parse::<u64>().unwrap(), i);
        let code = if i % 10 == 4 {
            "email_exists"
        } else {
            "invalid_email"
        };
        assert_eq!(&row[7], code);
    }
}

#[tokio::test]
async fn a_bad_cursor_or_limit_is_400_and_an_unknown_import_404() {
    let t = spawn_app().await;
    t.post_accepted("small", &[json!({"fullName": "A", "email": "nope"})])
        .await;
    for query in [
        "cursor=abc",
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=1&limit=2",
    ] {
        let answer = t.get(&format!("/leads/import/small/errors?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
    }
    let answer = t.get("/leads/import/unknown/errors").await;
    assert_eq!(answer.status, 404);
    let answer = t.get("/leads/import/small/errors?limit=1").await;
    assert_eq!(answer.body["errors"][0]["code"], "invalid_email");
    assert!(answer.body.get("nextCursor").is_none(), "{}", answer.body);
}

#[tokio::test]
async fn the_list_pages_a_callers_imports_newest_first_by_state() {
    let t = spawn_app().await;
    for id in ["first", "second", "third"] {
        t.post_accepted(
            id,
            &[json!({"fullName": "A", "email": format!("{id}@x.io")})],
        )
        .await;
    }
    let other = json!({"importId": "others", "createdBy": "u2", "leads": [{"fullName": "B", "email": "b@x.io"}]});
    assert_eq!(t.post_import(&other.to_string()).await.status, 202);
    t.drain_all().await;
    t.post_accepted(
        "fourth",
        &[json!({"fullName": "A", "email": "fourth@x.io"})],
    )
    .await;

    let page = t.get("/leads/imports?createdBy=u1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let ids = |page: &Value| -> Vec<String> {
        page["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["importId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page.body), ["fourth", "third", "second", "first"]);
    let first = &page.body["imports"][3];
    assert_eq!(first["status"], "completed");
    assert_eq!(first["progress"]["successful"], 1);
    assert!(first["progress"].get("errors").is_none(), "{first}");
    assert_eq!(page.body["imports"][0]["status"], "pending");

    let completed = t
        .get("/leads/imports?createdBy=u1&state=completed&limit=2")
        .await;
    assert_eq!(ids(&completed.body), ["third", "second"]);
    let cursor = completed.body["nextCursor"].as_str().unwrap();
    let rest = t
        .get(&format!(
            "/leads/imports?createdBy=u1&state=completed&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&rest.body), ["first"]);
    assert!(rest.body.get("nextCursor").is_none());

    for query in ["state=done", "cursor=x", "limit=0", "createdBy="] {
        let answer = t.get(&format!("/leads/imports?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
    }
}
