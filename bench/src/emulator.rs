//! A minimal Lambda Runtime API (the three endpoints a custom runtime uses), so that a release
//! bootstrap can be started as Lambda starts it and timed from `exec` to its first answer.
//!
//! It hands out one event; the next `/invocation/next` call waits forever (the process is then
//! killed), as a frozen execution environment would.

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use bytes::Bytes;
use std::path::Path as FsPath;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    event: Mutex<Option<Bytes>>,
    answer: Mutex<Option<(Instant, bool, Bytes)>>,
    answered: Notify,
}

/// What one cold start measured.
pub struct ColdStart {
    pub ms: f64,
    pub ok: bool,
    pub answer: String,
}

/// Starts `bootstrap` with `env` under a fresh emulator, feeds it `event`, and times the
/// process from spawn to its first response (or error report).
pub async fn cold_start(
    bootstrap: &FsPath,
    env: &[(String, String)],
    event: &str,
    timeout: Duration,
) -> anyhow::Result<ColdStart> {
    let shared = Arc::new(Shared::default());
    *shared.event.lock().unwrap() = Some(Bytes::from(event.to_owned()));
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let api = listener.local_addr()?.to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut command = tokio::process::Command::new(bootstrap);
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    let waited = tokio::time::timeout(timeout, shared.answered.notified()).await;
    let _ = child.kill().await;
    server.abort();
    waited.with_context(|| format!("{} gave no answer", bootstrap.display()))?;
    let (at, ok, body) = shared.answer.lock().unwrap().take().expect("answer kept");
    Ok(ColdStart {
        ms: at.duration_since(started).as_secs_f64() * 1000.0,
        ok,
        answer: String::from_utf8_lossy(&body).chars().take(300).collect(),
    })
}

async fn next(State(shared): State<Arc<Shared>>) -> (HeaderMap, Bytes) {
    let event = shared.event.lock().unwrap().take();
    let Some(event) = event else {
        // Only one invocation per cold start: later polls wait until the process is killed.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        + 15_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", "bench-cold-start".into());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".into(),
    );
    (headers, event)
}

fn record(shared: &Shared, ok: bool, body: Bytes) -> StatusCode {
    let mut answer = shared.answer.lock().unwrap();
    if answer.is_none() {
        *answer = Some((Instant::now(), ok, body));
        shared.answered.notify_one();
    }
    StatusCode::ACCEPTED
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, true, body)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    record(&shared, false, body)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    record(&shared, false, body)
}
