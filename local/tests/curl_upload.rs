//! The issue's own words, literally: `curl -F file=@tests/fixtures/<an export>.csv
//! http://127.0.0.1:3000/leads/import` against the local run imports a CRM's export, and the
//! status shows created, updated, skipped and failed with the CSV's line numbers; the same
//! upload again with `onExisting=update` updates the leads it created.

mod support;

use local_servers::{PostgresServer, RedisServer, create_database};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Local, free_port, http};

const EXPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/crm-contacts-export.csv"
);

/// `curl -sS -F file=@EXPORT [-F field]… URL`: the answer's status and JSON body.
fn curl_upload(port: u16, fields: &[&str]) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "-w",
        "\n%{http_code}",
        "-F",
        &format!("file=@{EXPORT}"),
    ]);
    for field in fields {
        command.args(["-F", field]);
    }
    let output = command
        .arg(format!("http://127.0.0.1:{port}/leads/import"))
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap())
}

/// Polls the import's status until it is finished.
async fn finished(port: u16, import_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, doc) = http(
            port,
            "GET",
            &format!("/leads/import/{import_id}/status"),
            None,
        );
        assert_eq!(status, 200, "{doc}");
        if doc["status"] == "completed" || doc["status"] == "failed" {
            return doc;
        }
        assert!(Instant::now() < deadline, "not finished: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counts(doc: &Value) -> [u64; 4] {
    ["created", "updated", "skipped", "failed"].map(|k| doc["progress"][k].as_u64().unwrap())
}

fn failed_lines(doc: &Value) -> Vec<(u64, String)> {
    doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_crm_export_uploaded_with_curl_is_imported_then_updated() {
    let redis = RedisServer::start().expect("redis-server");
    let postgres = PostgresServer::start().expect("postgres");
    create_database(&postgres.url("postgres"), "leads")
        .await
        .unwrap();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("leads-local-curl-{port}.log"));
    // As `make run` starts it: the uploads name no createdBy.
    let local = Local::start(
        port,
        &redis.url(),
        &postgres.url("leads"),
        &log,
        &[("DEFAULT_CREATED_BY", "ada")],
    );

    let (status, accepted) = curl_upload(port, &["importId=crm-1"]);
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["mapping"]["attributes"],
        serde_json::json!(["Company Name", "Lifecycle Stage", "Notes"])
    );
    let doc = finished(port, "crm-1").await;
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(counts(&doc), [4, 0, 0, 2], "{doc}");
    let bad = vec![
        (6, "invalid_email".to_owned()),
        (7, "invalid_status".to_owned()),
    ];
    assert_eq!(
        failed_lines(&doc),
        bad,
        "the spreadsheet's own line numbers"
    );

    let (status, accepted) = curl_upload(port, &["importId=crm-2", "onExisting=update"]);
    assert_eq!(status, 202, "{accepted}");
    let doc = finished(port, "crm-2").await;
    assert_eq!(counts(&doc), [0, 4, 0, 2], "{doc}");
    assert_eq!(doc["onExisting"], "update");

    let (status, accepted) = curl_upload(port, &["importId=crm-3", "onExisting=skip"]);
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(counts(&finished(port, "crm-3").await), [0, 0, 4, 2]);
    local.kill();
    let _ = std::fs::remove_file(&log);
}
