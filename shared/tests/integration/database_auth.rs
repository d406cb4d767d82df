//! `DATABASE_AUTH` as the functions see it: with `iam`, the Store signs an RDS auth token from
//! the role's credentials before its first connection opens; the pipeline works. (The token
//! itself is checked byte for byte against botocore in `db_auth`'s unit tests; the shared test
//! server trusts any password, so this proves the wiring, not the token. `credentials.rs`
//! proves the renewal against a server that checks passwords.)

use crate::support::app::{TestApp, spawn_app};
use serde_json::json;
use shared::app::{App, StartupError};
use std::collections::HashMap;

/// The test app's environment, with IAM database auth and an access key.
fn iam_vars(t: &TestApp) -> HashMap<String, String> {
    t.env(&[
        ("DATABASE_AUTH", "iam"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
    ])
}

#[tokio::test]
async fn iam_auth_signs_in_before_connecting() {
    let mut t = spawn_app().await;
    let vars = iam_vars(&t);
    t.app = App::from_lookup(|k| vars.get(k).cloned())
        .await
        .expect("an App with IAM database auth");
    let accepted = t
        .post_import(&json!({"importId":"iam","leads":[{"fullName":"A","email":"a@iam.example.com"}],"createdBy":"u"}).to_string())
        .await;
    assert_eq!(accepted.status, 202);
    t.drain_all().await;
    assert_eq!(
        t.assert_job_accounted("iam", 1).await["status"],
        "completed"
    );
}

#[tokio::test]
async fn iam_auth_without_credentials_fails_at_cold_start_with_a_clear_reason() {
    let t = spawn_app().await;
    let mut vars = iam_vars(&t);
    vars.remove("AWS_ACCESS_KEY_ID");
    let Err(err) = App::from_lookup(|k| vars.get(k).cloned()).await else {
        panic!("no credentials, no App")
    };
    assert!(matches!(err, StartupError::DatabaseAuth(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("AWS_ACCESS_KEY_ID"), "{text}");
    assert!(
        !text.contains("wJalrXUtnFEMI"),
        "the secret key never appears: {text}"
    );
}

#[tokio::test]
async fn an_unknown_mode_is_refused() {
    let t = spawn_app().await;
    let mut vars = iam_vars(&t);
    vars.insert("DATABASE_AUTH".into(), "kerberos".into());
    let Err(err) = App::from_lookup(|k| vars.get(k).cloned()).await else {
        panic!("unknown mode accepted")
    };
    assert_eq!(
        err.to_string(),
        "database auth: DATABASE_AUTH must be one of password, secret, iam, got \"kerberos\""
    );
}
