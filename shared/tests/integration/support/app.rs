//! A fresh app per test: its own database and Redis key prefix, on the shared servers or on
//! servers the test started itself (a Redis Cluster among them).

use super::servers::servers;
use local_servers::create_database;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use shared::app::App;
use shared::config::Config;
use sqlx::PgPool;
use std::collections::HashMap;

pub struct TestApp {
    pub app: App,
    pub db: PgPool,
    /// The test's own connection, for reading back what the app wrote.
    pub redis: TestRedis,
    pub database_url: String,
    /// `REDIS_URL`: with `cluster`, the nodes' URLs, comma-separated.
    pub redis_url: String,
    pub cluster: bool,
    pub prefix: String,
}

/// The test's own Redis connection: to the one server, or to a cluster (routing each command
/// to its key's node, as the app's connection does).
#[derive(Clone)]
pub enum TestRedis {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl TestRedis {
    pub async fn connect(redis_url: &str, cluster: bool) -> Self {
        if cluster {
            let nodes: Vec<&str> = redis_url.split(',').collect();
            TestRedis::Cluster(
                redis::cluster::ClusterClient::new(nodes)
                    .unwrap()
                    .get_async_connection()
                    .await
                    .unwrap(),
            )
        } else {
            TestRedis::Single(
                redis::Client::open(redis_url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            )
        }
    }
}

impl ConnectionLike for TestRedis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            TestRedis::Single(c) => c.req_packed_command(cmd),
            TestRedis::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            TestRedis::Single(c) => c.req_packed_commands(pipeline, offset, count),
            TestRedis::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// A fresh database and key prefix, migrations applied, with the documented defaults unless
/// `overrides` (environment-style pairs) says otherwise.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let urls = servers();
    spawn_app_on(&urls.redis, &urls.postgres_admin, overrides).await
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app_with`], on servers the test started itself (a private Redis and Postgres
/// it may restart, or a Redis Cluster: `redis_url` then lists its nodes, comma-separated, and
/// `overrides` sets `REDIS_CLUSTER=true`): `postgres_admin` is a URL of the Postgres
/// cluster's `postgres` database. The key prefix is the test's own (a hash tag in cluster
/// mode) unless `overrides` sets `REDIS_KEY_PREFIX`.
pub async fn spawn_app_on(
    redis_url: &str,
    postgres_admin: &str,
    overrides: &[(&str, &str)],
) -> TestApp {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    create_database(postgres_admin, &name)
        .await
        .expect("create test database");
    // The same URL (query included: sslmode, sslrootcert) naming the new database.
    let (server, query) = postgres_admin
        .split_once('?')
        .map_or((postgres_admin, None), |(s, q)| (s, Some(q)));
    let database_url = format!(
        "{}/{name}{}",
        server.rsplit_once('/').unwrap().0,
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let t = test_app_on_database(redis_url, &database_url, overrides).await;
    t.app.store.migrate().await.expect("migrations");
    t
}

/// A test app on database `database_url`, which exists already (and is not migrated here),
/// with a fresh key prefix on `redis_url` (a hash tag of its own in cluster mode, unless
/// `overrides` sets `REDIS_KEY_PREFIX`).
pub async fn test_app_on_database(
    redis_url: &str,
    database_url: &str,
    overrides: &[(&str, &str)],
) -> TestApp {
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let setting = |name: &str| overrides.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let cluster = setting("REDIS_CLUSTER").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let own_prefix = if cluster {
        format!("{{{name}}}:")
    } else {
        format!("{name}:")
    };
    let app = app_for(redis_url, database_url, &own_prefix, overrides);
    // What the app made of it (an override, or cluster mode's default for a blank one).
    let prefix = app.config.key_prefix.clone();
    TestApp {
        db: app.store.pool().clone(),
        app,
        redis: TestRedis::connect(redis_url, cluster).await,
        database_url: database_url.to_owned(),
        redis_url: redis_url.to_owned(),
        cluster,
        prefix,
    }
}

/// An app on the given servers and key prefix, with the test defaults plus `overrides`.
pub fn app_for(
    redis_url: &str,
    database_url: &str,
    prefix: &str,
    overrides: &[(&str, &str)],
) -> App {
    let vars = test_env(redis_url, database_url, prefix, overrides);
    App::new(Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")).expect("app")
}

/// The environment of a test app: its servers and key prefix, no blocking read (a drain that
/// finds nothing returns at once), then `overrides`.
fn test_env(
    redis_url: &str,
    database_url: &str,
    prefix: &str,
    overrides: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("REDIS_URL".into(), redis_url.to_owned()),
        ("DATABASE_URL".into(), database_url.to_owned()),
        ("REDIS_KEY_PREFIX".into(), prefix.to_owned()),
        ("BLOCK_TIMEOUT".into(), "0".into()),
    ]);
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

impl TestApp {
    /// The environment this app was configured from, with `overrides`: for building an App
    /// another way (`App::from_lookup`).
    pub fn env(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars = test_env(&self.redis_url, &self.database_url, &self.prefix, &[]);
        if self.cluster {
            vars.insert("REDIS_CLUSTER".into(), "true".into());
        }
        for (k, v) in overrides {
            vars.insert(k.to_string(), v.to_string());
        }
        vars
    }

    /// Another execution environment on the same database and stream (say, a second drain
    /// with its own `CONSUMER_NAME`), configured by `overrides`.
    pub fn sibling(&self, overrides: &[(&str, &str)]) -> App {
        let vars = self.env(overrides);
        App::new(Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")).expect("app")
    }

    /// The same app, but its Postgres is unreachable (nothing listens on its port): its
    /// test connections and Redis stay.
    pub fn with_postgres_down(self) -> TestApp {
        TestApp {
            app: app_for(
                &self.redis_url,
                "postgres://postgres@127.0.0.1:1/gone",
                &self.prefix,
                &[],
            ),
            ..self
        }
    }

    /// A fresh connection for the test's own commands (after a Redis restart).
    pub async fn reconnect_redis(&mut self) {
        self.redis = TestRedis::connect(&self.redis_url, self.cluster).await;
    }
}
