//! Test harness: real Redis and Postgres servers, and a fresh app per test.
//!
//! One private `redis-server` and one Postgres cluster are started per test binary (or reused
//! when `TEST_REDIS_URL` and `TEST_DATABASE_URL` name running ones). Each test gets its own
//! database and its own Redis key prefix, so tests run in parallel without seeing each other.
#![allow(dead_code)] // each test binary uses a different part of the harness

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use redis::AsyncCommands;
use serde_json::Value;
use shared::app::App;
use shared::config::Config;
use shared::drain::DrainReport;
use shared::lambda::DrainFunction;
use shared::local_servers::{PostgresServer, RedisServer, create_database};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tower::ServiceExt;

pub struct ServerUrls {
    pub redis: String,
    /// A URL of the cluster's `postgres` database, for creating per-test databases.
    pub postgres_admin: String,
}

static URLS: OnceLock<ServerUrls> = OnceLock::new();
static SERVERS: Mutex<Option<(RedisServer, PostgresServer)>> = Mutex::new(None);

extern "C" fn stop_servers() {
    if let Ok(mut servers) = SERVERS.lock() {
        servers.take();
    }
}

pub fn servers() -> &'static ServerUrls {
    URLS.get_or_init(|| {
        if let (Ok(redis), Ok(postgres_admin)) = (
            std::env::var("TEST_REDIS_URL"),
            std::env::var("TEST_DATABASE_URL"),
        ) {
            return ServerUrls {
                redis,
                postgres_admin,
            };
        }
        // Started from a thread that lives as long as the process: the servers are tied to it
        // (PR_SET_PDEATHSIG), and a test's own thread ends with the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let redis = RedisServer::start().expect("start redis-server");
            let postgres = PostgresServer::start().expect("start postgres");
            let urls = ServerUrls {
                redis: redis.url(),
                postgres_admin: postgres.url("postgres"),
            };
            *SERVERS.lock().unwrap() = Some((redis, postgres));
            unsafe { libc::atexit(stop_servers) };
            tx.send(urls).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("test servers started")
    })
}

pub struct TestApp {
    pub app: App,
    pub db: PgPool,
    pub redis: redis::aio::MultiplexedConnection,
    pub database_url: String,
    pub redis_url: String,
    pub prefix: String,
}

/// A fresh database and key prefix, migrations applied, with the documented defaults unless
/// `overrides` (environment-style pairs) says otherwise.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let urls = servers();
    spawn_app_on(&urls.redis, &urls.postgres_admin, overrides).await
}

/// Like [`spawn_app_with`], on a Redis server of the test's own (the shared Postgres cluster
/// still holds its database): for a test that stops, pauses or counts the clients of its Redis,
/// which would disturb the tests beside it on the shared one. The server stops when dropped.
pub async fn spawn_app_with_own_redis(overrides: &[(&str, &str)]) -> (RedisServer, TestApp) {
    let redis = RedisServer::start().expect("start a redis-server of the test's own");
    let t = spawn_app_on(&redis.url(), &servers().postgres_admin, overrides).await;
    (redis, t)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A response as a test sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
}

impl TestApp {
    pub async fn post_import(&self, body: &str) -> Answer {
        self.post_import_as("application/json", body.as_bytes().to_vec())
            .await
    }

    /// Posts `leads` as import `import_id` (created by `u1`) and asserts it was accepted.
    pub async fn post_accepted(&self, import_id: &str, leads: &[Value]) {
        let answer = self
            .post_import(
                &serde_json::json!({"importId": import_id, "leads": leads, "createdBy": "u1"})
                    .to_string(),
            )
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }

    pub async fn post_import_as(&self, content_type: &str, body: Vec<u8>) -> Answer {
        let request = Request::post("/leads/import")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        self.call(request).await
    }

    pub async fn get_status(&self, import_id: &str) -> Answer {
        self.call(
            Request::get(format!("/leads/import/{import_id}/status"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = shared::http::router(self.app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(http::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(http::header::LOCATION);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Answer {
            status,
            content_type,
            location,
            body,
        }
    }

    /// Runs drain-fn's handler once with the sample scheduled event, as Lambda would.
    pub async fn drain_once(&self) -> DrainReport {
        self.drain_function()
            .await
            .handle(scheduled_event(30_000))
            .await
            .expect("drain invocation")
    }

    pub async fn drain_function(&self) -> DrainFunction {
        DrainFunction::new(self.app.clone()).await
    }

    /// Drains until the stream has nothing new or pending left.
    pub async fn drain_all(&self) -> DrainReport {
        let mut total = DrainReport::default();
        for _ in 0..100 {
            let r = self.drain_once().await;
            total.entries += r.entries;
            total.leads_stored += r.leads_stored;
            total.leads_failed += r.leads_failed;
            total.dead_lettered += r.dead_lettered;
            if r.entries == 0 {
                return total;
            }
        }
        panic!("the drain did not finish in 100 invocations");
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub async fn xlen(&self) -> u64 {
        self.redis
            .clone()
            .xlen(self.key("lead:imports"))
            .await
            .unwrap()
    }

    pub async fn pending_count(&self) -> u64 {
        let reply: Value = redis_value_json(
            redis::cmd("XPENDING")
                .arg(self.key("lead:imports"))
                .arg("lead-import-processors")
                .query_async::<redis::Value>(&mut self.redis.clone())
                .await
                .unwrap(),
        );
        reply[0].as_u64().unwrap_or(0)
    }

    /// XINFO GROUPS of the stream: one map of fields per consumer group.
    pub async fn stream_groups(&self) -> Vec<HashMap<String, redis::Value>> {
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.key("lead:imports"))
            .query_async(&mut self.redis.clone())
            .await
            .unwrap()
    }

    /// Entries the group has read and acknowledged: read (XINFO GROUPS `entries-read`) less
    /// those still pending.
    pub async fn acked_count(&self) -> u64 {
        let groups = self.stream_groups().await;
        let read: u64 = redis::from_redis_value_ref(&groups[0]["entries-read"]).unwrap();
        read - self.pending_count().await
    }

    pub async fn lead_count(&self, import_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM leads WHERE import_id = $1")
            .bind(import_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// SPEC §6's invariant for one finished job: rows = successful, processed = total,
    /// every lead either stored or listed once with a reason, nothing pending.
    pub async fn assert_job_accounted(&self, import_id: &str, total: u64) -> Value {
        let doc = self.get_status(import_id).await.body;
        let progress = &doc["progress"];
        assert_eq!(progress["total"], total, "{doc}");
        assert_eq!(progress["processed"], total, "every lead counted: {doc}");
        assert_eq!(
            progress["successful"].as_i64().unwrap(),
            self.lead_count(import_id).await,
            "rows = successful"
        );
        let errors = progress["errors"].as_array().unwrap();
        assert_eq!(
            errors.len() as u64,
            progress["failed"].as_u64().unwrap(),
            "one reason per failed lead"
        );
        let mut indexes: Vec<u64> = errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let sorted = indexes.clone();
        indexes.dedup();
        assert_eq!(indexes, sorted, "errors sorted by index, none twice");
        let duplicates: i64 =
            sqlx::query_scalar("SELECT count(*) - count(DISTINCT email) FROM leads")
                .fetch_one(&self.db)
                .await
                .unwrap();
        assert_eq!(duplicates, 0, "no email stored twice");
        assert_eq!(self.pending_count().await, 0, "nothing left pending");
        doc
    }
}

/// Indexes of the leads a status document lists as failed with `code`.
pub fn error_indexes(doc: &Value, code: &str) -> Vec<u32> {
    doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == code)
        .map(|e| e["index"].as_u64().unwrap() as u32)
        .collect()
}

fn redis_value_json(v: redis::Value) -> Value {
    match v {
        redis::Value::Int(i) => Value::from(i),
        redis::Value::Array(items) => {
            Value::Array(items.into_iter().map(redis_value_json).collect())
        }
        redis::Value::BulkString(b) => Value::from(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => Value::from(s),
        _ => Value::Null,
    }
}

/// Sends an API Gateway v2 event (JSON) through `lambda_http`'s adapter, exactly as the Lambda
/// runtime does, and returns the API Gateway response JSON (`statusCode`, `headers`, `body`).
pub async fn replay_event(router: axum::Router, event: &str) -> Value {
    use lambda_http::Service;
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_str(event).expect("an API Gateway v2 event");
    let response = lambda_http::Adapter::from(router)
        .call(lambda_runtime::LambdaEvent::new(
            request,
            lambda_runtime::Context::default(),
        ))
        .await
        .unwrap();
    serde_json::to_value(response).unwrap()
}

/// The status code and the JSON body of a replayed event's response.
pub fn status_and_body(response: &Value) -> (u64, Value) {
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response["statusCode"].as_u64().unwrap(), body)
}

/// The sample EventBridge event from `events/`, with an invocation deadline `ms` from now.
pub fn scheduled_event(
    ms: u64,
) -> lambda_runtime::LambdaEvent<aws_lambda_events::eventbridge::EventBridgeEvent<Value>> {
    shared::lambda::scheduled_invocation(std::time::Duration::from_millis(ms), String::new())
}

pub fn read_event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event file")
}

/// `n` leads as JSON objects; every `bad_every`-th has an invalid email, every
/// `dup_every`-th repeats the email of the lead before it.
pub fn synthetic_leads(n: usize, tag: &str, bad_every: usize, dup_every: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let email = if bad_every > 0 && i % bad_every == bad_every - 1 {
                format!("not-an-email-{i}")
            } else if dup_every > 0 && i % dup_every == dup_every - 1 && i > 0 {
                format!("lead{}@{tag}.example.com", i - 1)
            } else {
                format!("lead{i}@{tag}.example.com")
            };
            serde_json::json!({"fullName": format!("Lead {i}"), "email": email, "phone": "+1 (555) 010-0000", "source": "website"})
        })
        .collect()
}

// ---- Fault-injection helpers (shared/tests/faults.rs) ----

/// Like [`spawn_app_with`], on servers the test started itself (a private Redis and Postgres
/// it may restart): `postgres_admin` is a URL of the cluster's `postgres` database.
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
    let prefix = format!("{name}:");
    let app = app_for(redis_url, &database_url, &prefix, overrides);
    app.store.migrate().await.expect("migrations");
    let redis = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    TestApp {
        db: app.store.pool().clone(),
        app,
        redis,
        database_url,
        redis_url: redis_url.to_owned(),
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
    let mut vars: HashMap<String, String> = HashMap::from([
        ("REDIS_URL".into(), redis_url.to_owned()),
        ("DATABASE_URL".into(), database_url.to_owned()),
        ("REDIS_KEY_PREFIX".into(), prefix.to_owned()),
        ("BLOCK_TIMEOUT".into(), "0".into()),
    ]);
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    App::new(Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")).expect("app")
}

impl TestApp {
    /// Another execution environment on the same database and stream (say, a second drain
    /// with its own `CONSUMER_NAME`), configured by `overrides`.
    pub fn sibling(&self, overrides: &[(&str, &str)]) -> App {
        app_for(&self.redis_url, &self.database_url, &self.prefix, overrides)
    }

    /// One drain-fn invocation that may fail (a fault was injected).
    pub async fn try_drain_once(&self) -> Result<DrainReport, lambda_runtime::Error> {
        self.drain_function()
            .await
            .handle(scheduled_event(30_000))
            .await
    }

    /// A fresh connection for the test's own commands (after a Redis restart).
    pub async fn reconnect_redis(&mut self) {
        self.redis = redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
    }

    /// Invokes `drain` until an invocation succeeds with nothing new and nothing pending;
    /// failed invocations (a server down) are retried after a pause. Returns the number of
    /// failed invocations.
    pub async fn drain_until_done(&mut self, drain: &DrainFunction) -> u32 {
        let mut failures = 0;
        for _ in 0..200 {
            match drain.handle(scheduled_event(30_000)).await {
                Ok(r) if r.entries == 0 && r.oldest_pending_age_ms == 0 => return failures,
                Ok(_) => {}
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        panic!("the drain did not finish in 200 invocations");
    }

    /// Reads up to `count` new entries as consumer `consumer`, which then "dies": they stay
    /// pending under it. Returns their ids.
    pub async fn read_as_ghost(&self, consumer: &str, count: usize) -> Vec<String> {
        let queue = self.sibling(&[("CONSUMER_NAME", consumer)]).queue;
        queue.ensure_group().await.unwrap();
        queue
            .read_new(count, std::time::Duration::ZERO)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    }

    /// Entries of the dead-letter stream, as field maps (with their ids under `id`).
    pub async fn dead_letters(&self) -> Vec<HashMap<String, String>> {
        let reply: redis::streams::StreamRangeReply = self
            .redis
            .clone()
            .xrange_all(self.key("lead:imports:dead"))
            .await
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|e| {
                let mut m: HashMap<String, String> = e
                    .map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            redis::from_redis_value_ref::<String>(v).unwrap_or_default(),
                        )
                    })
                    .collect();
                m.insert("id".into(), e.id);
                m
            })
            .collect()
    }
}

enum ServerCommand {
    RestartRedis,
    RestartPostgres,
}

/// A private Redis (AOF on) and Postgres for one test, owned by a thread that lives as long
/// as this handle (the servers die with the thread that started them), which restarts them
/// on request while the test's drains keep running.
pub struct PrivateServers {
    pub redis_url: String,
    pub postgres_admin: String,
    commands: Option<std::sync::mpsc::Sender<(ServerCommand, tokio::sync::oneshot::Sender<()>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PrivateServers {
    /// `durable_postgres`: keep fsync and synchronous commit on, so a SIGKILLed postmaster
    /// cannot lose a transaction it already reported committed (with `synchronous_commit=off`
    /// it can, which no real deployment does).
    pub fn start(durable_postgres: bool) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (commands, inbox) =
            std::sync::mpsc::channel::<(ServerCommand, tokio::sync::oneshot::Sender<()>)>();
        let thread = std::thread::spawn(move || {
            let mut redis = RedisServer::start().expect("start private redis-server");
            let mut postgres =
                PostgresServer::start_with(durable_postgres).expect("start private postgres");
            tx.send((redis.url(), postgres.url("postgres"))).unwrap();
            for (command, done) in inbox {
                match command {
                    ServerCommand::RestartRedis => redis.restart().expect("restart redis"),
                    ServerCommand::RestartPostgres => postgres.restart().expect("restart postgres"),
                }
                let _ = done.send(());
            }
        });
        let (redis_url, postgres_admin) = rx.recv().expect("private servers started");
        PrivateServers {
            redis_url,
            postgres_admin,
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    async fn send(&self, command: ServerCommand) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.commands
            .as_ref()
            .unwrap()
            .send((command, done))
            .unwrap();
        wait.await.expect("server thread alive");
    }

    /// Kills redis-server with SIGKILL and starts it again on its AOF.
    pub async fn restart_redis(&self) {
        self.send(ServerCommand::RestartRedis).await
    }

    /// Kills the postmaster with SIGKILL and starts it again; Postgres recovers from its WAL.
    pub async fn restart_postgres(&self) {
        self.send(ServerCommand::RestartPostgres).await
    }
}

impl Drop for PrivateServers {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
