//! Nothing leaks (issue 6 item 5): the logs of a whole import at `info` and above carry counts
//! and ids only — no email, phone or name — and no connection string or password appears in a
//! log line or a response, even when a dependency is down.

use crate::support::app::{TestApp, app_for, spawn_app, spawn_app_with};
use crate::support::log_capture::capture_logs;
use serde_json::json;

fn assert_absent(haystack: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        assert!(
            !haystack.to_lowercase().contains(&secret.to_lowercase()),
            "{what} contains {secret:?}:\n{haystack}"
        );
    }
}

#[tokio::test]
async fn an_import_logs_counts_and_ids_but_no_personal_data() {
    let t = spawn_app().await;
    let (logs, _guard) = capture_logs();
    let body = json!({
        "importId": "log-check",
        "createdBy": "u1",
        "leads": [
            {"fullName": "Grace Hopper", "email": "grace.hopper@navy.example", "phone": "+1 (202) 555-0143"},
            {"fullName": "Alan Turing", "email": "alan@bletchley.example", "phone": "+44 20 7946 0958"},
            {"fullName": "Ada Byron", "email": "not-an-address"},
            {"fullName": "Grace Again", "email": "GRACE.HOPPER@navy.example"},
        ]
    })
    .to_string();
    assert_eq!(t.post_import(&body).await.status, 202);
    t.drain_all().await;
    let doc = t.get_status("log-check").await.body;
    assert_eq!(doc["progress"]["successful"], 2);
    // Importing the same people again: "Email already exists" outcomes are logged as counts too.
    let again = body.replace("log-check", "log-check-2");
    assert_eq!(t.post_import(&again).await.status, 202);
    t.drain_all().await;

    let text = logs.text();
    assert!(
        text.contains("import accepted"),
        "the import is logged:\n{text}"
    );
    assert!(text.contains("log-check"), "with its id");
    assert_absent(
        &text,
        &[
            "grace",
            "hopper",
            "navy.example",
            "alan",
            "turing",
            "bletchley",
            "ada byron",
            "not-an-address",
            "+12025550143",
            "555-0143",
            "2079460958",
            "7946 0958",
        ],
        "the logs",
    );
    assert_absent(
        &text,
        &[&t.database_url, &t.redis_url, "postgres://", "redis://"],
        "the logs",
    );
}

#[tokio::test]
async fn a_dependency_outage_leaks_no_connection_string_or_password() {
    let (logs, _guard) = capture_logs();
    let body =
        r#"{"leads":[{"fullName":"Grace Hopper","email":"grace@navy.example"}],"createdBy":"u"}"#;
    // Redis down: accepted (Postgres holds it), and the failed enqueue is logged.
    let t = spawn_app_with(&[("REDIS_URL", "redis://default:s3cr3t-pw@127.0.0.1:1/0")]).await;
    let redis_down = t.post_import(body).await;
    assert_eq!(redis_down.status, 202);
    let status = t.get_status("anything").await;
    // Postgres down: refused.
    let pg_down = TestApp {
        app: app_for(
            &t.redis_url,
            "postgres://postgres:pg-s3cr3t@127.0.0.1:1/gone",
            &t.prefix,
            &[],
        ),
        ..t
    };
    let refused = pg_down.post_import(body).await;
    assert_eq!(refused.status, 503);
    let t = pg_down;
    let responses = format!("{} {} {}", redis_down.body, status.body, refused.body);
    let text = logs.text();
    assert!(text.contains("could not"), "the failure is logged:\n{text}");
    for (what, haystack) in [("the logs", &text), ("the responses", &responses)] {
        assert_absent(
            haystack,
            &[
                "s3cr3t-pw",
                "pg-s3cr3t",
                "redis://",
                "postgres://",
                &t.database_url,
                "grace",
                "navy.example",
            ],
            what,
        );
    }
}
