//! The endpoints that act on an import after it was accepted: cancel it. Served by
//! import-fn, the writing side.

use super::problem::Problem;
use crate::app::App;
use crate::cancel::{CancelAnswer, cancel_import};
use crate::job::caller::Caller;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
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
    Ok(
        match cancel_import(&app.store, &app.cache, &caller, &raw_id).await? {
            CancelAnswer::CancelledNow(status) => (StatusCode::ACCEPTED, Json(status)),
            CancelAnswer::AlreadyCancelled(status) => (StatusCode::OK, Json(status)),
        }
        .into_response(),
    )
}
