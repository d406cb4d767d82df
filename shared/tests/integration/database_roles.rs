//! The database roles of a deployment (docs/deploy.md): an owner role runs the migrations and
//! owns the tables; the functions log in as a member of `leads_runtime`, which the migrations
//! grant exactly what the functions use. On a Postgres that checks passwords, as RDS does.

use crate::support::app::TestApp;
use crate::support::password_postgres::test_app_on_own_database;
use local_servers::{PostgresServer, create_login_role};
use shared::postgres::{Credential, CredentialSource};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

/// A source that always answers `password`.
fn password(password: &'static str) -> Arc<dyn CredentialSource> {
    Arc::new(move || async move {
        Ok(Credential {
            username: None,
            password: password.to_owned(),
            renew_after: Duration::from_secs(3600),
            valid_for: None,
        })
    })
}

async fn admin_sql(admin_url: &str, statement: &str) {
    let mut conn = PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The SQLSTATE `statement` fails with, run as `url`'s role.
async fn refused_with(url: &str, statement: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let err = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .expect_err(statement);
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| format!("{err}"))
}

#[tokio::test]
async fn the_owner_migrates_and_the_runtime_role_imports_and_drains_but_changes_no_schema() {
    let postgres = PostgresServer::start_password_auth().expect("postgres with password auth");
    // As the runbook has the master user do: the owner and its database.
    let admin = postgres.url("postgres");
    create_login_role(&admin, "leads_owner", "owner-pw")
        .await
        .unwrap();
    admin_sql(&admin, "CREATE DATABASE leads_roles OWNER leads_owner").await;
    let admin_db = postgres.url("leads_roles");
    let t = test_app_on_own_database(&admin_db).await;

    // `make migrate` as the owner. Without CREATEROLE it cannot make leads_runtime: the
    // migration says what to do.
    let owner = t.app_signing_in_as("leads_owner", password("owner-pw"), &[]);
    let err = owner.store.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("role leads_runtime does not exist, and leads_owner may not create it"),
        "{err}"
    );
    admin_sql(&admin, "CREATE ROLE leads_runtime NOLOGIN").await;
    owner.store.migrate().await.expect("the owner migrates");
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(&t.db)
    .await
    .unwrap();
    assert_eq!(owners, ["leads_owner"]);

    // What leads_runtime may do: exactly the four verbs on the four tables.
    let grants: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, string_agg(privilege_type, ',' ORDER BY privilege_type)
         FROM information_schema.role_table_grants WHERE grantee = 'leads_runtime'
         GROUP BY table_name ORDER BY table_name",
    )
    .fetch_all(&t.db)
    .await
    .unwrap();
    let four = "DELETE,INSERT,SELECT,UPDATE".to_owned();
    assert_eq!(
        grants,
        [
            ("import_chunks".to_owned(), four.clone()),
            ("import_jobs".to_owned(), four.clone()),
            ("leads".to_owned(), four.clone()),
            ("webhook_deliveries".to_owned(), four)
        ]
    );

    // The functions' login: a member of leads_runtime, nothing else.
    t.create_runtime_login("lead_import", "runtime-pw").await;
    let app = t.app_signing_in_as("lead_import", password("runtime-pw"), &[]);
    let t = TestApp { app, ..t };
    let drain = t.drain_function().await;
    t.import_and_drain(&drain, "as-runtime", 60).await;
    // A retry of the same import is answered from the records it may read.
    assert_eq!(
        t.post_import(
            &serde_json::json!({"importId": "as-runtime", "createdBy": "u1",
                "leads": crate::support::leads::synthetic_leads(60, "as-runtime", 0, 0)})
            .to_string()
        )
        .await
        .status,
        200
    );

    // And no DDL: not a table of its own, not a change to the service's.
    let runtime =
        t.database_url_as("lead_import")
            .replacen("lead_import@", "lead_import:runtime-pw@", 1);
    for statement in [
        "CREATE TABLE mine (a int)",
        "CREATE SCHEMA mine",
        "DROP TABLE leads",
        "ALTER TABLE leads ADD COLUMN extra text",
        "TRUNCATE leads",
        "CREATE INDEX ON leads (phone)",
        "SELECT count(*) FROM _sqlx_migrations",
    ] {
        assert_eq!(
            refused_with(&runtime, statement).await,
            "42501",
            "{statement}"
        );
    }

    // RDS Proxy pins a session on session state: SQL-level PREPARE, SET, advisory locks.
    // The runtime's sessions hold none after an import and a drain (sqlx's own prepared
    // statements are protocol-level ones, `from_sql = false`, which RDS Proxy multiplexes).
    let pool = t.app.store.pool();
    let mut sessions = Vec::new();
    while let Some(conn) = pool.try_acquire() {
        sessions.push(conn);
    }
    assert!(!sessions.is_empty(), "the runtime's connections are pooled");
    for conn in &mut sessions {
        let (sql_prepared, protocol_prepared, set, advisory): (i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM pg_prepared_statements WHERE from_sql),
                        (SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql),
                        (SELECT count(*) FROM pg_settings WHERE source = 'session'),
                        (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
            )
            .persistent(false)
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!((sql_prepared, set, advisory), (0, 0, 0));
        assert!(protocol_prepared >= 1, "sqlx's statement cache at work");
    }
}
