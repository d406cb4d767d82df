//! TLS to both servers, as the template deploys them (ElastiCache with in-transit encryption,
//! `rediss://`; Postgres with `sslmode`): an import travels the whole pipeline over TLS, and a
//! certificate the client cannot verify is refused rather than trusted.

use crate::support::app::{TestApp, app_for, spawn_app_on};
use crate::support::leads::synthetic_leads;
use local_servers::{PostgresServer, RedisServer, TlsIdentity};
use serde_json::json;

/// A self-signed certificate for the loopback address the servers listen on.
pub fn loopback_identity() -> TlsIdentity {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
    TlsIdentity {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

#[tokio::test]
async fn an_import_is_queued_stored_and_reported_over_tls() {
    let identity = loopback_identity();
    // Started on this test's thread: they stop when it ends.
    let redis = RedisServer::start_tls(&identity).expect("redis-server with TLS");
    let postgres = PostgresServer::start_tls(&identity).expect("postgres with ssl=on");
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &identity.cert_pem).unwrap();

    // Postgres: the certificate is verified against our CA, host name included. Redis: the
    // server's only port is TLS; `#insecure` because redis-rs trusts only the public roots
    // (ElastiCache's certificates chain to one), which this self-signed one is not.
    let verified_admin = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        postgres.url("postgres"),
        ca.path().display()
    );
    let redis_url = format!("{}/#insecure", redis.url());
    assert!(redis_url.starts_with("rediss://"));
    let t = spawn_app_on(&redis_url, &verified_admin, &[]).await;

    let answer = t
        .post_import(
            &json!({"importId":"over-tls","createdBy":"u1","leads":synthetic_leads(120, "tls", 0, 0)})
                .to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let report = t.drain_all().await;
    assert_eq!(report.leads_stored, 120);
    let doc = t.assert_job_accounted("over-tls", 120).await;
    assert_eq!(doc["status"], "completed");

    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert!(encrypted, "the pool's connections are encrypted");

    // Without `#insecure`, redis-rs verifies the certificate and refuses this one: nothing is
    // sent in the clear; the import is durable in Postgres (202) and not queued.
    let strict = TestApp {
        app: app_for(&redis.url(), &t.database_url, "strict:", &[]),
        ..t
    };
    let answer = strict
        .post_import(
            &json!({"importId":"refused","createdBy":"u1","leads":synthetic_leads(1, "strict", 0, 0)})
                .to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let queued: bool = sqlx::query_scalar(
        "SELECT queued_at IS NOT NULL FROM import_jobs WHERE import_id = 'refused'",
    )
    .fetch_one(&strict.db)
    .await
    .unwrap();
    assert!(
        !queued,
        "Redis with an unverifiable certificate was never written to"
    );

    // Postgres with verify-full but no CA for this certificate: no connection.
    let unverifiable = format!("{}?sslmode=verify-full", postgres.url("postgres"));
    let connected = sqlx::PgPool::connect(&unverifiable).await;
    assert!(connected.is_err(), "an unknown certificate is not trusted");
}
