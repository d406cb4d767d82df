//! Credentials are fetched when a connection opens, for every function: on a Postgres that
//! checks passwords, the password of the functions' login role changes under a warm drain-fn
//! (`ALTER ROLE … PASSWORD`, as a rotation does) while the credential source starts answering
//! the new one. Connections live 200 ms here, so the pool must open new ones after the change;
//! the first is refused, the Store fetches the credential again and retries, and the drain
//! goes on storing leads.
//!
//! Twice: through a source the test controls (how an RDS IAM token renewal looks to the Store;
//! Postgres cannot check a real token), and through `DATABASE_AUTH=secret` itself, its
//! `GetSecretValue` call pointed at a fake Secrets Manager (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).

use crate::support::app::TestApp;
use crate::support::leads::synthetic_leads;
use crate::support::log_capture::capture_logs;
use crate::support::password_postgres::spawn_app_checking_passwords;
use axum::http::{HeaderMap, StatusCode};
use shared::app::App;
use shared::postgres::Credential;
use sqlx::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections are replaced this often, so that new ones must sign in after the change.
const SHORT_LIFETIME: (&str, &str) = ("DATABASE_MAX_LIFETIME_MS", "200");

/// Long enough for every pooled connection to outlive `SHORT_LIFETIME`, and for the
/// credential fetched before the change to be older than the Store's one-second floor between
/// fetches.
const AFTER_THE_CHANGE: Duration = Duration::from_millis(1200);

/// Changes `role`'s password, as a rotation (or a new IAM token) does.
async fn change_password(t: &TestApp, role: &str, password: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE {role} PASSWORD '{password}'"
    )))
    .execute(&t.db)
    .await
    .unwrap();
}

/// The server really refuses `password` for `role` now (with `invalid_password`).
async fn assert_refused(t: &TestApp, role: &str, password: &str) {
    let url =
        t.database_url_as(role)
            .replacen(&format!("{role}@"), &format!("{role}:{password}@"), 1);
    let refused = sqlx::PgConnection::connect(&url)
        .await
        .expect_err("the old password is refused");
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("28P01"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_password_changed_under_a_warm_drain_is_fetched_again_and_the_drain_keeps_storing() {
    let (_postgres, t) = spawn_app_checking_passwords(&[]).await;
    t.create_runtime_login("importer_token", "token-1").await;
    let current = Arc::new(Mutex::new("token-1".to_owned()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = {
        let (current, fetches) = (current.clone(), fetches.clone());
        move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            let password = current.lock().unwrap().clone();
            // Not due for an hour: only a refusal makes the Store ask again.
            async move {
                Ok(Credential {
                    username: None,
                    password,
                    renew_after: Duration::from_secs(3600),
                    valid_for: None,
                })
            }
        }
    };
    let app = t.app_signing_in_as("importer_token", Arc::new(source), &[SHORT_LIFETIME]);
    let t = TestApp { app, ..t };
    let drain = t.drain_function().await;

    t.import_and_drain(&drain, "before-change", 40).await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "fetched once, then cached"
    );

    change_password(&t, "importer_token", "token-2").await;
    *current.lock().unwrap() = "token-2".to_owned();
    assert_refused(&t, "importer_token", "token-1").await;
    tokio::time::sleep(AFTER_THE_CHANGE).await;

    // The same warm drain-fn (and import-fn and status-fn) go on: their next connection is
    // refused, the Store fetches the new password and signs in again.
    t.import_and_drain(&drain, "after-change", 40).await;
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "fetched once more, after the refusal"
    );

    // A source that keeps answering the old password: the drain fails (and nothing is lost:
    // the entries stay pending), which is what the renewal above prevents.
    t.post_accepted("stuck", &synthetic_leads(5, "stuck", 0, 0))
        .await;
    let stuck_source = || async {
        Ok(Credential {
            username: None,
            password: "token-1".into(),
            renew_after: Duration::from_secs(3600),
            valid_for: None,
        })
    };
    let stuck = t.app_signing_in_as("importer_token", Arc::new(stuck_source), &[SHORT_LIFETIME]);
    let failed = TestApp { app: stuck, ..t }
        .try_drain_once()
        .await
        .expect_err("the old password no longer signs in");
    let text = format!("{failed:?}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        !text.contains("token-1"),
        "the password never shows: {text}"
    );
}

/// A fake Secrets Manager: answers every signed `GetSecretValue` with the secret `current`
/// holds, and counts the calls. Returns its endpoint.
pub async fn fake_secrets_manager(current: Arc<Mutex<String>>, calls: Arc<AtomicUsize>) -> String {
    let answer = move |headers: HeaderMap, body: String| {
        let (current, calls) = (current.clone(), calls.clone());
        async move {
            let header = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
            };
            let signed = header("authorization")
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && header("x-amz-target") == "secretsmanager.GetSecretValue"
                && body.contains("leads/db");
            if !signed {
                return (
                    StatusCode::BAD_REQUEST,
                    "{\"__type\":\"InvalidRequestException\"}".to_owned(),
                );
            }
            calls.fetch_add(1, Ordering::SeqCst);
            let secret = current.lock().unwrap().clone();
            (
                StatusCode::OK,
                serde_json::json!({"Name": "leads/db", "SecretString": secret}).to_string(),
            )
        }
    };
    let router = axum::Router::new().route("/", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    endpoint
}

fn rds_secret(username: &str, password: &str) -> String {
    serde_json::json!({"engine": "postgres", "username": username, "password": password, "port": 5432})
        .to_string()
}

#[tokio::test]
async fn a_rotated_secret_is_read_again_at_once_and_the_drain_keeps_storing() {
    let (logs, _guard) = capture_logs();
    let (_postgres, t) = spawn_app_checking_passwords(&[]).await;
    t.create_runtime_login("importer_secret", "Secret-One")
        .await;
    let current = Arc::new(Mutex::new(rds_secret("importer_secret", "Secret-One")));
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = fake_secrets_manager(current.clone(), calls.clone()).await;

    // DATABASE_AUTH=secret as the functions read it; the URL's user is replaced by the
    // secret's, and the URL carries no password.
    let url = t.database_url_as("whoever");
    let vars = t.env(&[
        ("DATABASE_URL", url.as_str()),
        ("DATABASE_AUTH", "secret"),
        (
            "DATABASE_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:leads/db-AbCdEf",
        ),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str()),
        SHORT_LIFETIME,
    ]);
    let app = App::from_lookup(|k| vars.get(k).cloned())
        .await
        .expect("an app with DATABASE_AUTH=secret");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing read at cold start"
    );
    let t = TestApp { app, ..t };
    let drain = t.drain_function().await;

    t.import_and_drain(&drain, "before-rotation", 40).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "read once, then cached");

    // The rotation: the database's password changes, then the secret.
    change_password(&t, "importer_secret", "Secret-Two").await;
    *current.lock().unwrap() = rds_secret("importer_secret", "Secret-Two");
    assert_refused(&t, "importer_secret", "Secret-One").await;
    tokio::time::sleep(AFTER_THE_CHANGE).await;

    t.import_and_drain(&drain, "after-rotation", 40).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "read again at once after the refusal, well before its five minutes"
    );
    let logs = logs.text();
    assert!(
        logs.contains("the database refused the credentials; signing in again with new ones"),
        "{logs}"
    );
    for secret in ["Secret-One", "Secret-Two", "wJalrXUtnFEMI"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test]
async fn without_credentials_an_import_is_503_and_says_nothing_of_why() {
    let (_postgres, t) = spawn_app_checking_passwords(&[]).await;
    let failing = || async {
        Err(shared::aws::db_auth::DbAuthError::SecretsManager(
            "GetSecretValue answered 400 Bad Request: AccessDeniedException".into(),
        ))
    };
    let app = t.app_signing_in_as("nobody", Arc::new(failing), &[]);
    let t = TestApp { app, ..t };
    let answer = t
        .post_import(
            &serde_json::json!({"importId": "no-creds", "createdBy": "u1", "leads": synthetic_leads(1, "nc", 0, 0)})
                .to_string(),
        )
        .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(!answer.body.to_string().contains("AccessDenied"));
}
