//! The read endpoints that follow imports: an import's errors report (JSON pages, or CSV) and
//! the caller's imports. Served by status-fn beside the status document.

use super::problem::Problem;
use crate::app::App;
use crate::errors_report::{errors_csv, errors_page};
use crate::job::caller::Caller;
use crate::job::request::InvalidParam;
use crate::list::{ListQuery, list_imports};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A page's size when the query names none, and the most it may name.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

pub(super) async fn import_errors(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    raw_id: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let raw_id = raw_id.map(|Path(id)| id).unwrap_or_default();
    let params = QueryParams::read(query, &["cursor", "limit"])?;
    if wants_csv(&headers) {
        let csv = errors_csv(&app.store, &caller, &raw_id).await?;
        let mut response = (StatusCode::OK, csv).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(response);
    }
    let page = errors_page(
        &app.store,
        &caller,
        &raw_id,
        params.get("cursor"),
        params.limit()?,
    )
    .await?;
    Ok((StatusCode::OK, Json(page)).into_response())
}

pub(super) async fn imports(
    State(app): State<App>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = QueryParams::read(query, &["cursor", "limit", "state", "createdBy"])?;
    let query = ListQuery {
        created_by: params.get("createdBy").map(str::to_owned),
        state: params.get("state").map(str::to_owned),
        cursor: params.get("cursor").map(str::to_owned),
        limit: params.limit()?,
    };
    let page = list_imports(&app.store, &caller, &query).await?;
    Ok((StatusCode::OK, Json(page)).into_response())
}

/// `Accept: text/csv` (among others) asks for the CSV report; anything else gets JSON.
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
        })
}

/// The query parameters an endpoint reads, each at most once; others are ignored, as unknown
/// JSON fields are.
pub(super) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub(super) fn read(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        names: &[&str],
    ) -> Result<Self, Problem> {
        let Query(pairs) = query.map_err(|e| {
            Problem::invalid_request(format!("the query string is malformed: {e}"), vec![])
        })?;
        let mut kept: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            if !names.contains(&name.as_str()) {
                continue;
            }
            if kept.iter().any(|(n, _)| *n == name) {
                return Err(Problem::invalid_request(
                    format!("the query names {name} more than once"),
                    vec![param(&name, "duplicate query parameter")],
                ));
            }
            kept.push((name, value));
        }
        Ok(QueryParams(kept))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
    fn limit(&self) -> Result<usize, Problem> {
        let Some(raw) = self.get("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => {
                let message = format!("limit must be a whole number from 1 to {MAX_LIMIT}");
                Err(Problem::invalid_request(
                    message.clone(),
                    vec![param("limit", &message)],
                ))
            }
        }
    }
}

pub(super) fn param(name: &str, message: &str) -> InvalidParam {
    InvalidParam {
        pointer: format!("/{name}"),
        message: message.to_owned(),
    }
}
