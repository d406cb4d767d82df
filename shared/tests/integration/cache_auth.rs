//! Signing in to the cache with credentials that change while the app runs: every new Redis
//! connection asks the credential source for the current ones, so a rotation (the password
//! of a local ACL user here; an ElastiCache IAM token, renewed every 10 minutes, on AWS) is
//! picked up by reconnections, and open connections sign in again with fresh ones. And
//! `REDIS_AUTH=iam` as the functions see it: TLS only, no password in `REDIS_URL`, every
//! connection signed in as the cache user. The app runs as a user with the template's access
//! string throughout, so that string is shown to allow everything the pipeline sends.

use crate::support::app::TestApp;
use crate::support::cache_acl::{RotatingPassword, acl_setuser};
use crate::support::leads::synthetic_leads;
use crate::support::private_servers::{spawn_app_on_redis, spawn_app_with_own_redis};
use crate::tls::loopback_identity;
use local_servers::RedisServer;
use redis::Value;
use shared::app::{App, StartupError};
use std::collections::HashMap;
use std::time::Duration;

const USER: &str = "lead-import";

/// Imports `n` leads as `import_id`, checks Redis took the job (not only Postgres), drains,
/// and checks it completed.
async fn import_and_drain(t: &TestApp, import_id: &str, n: usize) {
    t.post_accepted(import_id, &synthetic_leads(n, import_id, 0, 0))
        .await;
    let queued: bool =
        sqlx::query_scalar("SELECT queued_at IS NOT NULL FROM import_jobs WHERE import_id = $1")
            .bind(import_id)
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert!(
        queued,
        "{import_id} was queued in Redis when it was accepted"
    );
    t.drain_all().await;
    assert_eq!(
        t.assert_job_accounted(import_id, n as u64).await["status"],
        "completed"
    );
}

/// The failed sign-ins in the server's ACL LOG, as field maps (the log also holds commands
/// the user may not run: drain-fn's CONFIG GET, refused as ElastiCache refuses it).
async fn failed_sign_ins(t: &TestApp) -> Vec<HashMap<String, Value>> {
    let log: Vec<HashMap<String, Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    log.into_iter()
        .filter(|entry| entry.get("reason") == Some(&Value::BulkString(b"auth".to_vec())))
        .collect()
}

/// How many clients are signed in as `user`.
async fn clients_of(t: &TestApp, user: &str) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let field = format!(" user={user} ");
    list.lines()
        .filter(|client| client.contains(&field))
        .count()
}

/// The app's environment with `REDIS_AUTH=iam` on `redis_url`, and role credentials.
fn iam_env(t: &TestApp, redis_url: &str) -> HashMap<String, String> {
    t.env(&[
        ("REDIS_URL", redis_url),
        ("REDIS_AUTH", "iam"),
        ("REDIS_IAM_USER", USER),
        (
            "REDIS_IAM_CACHE_ARN",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:leads",
        ),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
    ])
}

async fn acl(t: &TestApp, args: &[&str]) {
    let _: Value = redis::cmd("ACL")
        .arg(args)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
}

#[tokio::test]
async fn new_connections_sign_in_with_the_current_password_after_a_rotation() {
    // A server of its own: the test rewrites its users and kills its clients.
    let (server, mut t) = spawn_app_with_own_redis(&[]).await;
    let _: () = acl_setuser(USER, "first", &t.prefix)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let password = RotatingPassword::new(USER, "first", Duration::from_millis(300));
    t.sign_in_with(password.clone(), &[]);
    import_and_drain(&t, "before-rotation", 120).await;
    assert!(
        clients_of(&t, USER).await >= 1,
        "the app signed in as {USER}"
    );
    let asked_before = password.times_asked();

    // Rotation: the server takes only the new password, and the source answers it.
    acl(&t, &["SETUSER", USER, "resetpass", ">second"]).await;
    password.set("second");
    let old = format!(
        "redis://{USER}:first@{}",
        server.url().trim_start_matches("redis://")
    );
    let refused = redis::Client::open(old)
        .unwrap()
        .get_multiplexed_async_connection()
        .await;
    assert!(refused.is_err(), "the old password is refused");

    // The app's connections die (a failover, a Lambda thaw): the reconnections sign in with
    // the current password, at once, with no failed attempt.
    tokio::time::sleep(Duration::from_millis(400)).await;
    acl(&t, &["LOG", "RESET"]).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(USER)
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    assert!(killed >= 1, "the app had connections to kill");
    import_and_drain(&t, "after-rotation", 120).await;
    assert!(clients_of(&t, USER).await >= 1);
    assert!(password.times_asked() > asked_before);
    let failures = failed_sign_ins(&t).await;
    assert!(failures.is_empty(), "no sign-in failed: {failures:?}");

    // Open connections sign in again with the source's credentials every `renew_every`
    // (which, with IAM tokens, also lifts ElastiCache's 12-hour limit on a connection): a
    // source answering a wrong password shows up as failed AUTHs in the ACL log...
    password.set("not-the-password");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let failures = failed_sign_ins(&t).await;
    assert!(
        failures.iter().any(|entry| {
            entry.get("username") == Some(&Value::BulkString(USER.as_bytes().to_vec()))
        }),
        "open connections re-authenticate from the source: {failures:?}"
    );
    // ...which leaves them signed in as they were: the app keeps working.
    password.set("second");
    import_and_drain(&t, "after-a-failed-renewal", 60).await;
}

#[tokio::test]
async fn iam_auth_signs_in_as_the_cache_user_over_tls_only() {
    let identity = loopback_identity();
    let server = RedisServer::start_tls(&identity).expect("redis-server with TLS");
    // `#insecure`: the test's self-signed certificate (see tls.rs).
    let url = format!("{}/#insecure", server.url());
    let mut t = spawn_app_on_redis(&url, &[]).await;
    // The test server cannot check a SigV4 token (ElastiCache does: the signer is checked
    // against botocore in cache_auth's unit tests), so the user takes any password: what is
    // shown here is the wiring, that every connection signs in as the user, over TLS.
    let mut setuser = acl_setuser(USER, "unused", &t.prefix);
    setuser.arg("nopass");
    let _: () = setuser.query_async(&mut t.redis.clone()).await.unwrap();
    let vars = iam_env(&t, &url);
    t.app = App::from_lookup(|k| vars.get(k).cloned())
        .await
        .expect("an App with ElastiCache IAM auth");
    import_and_drain(&t, "iam-signed", 120).await;
    assert!(
        clients_of(&t, USER).await >= 1,
        "the app's connections are signed in as {USER}"
    );

    // Refused at startup, saying why, without quoting the URL: no TLS, or a password in it.
    for (redis_url, expected) in [
        (
            server.url().replace("rediss://", "redis://"),
            "cache auth: REDIS_AUTH=iam needs TLS: REDIS_URL must be rediss:// (ElastiCache refuses IAM auth in the clear)",
        ),
        (
            url.replace("rediss://", "rediss://someone:hunter2@"),
            "cache auth: REDIS_AUTH=iam signs in with a token: REDIS_URL must carry no user or password",
        ),
    ] {
        let vars = iam_env(&t, &redis_url);
        let Err(err) = App::from_lookup(|k| vars.get(k).cloned()).await else {
            panic!("{redis_url} accepted")
        };
        assert!(matches!(err, StartupError::CacheAuth(_)), "{err}");
        assert_eq!(err.to_string(), expected);
    }
    // No credentials to sign with: refused at cold start, with the reason.
    let mut vars = iam_env(&t, &url);
    vars.remove("AWS_ACCESS_KEY_ID");
    let Err(err) = App::from_lookup(|k| vars.get(k).cloned()).await else {
        panic!("no credentials, no App")
    };
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}
