//! RFC 9457 problem details: the only shape an error ever leaves the API in.

use super::identity::NoIdentity;
use crate::cancel::CancelError;
use crate::errors_report::ErrorsReportError;
use crate::import::ImportError;
use crate::job::caller::UnusableIdentity;
use crate::job::request::{InvalidParam, RequestError};
use crate::list::ListError;
use crate::retry::RetryError;
use crate::status::StatusError;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One `application/problem+json` body. Built only from fixed text and the caller's own input,
/// never from an internal error, so nothing private can leak through it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InvalidParam>,
    /// A `401`'s `WWW-Authenticate` challenge (a header, not part of the body).
    #[serde(skip)]
    pub challenge: Option<&'static str>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("https://leads.example.com/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            challenge: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<InvalidParam>) -> Self {
        self.errors = errors;
        self
    }

    pub fn invalid_request(detail: impl Into<String>, errors: Vec<InvalidParam>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
        .with_errors(errors)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// A dependency (Redis, Postgres) is down: the caller may retry the same request later.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service unavailable",
            "the import service cannot reach its queue or database right now; retry the same request later",
        )
    }

    /// An authorizer ran but named no identity the service can use (see `api::identity`).
    pub fn unauthorized(detail: impl Into<String>, challenge: &'static str) -> Self {
        Problem {
            challenge: Some(challenge),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
            )
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this resource does not support that method",
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// The body could not be read: over the size limit, or broken off.
    pub fn from_body_rejection(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
                format!(
                    "the body may be at most {} bytes ({} MiB); split the import into smaller requests",
                    super::MAX_BODY_BYTES,
                    super::MAX_BODY_BYTES >> 20
                ),
            ),
            _ => Self::invalid_request("the request body could not be read", vec![]),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

// Every use case's errors as HTTP answers, in one place. The texts are the use cases' own
// (built from fixed words and the caller's input); an unavailable store's error was logged
// where it happened and is never shown.

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Invalid { detail, errors } => Problem::invalid_request(detail, errors),
            e @ RequestError::TooManyLeads { .. } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-many-leads",
                "Too many leads",
                e.to_string(),
            ),
            e @ RequestError::NotTheCaller => Problem::forbidden(e.to_string()),
        }
    }
}

impl From<NoIdentity> for Problem {
    fn from(e: NoIdentity) -> Self {
        let challenge = match e {
            NoIdentity::IamWithoutArn => "AWS4-HMAC-SHA256",
            NoIdentity::JwtWithoutSubject | NoIdentity::UnknownAuthorizer => {
                "Bearer error=\"invalid_token\""
            }
        };
        Problem::unauthorized(e.to_string(), challenge)
    }
}

impl From<UnusableIdentity> for Problem {
    fn from(e: UnusableIdentity) -> Self {
        Problem::forbidden(e.to_string())
    }
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Request(e) => e.into(),
            ImportError::Identity(e) => e.into(),
            ImportError::Conflict(import_id) => Problem::new(
                StatusCode::CONFLICT,
                "import-id-conflict",
                "Import id already used",
                format!(
                    "import {import_id} exists with different content; choose another importId"
                ),
            ),
            ImportError::Unavailable { .. } => Problem::unavailable(),
        }
    }
}

impl From<StatusError> for Problem {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::InvalidId(message) => invalid_id(message),
            e @ StatusError::NotFound(_) => Problem::not_found(e.to_string()),
            StatusError::Unavailable(_) => Problem::unavailable(),
        }
    }
}

fn invalid_id(message: String) -> Problem {
    Problem::invalid_request(
        message,
        vec![InvalidParam {
            pointer: "/importId".into(),
            message: "not a valid import id".into(),
        }],
    )
}

fn invalid_param(name: &str, message: String) -> Problem {
    Problem::invalid_request(
        message.clone(),
        vec![InvalidParam {
            pointer: format!("/{name}"),
            message,
        }],
    )
}

impl From<ErrorsReportError> for Problem {
    fn from(e: ErrorsReportError) -> Self {
        match e {
            ErrorsReportError::InvalidId(message) => invalid_id(message),
            e @ ErrorsReportError::InvalidCursor => invalid_param("cursor", e.to_string()),
            e @ ErrorsReportError::NotFound(_) => Problem::not_found(e.to_string()),
            ErrorsReportError::Unavailable(_) => Problem::unavailable(),
        }
    }
}

impl From<CancelError> for Problem {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::InvalidId(message) => invalid_id(message),
            e @ CancelError::NotFound(_) => Problem::not_found(e.to_string()),
            e @ CancelError::Finished(_) => Problem::new(
                StatusCode::CONFLICT,
                "import-finished",
                "Import finished",
                e.to_string(),
            ),
            CancelError::Unavailable(_) => Problem::unavailable(),
        }
    }
}

impl From<RetryError> for Problem {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::InvalidId(message) => invalid_id(message),
            e @ RetryError::NotFound(_) => Problem::not_found(e.to_string()),
            e @ RetryError::Unfinished(_) => Problem::new(
                StatusCode::CONFLICT,
                "import-unfinished",
                "Import unfinished",
                e.to_string(),
            ),
            e @ RetryError::NothingToRetry(_) => Problem::new(
                StatusCode::CONFLICT,
                "nothing-to-retry",
                "Nothing to retry",
                e.to_string(),
            ),
            RetryError::Import(e) => e.into(),
            RetryError::Unavailable(_) => Problem::unavailable(),
        }
    }
}

impl From<ListError> for Problem {
    fn from(e: ListError) -> Self {
        match e {
            e @ ListError::InvalidState => invalid_param("state", e.to_string()),
            e @ ListError::InvalidCursor => invalid_param("cursor", e.to_string()),
            e @ ListError::InvalidCreatedBy(_) => invalid_param("createdBy", e.to_string()),
            e @ ListError::NotTheCaller => Problem::forbidden(e.to_string()),
            ListError::Identity(e) => e.into(),
            ListError::Unavailable(_) => Problem::unavailable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_names_its_challenge_and_says_no_more_than_why() {
        for (cause, challenge) in [
            (
                NoIdentity::JwtWithoutSubject,
                "Bearer error=\"invalid_token\"",
            ),
            (NoIdentity::IamWithoutArn, "AWS4-HMAC-SHA256"),
            (
                NoIdentity::UnknownAuthorizer,
                "Bearer error=\"invalid_token\"",
            ),
        ] {
            let response = Problem::from(cause).into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            let header = |name| response.headers().get(name).unwrap().to_str().unwrap();
            assert_eq!(header(header::WWW_AUTHENTICATE), challenge);
            assert_eq!(header(header::CONTENT_TYPE), "application/problem+json");
        }
        assert!(
            Problem::forbidden("x")
                .into_response()
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .is_none()
        );
    }
}
