//! The HTTP API (SPEC §3) as axum routers. `import-fn` and `status-fn` hand theirs to
//! `lambda_http`; the local run serves both with hyper. Same code, same answers.

use crate::app::App;
use crate::domain::ImportId;
use crate::identity::Caller;
use crate::import_plan::ImportPlan;
use crate::import_request::ImportRequest;
use crate::job_status::{JobSnapshot, JobStatus};
use crate::problem::Problem;
use crate::queue::Enqueued;
use crate::store::JobInsert;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use time::OffsetDateTime;

/// Lambda's synchronous payload limit; the local run enforces the same.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub const IMPORT_PATH: &str = "/leads/import";
pub const STATUS_PATH: &str = "/leads/import/{importId}/status";

/// `POST /leads/import`.
pub fn import_router(app: App) -> Router {
    finish(import_routes(), app)
}

/// `GET /leads/import/{importId}/status`.
pub fn status_router(app: App) -> Router {
    finish(status_routes(), app)
}

/// Both, for the local run.
pub fn router(app: App) -> Router {
    finish(import_routes().merge(status_routes()), app)
}

fn finish(routes: Router<App>, app: App) -> Router {
    with_fallbacks(routes)
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refresh_credentials,
        ))
        .with_state(app)
}

/// With IAM database auth, renews the token before a handler may open a connection.
async fn refresh_credentials(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match app.refresh().await {
        Ok(()) => next.run(request).await,
        Err(e) => unavailable("renew the database credentials")(e).into_response(),
    }
}

fn import_routes() -> Router<App> {
    Router::new()
        .route(IMPORT_PATH, post(import_leads))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn status_routes() -> Router<App> {
    Router::new().route(STATUS_PATH, get(job_status))
}

fn with_fallbacks(router: Router<App>) -> Router<App> {
    router
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this resource does not support that method",
            )
        })
}

/// The `202 Accepted` body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    import_id: &'a str,
    status: crate::job_status::JobState,
    total: u64,
    status_url: &'a str,
}

async fn import_leads(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept_import(&app, &caller, &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn accept_import(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    require_json(headers)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!("the body may be at most {MAX_BODY_BYTES} bytes"),
        ),
        _ => Problem::invalid_request("the request body could not be read", vec![]),
    })?;
    let request = ImportRequest::parse_as(
        &body,
        app.config.max_leads_per_import,
        caller.created_by()?.as_ref(),
    )?;
    let plan = ImportPlan::new(request, app.config.batch_size);
    let import_id = plan.import_id.clone();
    let now = OffsetDateTime::now_utc();
    let inserted = app
        .store
        .insert_job(&plan, now)
        .await
        .map_err(unavailable("record the job"))?;
    let snapshot = match inserted {
        JobInsert::Existing { payload_hash, .. } if payload_hash != plan.payload_hash => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "import-id-conflict",
                "Import id already used",
                format!(
                    "import {import_id} exists with different content; choose another importId"
                ),
            ));
        }
        JobInsert::Existing { queued: true, .. } => {
            let status = current_status(app, &import_id)
                .await?
                .ok_or_else(Problem::unavailable)?;
            return Ok((StatusCode::OK, Json(status)).into_response());
        }
        // A retry of a request that was recorded but may not have reached the stream.
        JobInsert::Existing { queued: false, .. } => app
            .store
            .load_job(import_id.as_str())
            .await
            .map_err(unavailable("load the job"))?
            .ok_or_else(Problem::unavailable)?,
        JobInsert::Created => JobSnapshot {
            import_id: import_id.to_string(),
            created_by: plan.created_by.as_str().to_owned(),
            total: plan.total,
            chunks: plan.chunks.len() as u32,
            created_at: now,
            updated_at: now,
            rejected: plan.rejected.clone(),
            outcomes: Vec::new(),
        },
    };
    // Accepted now (202) when this call queued the entries, also for a retry whose first
    // attempt was recorded but never queued; a retry of a queued job gets its status (200).
    let queued_now = match app
        .queue
        .enqueue(&plan, &snapshot)
        .await
        .map_err(unavailable("queue the job"))?
    {
        Enqueued::Queued(entry_ids) => {
            app.store
                .mark_queued(import_id.as_str(), &entry_ids)
                .await
                .map_err(unavailable("mark the job queued"))?;
            true
        }
        Enqueued::AlreadyQueued(_) => false,
    };
    tracing::info!(import_id = %import_id, total = plan.total, rejected = plan.rejected.len(), chunks = plan.chunks.len(), queued_now, "import accepted");
    if !queued_now {
        let status = current_status(app, &import_id)
            .await?
            .ok_or_else(Problem::unavailable)?;
        return Ok((StatusCode::OK, Json(status)).into_response());
    }
    let status_url = format!("/leads/import/{import_id}/status");
    let body = Accepted {
        import_id: import_id.as_str(),
        status: snapshot.state(),
        total: plan.total,
        status_url: &status_url,
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Only JSON is accepted (`application/json`, any parameters, or a `+json` type).
fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the import as JSON with Content-Type: application/json",
    ))
}

async fn job_status(
    State(app): State<App>,
    caller: Caller,
    raw_id: Result<Path<String>, PathRejection>,
) -> Response {
    let result = async {
        // A path segment that does not even decode (bad UTF-8) is as malformed as a bad id.
        let raw_id = raw_id.map(|Path(id)| id).unwrap_or_default();
        let import_id = ImportId::parse(&raw_id).map_err(|m| {
            Problem::invalid_request(
                m,
                vec![crate::problem::InvalidParam {
                    pointer: "/importId".into(),
                    message: "not a valid import id".into(),
                }],
            )
        })?;
        // Another caller's job answers exactly like an unknown one.
        current_snapshot(&app, &import_id)
            .await?
            .filter(|job| caller.may_see(&job.created_by))
            .map(JobSnapshot::into_status)
            .ok_or_else(|| Problem::not_found(format!("no import with id {import_id}")))
    }
    .await;
    match result {
        Ok(status) => (StatusCode::OK, Json(status)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// The job's document: from the cache, or rebuilt from Postgres when the cache has expired or
/// Redis is unreachable (status keeps working through a Redis outage).
async fn current_status(app: &App, import_id: &ImportId) -> Result<Option<JobStatus>, Problem> {
    Ok(current_snapshot(app, import_id)
        .await?
        .map(JobSnapshot::into_status))
}

async fn current_snapshot(app: &App, import_id: &ImportId) -> Result<Option<JobSnapshot>, Problem> {
    match app.cache.get(import_id.as_str()).await {
        Ok(Some(snapshot)) => return Ok(Some(snapshot)),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, import_id = %import_id, "status cache unreachable; reading Postgres")
        }
    }
    let snapshot = app
        .store
        .load_job(import_id.as_str())
        .await
        .map_err(unavailable("load the job"))?;
    Ok(snapshot)
}

/// Logs what failed (the error's text, never a URL) and answers 503.
fn unavailable<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> Problem {
    move |e| {
        tracing::error!(error = %e, "could not {doing}");
        Problem::unavailable()
    }
}
