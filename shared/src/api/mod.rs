//! The HTTP API (described by `openapi.yaml` at the repository's root) as axum routers.
//! `import-fn` and `status-fn` hand theirs to `lambda_http`; the local run serves both with
//! hyper. Same code, same answers.
//!
//! A handler only extracts what the request carries, calls a use case, and turns its answer
//! into a response; every error becomes a [`Problem`] through the `From` impls in [`problem`].

pub mod identity;
pub mod problem;

use crate::app::App;
use crate::import::{ImportAnswer, accept_import};
use crate::job::caller::Caller;
use crate::status::read_status;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use problem::Problem;
use serde::Serialize;

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
    // No credential step here: the Store signs every new connection in itself, for the HTTP
    // functions, the drain and the local commands alike (`postgres::sign_in`).
    with_fallbacks(routes).with_state(app)
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
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
}

/// The `202 Accepted` body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    import_id: &'a str,
    status: crate::job::status::JobState,
    total: u64,
    status_url: &'a str,
}

async fn import_leads(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    require_json(&headers)?;
    let body = body.map_err(Problem::from_body_rejection)?;
    let answer = accept_import(
        &app.store,
        &app.queue,
        &app.cache,
        &app.kicker(),
        app.import_limits(),
        &caller,
        &body,
    )
    .await?;
    Ok(match answer {
        ImportAnswer::AlreadyAccepted(status) => (StatusCode::OK, Json(status)).into_response(),
        ImportAnswer::Accepted {
            import_id,
            state,
            total,
        } => {
            let status_url = format!("/leads/import/{import_id}/status");
            let body = Accepted {
                import_id: import_id.as_str(),
                status: state,
                total,
                status_url: &status_url,
            };
            let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
            if let Ok(location) = HeaderValue::from_str(&status_url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    })
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
    Err(Problem::unsupported_media_type(
        "send the import as JSON with Content-Type: application/json",
    ))
}

async fn job_status(
    State(app): State<App>,
    caller: Caller,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    // A path segment that does not even decode (bad UTF-8) is as malformed as a bad id.
    let raw_id = raw_id.map(|Path(id)| id).unwrap_or_default();
    let status = read_status(&app.cache, &app.store, &caller, &raw_id).await?;
    Ok((StatusCode::OK, Json(status)).into_response())
}
