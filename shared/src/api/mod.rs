//! The HTTP API (described by `openapi.yaml` at the repository's root) as axum routers.
//! `import-fn` and `status-fn` hand theirs to `lambda_http`; the local run serves both with
//! hyper. Same code, same answers.
//!
//! A handler only extracts what the request carries, calls a use case, and turns its answer
//! into a response; every error becomes a [`Problem`] through the `From` impls in [`problem`].

mod actions;
pub mod identity;
pub mod problem;
mod reports;

use crate::app::App;
use crate::import::{ImportAnswer, ImportBody, accept_import};
use crate::job::caller::Caller;
use crate::job::csv_request::ImportOptions;
use crate::status::read_status;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use problem::Problem;
use serde::Serialize;

/// The largest request body the API reads, 4 MiB (4,194,304 bytes); a larger one is answered
/// `413 body-too-large`. The local run enforces the same.
///
/// Why not Lambda's 6 MB: Lambda refuses an invocation whose *event* is [`LAMBDA_PAYLOAD_LIMIT`]
/// bytes or more, and API Gateway (HTTP API, payload 2.0) puts the body in the event as one
/// string, JSON-escaped (a `\` more for each `"` or `\`, more for a control character) or, when
/// `isBase64Encoded`, base64-encoded (4/3 of its size), beside the headers (at most 10 KiB on an
/// HTTP API, the JWT's claims again in the request context) and the request context. An event
/// that does not fit never reaches the function: API Gateway answers with an error of its own,
/// not this API's 413. A 4 MiB body is 5,592,408 bytes in base64, which leaves 699,048 bytes for
/// the rest of the event; sent as text it fits as long as escaping adds less than about 49%
/// (a JSON import adds 15–25%: one backslash per quote). So a body at the limit reaches the
/// function in both encodings, and so does one just over it: the 413 is this API's own. Only
/// bodies far over it are stopped before the function (from about 4.7 MB in base64, and as
/// text from about 5 MB of typical JSON, 6.2 MB of text with nothing to escape).
/// The `limits` integration tests replay API Gateway events of these sizes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Lambda's limit on a synchronous invocation's request payload (the whole event): an event
/// must be smaller than this many bytes.
pub const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

pub const IMPORT_PATH: &str = "/leads/import";
pub const STATUS_PATH: &str = "/leads/import/{importId}/status";
pub const ERRORS_PATH: &str = "/leads/import/{importId}/errors";
pub const IMPORTS_PATH: &str = "/leads/imports";
pub const CANCEL_PATH: &str = "/leads/import/{importId}/cancel";
pub const RETRY_PATH: &str = "/leads/import/{importId}/retry";

/// `POST /leads/import`, and the actions on an accepted import (cancel, retry).
pub fn import_router(app: App) -> Router {
    finish(import_routes(), app)
}

/// `GET /leads/import/{importId}/status`, its errors report, and the caller's imports.
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
        .route(CANCEL_PATH, post(actions::cancel))
        .route(RETRY_PATH, post(actions::retry))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn status_routes() -> Router<App> {
    Router::new()
        .route(STATUS_PATH, get(job_status))
        .route(ERRORS_PATH, get(reports::import_errors))
        .route(IMPORTS_PATH, get(reports::imports))
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
    /// A CSV import's columns: which were read into which field, which were ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    mapping: Option<&'a crate::job::csv_request::ColumnMapping>,
    /// A retry's: the import whose failures it retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_import_id: Option<&'a str>,
}

/// `202`, the `Accepted` body and the status URL in `Location`.
fn accepted_response(
    import_id: &crate::domain::ImportId,
    state: crate::job::status::JobState,
    total: u64,
    mapping: Option<&crate::job::csv_request::ColumnMapping>,
    parent_import_id: Option<&str>,
) -> Response {
    let status_url = format!("/leads/import/{import_id}/status");
    let body = Accepted {
        import_id: import_id.as_str(),
        status: state,
        total,
        status_url: &status_url,
        mapping,
        parent_import_id,
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn import_leads(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let format = body_format(&headers)?;
    let body = body.map_err(Problem::from_body_rejection)?;
    let Query(mut pairs) = query.map_err(|e| {
        Problem::invalid_request(format!("the query string is malformed: {e}"), vec![])
    })?;
    let (format, body) = match format {
        Format::Multipart { boundary } => {
            let form = read_form(body, boundary).await?;
            pairs.extend(form.fields);
            (form.format, form.file)
        }
        format => (format, body),
    };
    let options;
    let body = match format {
        // A JSON body names its ids itself, but a query the contract refuses (a duplicate,
        // an unknown delimiter) is refused for every body alike.
        Format::Json => {
            options = query_options(pairs, None)?;
            ImportBody::Json(&body, &options)
        }
        Format::Csv { charset } => {
            let mut csv = query_options(pairs, charset)?;
            if caller == Caller::Unverified && csv.created_by.is_none() {
                csv.created_by = app.config.default_created_by.clone();
            }
            options = csv;
            ImportBody::Csv(&body, &options)
        }
        Format::Multipart { .. } => {
            return Err(Problem::unsupported_media_type(
                "the file part must be JSON or CSV, not another multipart body",
            ));
        }
    };
    let answer = accept_import(
        &app.store,
        &app.queue,
        &app.cache,
        &app.kicker(),
        app.import_limits(),
        &caller,
        body,
    )
    .await?;
    Ok(match answer {
        ImportAnswer::AlreadyAccepted(status) => (StatusCode::OK, Json(status)).into_response(),
        ImportAnswer::DryRun(report) => (StatusCode::OK, Json(report)).into_response(),
        ImportAnswer::Accepted {
            import_id,
            state,
            total,
            mapping,
        } => accepted_response(&import_id, state, total, mapping.as_ref(), None),
    })
}

/// The formats an import is read in.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Json,
    /// With the `charset` parameter of the `Content-Type`, if any.
    Csv {
        charset: Option<String>,
    },
    /// `multipart/form-data`: a `file` part (JSON or CSV) and the query's fields as parts.
    Multipart {
        boundary: String,
    },
}

/// A `multipart/form-data` import read: the file, its format, and the other parts as fields.
struct Form {
    format: Format,
    file: Bytes,
    fields: Vec<(String, String)>,
}

/// Reads the parts of a multipart body (already read whole, within `MAX_BODY_BYTES`): the one
/// part named `file` is the import, in the format its `Content-Type` says (or, without one,
/// its file name's extension); every other part is a field (`importId`, `createdBy`,
/// `delimiter`, `mapping`, `dryRun`), as in the query.
async fn read_form(body: Bytes, boundary: String) -> Result<Form, Problem> {
    let malformed = |e: multer::Error| {
        Problem::invalid_request(format!("the multipart body is malformed: {e}"), vec![])
    };
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut file = None;
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_owned();
        if name != "file" {
            fields.push((name, field.text().await.map_err(malformed)?));
            continue;
        }
        if file.is_some() {
            return Err(Problem::invalid_request(
                "the multipart body has more than one file part",
                vec![file_param("only one part may be named file")],
            ));
        }
        let content_type = field.content_type().map(|m| m.to_string());
        let file_name = field.file_name().unwrap_or("").to_ascii_lowercase();
        let format = part_format(content_type.as_deref(), &file_name)?;
        file = Some((format, field.bytes().await.map_err(malformed)?));
    }
    let Some((format, file)) = file else {
        return Err(Problem::invalid_request(
            "the multipart body has no file part",
            vec![file_param(
                "a part named file must hold the leads (CSV or JSON)",
            )],
        ));
    };
    Ok(Form {
        format,
        file,
        fields,
    })
}

fn file_param(message: &str) -> crate::job::request::InvalidParam {
    crate::job::request::InvalidParam {
        pointer: "/file".to_owned(),
        message: message.to_owned(),
    }
}

/// The format of the `file` part: by its `Content-Type`, or by its file name when it has none
/// (or a generic one).
fn part_format(content_type: Option<&str>, file_name: &str) -> Result<Format, Problem> {
    let essence = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let generic = matches!(
        essence.as_str(),
        "" | "application/octet-stream" | "text/plain"
    );
    // What browsers and spreadsheet programs label a `.csv` upload with besides `text/csv`
    // (Windows with Excel installed: `application/vnd.ms-excel`).
    let csv_alias = matches!(
        essence.as_str(),
        "application/vnd.ms-excel"
            | "application/csv"
            | "text/x-csv"
            | "text/comma-separated-values"
            | "text/tab-separated-values"
    );
    let content_type = if csv_alias {
        "text/csv"
    } else if generic {
        if file_name.ends_with(".json") {
            "application/json"
        } else if [".csv", ".tsv", ".txt"]
            .iter()
            .any(|ext| file_name.ends_with(ext))
        {
            "text/csv"
        } else {
            ""
        }
    } else {
        content_type.unwrap_or("")
    };
    match body_format_of(content_type)? {
        Format::Multipart { .. } => Err(Problem::unsupported_media_type(
            "the file part must be JSON or CSV, not another multipart body",
        )),
        format => Ok(format),
    }
}

/// JSON (`application/json`, any parameters, or a `+json` type) or CSV (`text/csv`, any
/// parameters: `charset` is used, others such as `header` are allowed); anything else is `415`.
fn body_format(headers: &HeaderMap) -> Result<Format, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    body_format_of(content_type)
}

fn body_format_of(content_type: &str) -> Result<Format, Problem> {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Ok(Format::Json);
    }
    if essence == "text/csv" {
        let charset = parts.find_map(|part| {
            let (name, value) = part.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_owned())
        });
        return Ok(Format::Csv { charset });
    }
    if essence == "multipart/form-data" {
        let boundary = multer::parse_boundary(content_type).map_err(|e| {
            Problem::invalid_request(
                format!("the multipart Content-Type is malformed: {e}"),
                vec![],
            )
        })?;
        return Ok(Format::Multipart { boundary });
    }
    Err(Problem::unsupported_media_type(
        "send the import as JSON (Content-Type: application/json) or CSV (Content-Type: text/csv), or either as the file part of multipart/form-data",
    ))
}

/// `dryRun=true` (or `1`) asks for a dry run; `false`, `0` or its absence for an import.
fn is_dry_run(pairs: &[(String, String)]) -> Result<bool, Problem> {
    let mut values = pairs.iter().filter(|(name, _)| name == "dryRun");
    let dry = match values.next().map(|(_, v)| v.as_str()) {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(_) => {
            return Err(Problem::invalid_request(
                "dryRun must be true or false",
                vec![crate::job::request::InvalidParam {
                    pointer: "/dryRun".to_owned(),
                    message: "dryRun must be true or false".to_owned(),
                }],
            ));
        }
    };
    if values.next().is_some() {
        return Err(Problem::invalid_request(
            "the query names dryRun more than once",
            vec![crate::job::request::InvalidParam {
                pointer: "/dryRun".to_owned(),
                message: "duplicate query parameter".to_owned(),
            }],
        ));
    }
    Ok(dry)
}

/// An import's query (or form fields): `importId`, `createdBy`, `delimiter` (one the
/// contract names), `mapping`, `onExisting`, `dryRun`, each at most once; other parameters are
/// ignored, as unknown JSON fields are.
fn query_options(
    pairs: Vec<(String, String)>,
    charset: Option<String>,
) -> Result<ImportOptions, Problem> {
    let mut options = ImportOptions {
        charset,
        dry_run: is_dry_run(&pairs)?,
        ..ImportOptions::default()
    };
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "importId" => &mut options.import_id,
            "createdBy" => &mut options.created_by,
            "delimiter" => &mut options.delimiter,
            "mapping" => &mut options.mapping,
            "onExisting" => &mut options.on_existing,
            "callbackUrl" => &mut options.callback_url,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Problem::invalid_request(
                format!("the query names {name} more than once"),
                vec![crate::job::request::InvalidParam {
                    pointer: format!("/{name}"),
                    message: "duplicate query parameter".to_owned(),
                }],
            ));
        }
    }
    if let Some(Err(message)) = options
        .delimiter
        .as_deref()
        .map(crate::job::csv_request::delimiter_named)
    {
        return Err(Problem::invalid_request(
            "the query's delimiter is not one of , ; or tab",
            vec![crate::job::request::InvalidParam {
                pointer: "/delimiter".to_owned(),
                message,
            }],
        ));
    }
    Ok(options)
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
