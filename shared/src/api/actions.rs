//! The endpoints that act on an import after it was accepted: cancel it, retry its failures.
//! Served by import-fn, the writing side.

use super::problem::Problem;
use super::reports::{QueryParams, param};
use crate::app::App;
use crate::cancel::{CancelAnswer, cancel_import};
use crate::job::caller::Caller;
use crate::retry::{RetryStores, retry_failures};
use crate::webhook::Notifications;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `202` and the document when this request cancelled the import; `200` and the document
/// when it was cancelled before.
pub(super) async fn cancel(
    State(app): State<App>,
    caller: Caller,
    raw_id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let raw_id = raw_id.map(|Path(id)| id).unwrap_or_default();
    Ok(match cancel_import(
        &app.store,
        &app.cache,
        &Notifications::from_config(&app.config),
        &caller,
        &raw_id,
    )
    .await?
    {
        CancelAnswer::CancelledNow(status) => (StatusCode::ACCEPTED, Json(status)),
        CancelAnswer::AlreadyCancelled(status) => (StatusCode::OK, Json(status)),
    }
    .into_response())
}

/// `202` and the new import, as an import's `202` (with `parentImportId`); `?all=true` takes
/// every failed lead, not only the transient failures.
pub(super) async fn retry(
    State(app): State<App>,
    caller: Caller,
    raw_id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let raw_id = raw_id.map(|Path(id)| id).unwrap_or_default();
    let params = QueryParams::read(query, &["all"])?;
    let all = match params.get("all") {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => {
            return Err(Problem::invalid_request(
                "all must be true or false",
                vec![param("all", "all must be true or false")],
            ));
        }
    };
    let stores = RetryStores {
        store: &app.store,
        queue: &app.queue,
        cache: &app.cache,
        kicker: &app.kicker(),
    };
    let retried = retry_failures(stores, app.import_limits(), &caller, &raw_id, all).await?;
    Ok(super::accepted_response(
        &retried.import_id,
        retried.state,
        retried.total,
        None,
        Some(retried.parent_import_id.as_str()),
    ))
}
