//! What goes on the wire for each way of signing in, seen by a real HTTP server that records
//! the requests: a bearer token, and SigV4 with credentials from aws-config's default chain
//! (here its environment provider). The signature's bytes are checked in `src/auth.rs`
//! against AWS's test suite and botocore.

use axum::extract::Request;
use std::sync::{Arc, Mutex};

/// A server that answers every request with a finished status document and keeps its
/// method, URI and headers.
async fn recorder() -> (String, Arc<Mutex<Vec<(String, http::HeaderMap)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let router = axum::Router::new().fallback(move |request: Request| {
        let kept = kept.clone();
        async move {
            kept.lock()
                .unwrap()
                .push((format!("{} {}", request.method(), request.uri()), request.headers().clone()));
            axum::Json(serde_json::json!({
                "importId": "abc-p0001", "status": "completed",
                "progress": {"total": 1, "processed": 1, "successful": 1, "failed": 0, "errors": []},
                "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z"
            }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/prod/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

fn leads(url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_leads"));
    command
        .args(["--url", url])
        .args(args)
        .env_remove("LEADS_TOKEN")
        .env_remove("LEADS_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_sent_as_a_bearer_and_never_printed() {
    let (url, seen) = recorder().await;
    let out = leads(&url, &["status", "abc-p0001"])
        .env("LEADS_TOKEN", "eyJ.secret.token")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "GET /prod/leads/import/abc-p0001/status");
    assert_eq!(seen[0].1["authorization"], "Bearer eyJ.secret.token");
    let printed = [out.stdout, out.stderr].concat();
    assert!(!String::from_utf8_lossy(&printed).contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_signs_with_the_callers_aws_credentials_for_execute_api() {
    let (url, seen) = recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leads.csv");
    std::fs::write(&file, "email\nann@example.com\n").unwrap();
    let out = leads(
        &url,
        &[
            "--sigv4",
            "--region",
            "eu-west-1",
            "import",
            file.to_str().unwrap(),
        ],
    )
    .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    .env(
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    )
    .env_remove("USER")
    .output()
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The recorder answers 200 with a finished document: the part counts as resumed.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let seen = seen.lock().unwrap();
    let (request, headers) = &seen[0];
    assert!(
        request.starts_with("POST /prod/leads/import?importId="),
        "{request}"
    );
    assert!(
        !request.contains("createdBy"),
        "behind IAM the caller is the creator: {request}"
    );
    let authorization = headers["authorization"].to_str().unwrap();
    let date = headers["x-amz-date"].to_str().unwrap();
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=",
            &date[..8]
        )),
        "{authorization}"
    );
    assert!(
        !String::from_utf8_lossy(&[out.stdout.clone(), out.stderr.clone()].concat())
            .contains("EXAMPLEKEY")
    );
}
