//! A Postgres of the test's own that checks passwords (as RDS does), and apps that sign in to
//! it as a login role of their own through a credential source.

use super::app::{TestApp, spawn_app_on, test_app_on_database};
use super::servers::servers;
use local_servers::{PostgresServer, create_login_role};
use shared::app::App;
use shared::config::Config;
use shared::postgres::CredentialSource;
use std::sync::Arc;

/// A Postgres that checks every role's password but `postgres`'s, on the test's thread (it
/// stops when the test ends), and a test app on it: its database migrated by `postgres` (the
/// tables' owner, as `make migrate` is), the shared Redis, and `t.db` signed in as `postgres`
/// for the test's own queries.
pub async fn spawn_app_checking_passwords(overrides: &[(&str, &str)]) -> (PostgresServer, TestApp) {
    let server = PostgresServer::start_password_auth().expect("postgres with password auth");
    let t = spawn_app_on(&servers().redis, &server.url("postgres"), overrides).await;
    (server, t)
}

/// A test app on `admin_db_url`, a database of a server of the test's own that exists already
/// (not migrated here), with the shared Redis.
pub async fn test_app_on_own_database(admin_db_url: &str) -> TestApp {
    test_app_on_database(&servers().redis, admin_db_url, &[]).await
}

impl TestApp {
    /// This test's database as `user`, without a password.
    pub fn database_url_as(&self, user: &str) -> String {
        self.database_url
            .replacen("postgres://postgres@", &format!("postgres://{user}@"), 1)
    }

    /// Makes login role `name` with `password`, a member of the migrations' `leads_runtime`
    /// (allowed what the functions are allowed), as an operator does for the functions' user.
    pub async fn create_runtime_login(&self, name: &str, password: &str) {
        create_login_role(&self.database_url, name, password)
            .await
            .expect("create a login role");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "GRANT leads_runtime TO {name}"
        )))
        .execute(&self.db)
        .await
        .expect("grant the runtime role");
    }

    /// An app configured like this one (plus `overrides`) that signs in as `user` with what
    /// `credentials` answers at the time.
    pub fn app_signing_in_as(
        &self,
        user: &str,
        credentials: Arc<dyn CredentialSource>,
        overrides: &[(&str, &str)],
    ) -> App {
        let url = self.database_url_as(user);
        let mut pairs = vec![("DATABASE_URL", url.as_str())];
        pairs.extend_from_slice(overrides);
        let vars = self.env(&pairs);
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        App::with_credentials(config, credentials).expect("an app with a credential source")
    }
}
