//! The stack the `leads` binary is run against: the real local run (`shared::local_run`) on a
//! loopback port, on private Redis and Postgres servers (`local-servers`) that every test of
//! this binary shares, each test with its own database and Redis key prefix.

use local_servers::{create_database, shared_servers as servers};
use shared::app::App;
use sqlx::PgPool;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;

/// One test's stack: the API on `url`, its database for counting what was stored.
pub struct Stack {
    pub url: String,
    pub db: PgPool,
    app: App,
    _shutdown: oneshot::Sender<()>,
}

impl Stack {
    /// The whole local run: API and drain loop.
    pub async fn start() -> Stack {
        Self::serve(true, &[]).await
    }

    /// The whole local run, configured by `overrides` (environment-style pairs).
    pub async fn start_with(overrides: &[(&'static str, &str)]) -> Stack {
        Self::serve(true, overrides).await
    }

    /// The API alone: imports are accepted and stay pending until [`Stack::start_drain`].
    pub async fn without_drain() -> Stack {
        Self::serve(false, &[]).await
    }

    async fn serve(drain: bool, overrides: &[(&'static str, &str)]) -> Stack {
        let urls = servers();
        let name = format!("cli{}", uuid::Uuid::new_v4().simple());
        create_database(&urls.postgres_admin, &name)
            .await
            .expect("create the test database");
        let database_url = format!("{}/{name}", urls.postgres_admin.rsplit_once('/').unwrap().0);
        let mut vars = HashMap::from([
            ("REDIS_URL", urls.redis.clone()),
            ("DATABASE_URL", database_url),
            ("REDIS_KEY_PREFIX", format!("{name}:")),
            ("BLOCK_TIMEOUT", "0".to_owned()),
            ("DRAIN_INTERVAL_MS", "200".to_owned()),
        ]);
        vars.extend(overrides.iter().map(|(k, v)| (*k, v.to_string())));
        let app = App::from_lookup(|k| vars.get(k).cloned())
            .await
            .expect("the test app");
        app.store.migrate().await.expect("migrations");
        Self::listen(app, drain).await
    }

    /// The API on a Postgres that nothing answers: every import is `503` with `Retry-After`.
    pub async fn with_postgres_down() -> Stack {
        let vars = HashMap::from([
            ("REDIS_URL", servers().redis.clone()),
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/gone".to_owned(),
            ),
            (
                "REDIS_KEY_PREFIX",
                format!("cli{}:", uuid::Uuid::new_v4().simple()),
            ),
        ]);
        let app = App::from_lookup(|k| vars.get(k).cloned())
            .await
            .expect("the test app");
        Self::listen(app, false).await
    }

    async fn listen(app: App, drain: bool) -> Stack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let stopped = async {
            let _ = stop.await;
        };
        if drain {
            tokio::spawn(shared::local_run::serve(listener, app.clone(), stopped));
        } else {
            let router = shared::api::router(app.clone());
            tokio::spawn(async move {
                axum_serve(listener, router, stopped).await;
            });
        }
        Stack {
            url,
            db: app.store.pool().clone(),
            app,
            _shutdown: shutdown,
        }
    }

    /// Starts the drain loop of a stack started [`Stack::without_drain`].
    pub fn start_drain(&self) {
        let mut app = self.app.clone();
        shared::local_run::start_drain_loop(&mut app);
    }

    /// `leads --url <this stack> ARGS…`, without any `LEADS_*` of the environment.
    pub fn leads(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_leads"));
        command
            .arg("--url")
            .arg(&self.url)
            .args(args)
            .env_remove("LEADS_URL")
            .env_remove("LEADS_TOKEN")
            .env_remove("LEADS_CREATED_BY")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `leads ARGS…` to its end: exit code, JSON lines of standard output, standard error.
    pub async fn run(&self, args: &[&str]) -> Run {
        let output = self
            .leads(args)
            .output()
            .await
            .expect("the leads binary runs");
        Run {
            code: output.status.code(),
            events: json_lines(&output.stdout),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db)
            .await
            .expect("a count")
    }
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(stopped)
        .await;
}

pub struct Run {
    pub code: Option<i32>,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
}

impl Run {
    /// The events named `name`, in order.
    pub fn named(&self, name: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e["event"] == name).collect()
    }

    pub fn last(&self) -> &serde_json::Value {
        self.events.last().expect("at least one event")
    }
}

/// Every line of `stdout` as JSON: a line that is not is a failure of the JSON-lines output.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

/// A child `leads` whose JSON lines are read as they come.
pub struct Running {
    pub child: Child,
    pub lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the leads binary starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Running { child, lines }
    }

    /// Reads events until one matches `wanted`; returns it.
    pub async fn until(
        &mut self,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let read = async {
            while let Some(line) = self.lines.next_line().await.expect("stdout reads") {
                let event: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if wanted(&event) {
                    return event;
                }
            }
            panic!("leads ended before the awaited event");
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), read)
            .await
            .expect("the awaited event within a minute")
    }
}

/// A CSV export of `rows` leads, the rows in `failing` with an invalid email.
pub fn write_csv(dir: &Path, name: &str, rows: usize, failing: &[usize]) -> PathBuf {
    write_csv_from(dir, name, 0, rows, failing)
}

/// [`write_csv`] with emails numbered from `first` (another file's leads, not the same).
pub fn write_csv_from(
    dir: &Path,
    name: &str,
    first: usize,
    rows: usize,
    failing: &[usize],
) -> PathBuf {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "Full Name,E-mail,Phone,Lead Status,Lead Source").unwrap();
    for row in 0..rows {
        let i = first + row;
        let email = if failing.contains(&row) {
            format!("not-an-email-{i}")
        } else {
            format!("lead{i}@example.com")
        };
        writeln!(out, "\"Lead {i}, Jr\",{email},+1555{i:07},NEW,WEBSITE").unwrap();
    }
    out.flush().unwrap();
    path
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
