//! Why a command stopped, and the exit code each reason gives (docs/cli.md lists them).

use std::fmt;

/// 0: done, and every lead was created, updated or skipped.
pub const OK: i32 = 0;
/// Done, but some leads failed, or an import ended `failed` or `cancelled`.
pub const LEADS_FAILED: i32 = 1;
/// A bad command line or an unreadable file (clap's own usage errors are 2 as well).
pub const BAD_INPUT: i32 = 2;
/// The API refused a request; its problem was shown.
pub const REFUSED: i32 = 3;
/// The API could not be reached, even after retries, or answered what the contract does not say.
pub const UNREACHABLE: i32 = 4;
/// Ctrl-C (SIGINT) during an import: 128 + 2, as shells report it.
pub const INTERRUPTED: i32 = 130;

#[derive(Debug)]
pub enum Failure {
    /// The command line or the file.
    BadInput(String),
    /// An RFC 9457 problem (or API Gateway's own refusal).
    Refused(Problem),
    /// Network errors and busy answers past the retries, or an answer that makes no sense.
    Unreachable(String),
    /// Ctrl-C during an import.
    Interrupted,
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::BadInput(_) => BAD_INPUT,
            Failure::Refused(_) => REFUSED,
            Failure::Unreachable(_) => UNREACHABLE,
            Failure::Interrupted => INTERRUPTED,
        }
    }

    /// Title and detail, as the error event carries them.
    pub fn parts(&self) -> (String, String) {
        match self {
            Failure::BadInput(detail) => ("Bad input".into(), detail.clone()),
            Failure::Refused(p) => (p.title.clone(), p.detail_with_params()),
            Failure::Unreachable(detail) => ("API unreachable".into(), detail.clone()),
            Failure::Interrupted => (
                "Interrupted".into(),
                "the parts the API took are kept: run the same command again to resume".into(),
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (title, detail) = self.parts();
        if detail.is_empty() {
            write!(f, "{title}")
        } else {
            write!(f, "{title}: {detail}")
        }
    }
}

impl std::error::Error for Failure {}

pub fn bad_input(detail: impl Into<String>) -> Failure {
    Failure::BadInput(detail.into())
}

/// An API refusal, from its problem+json body (or API Gateway's `{"message"}`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<InvalidParam>,
    /// API Gateway's own refusals carry only this.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct InvalidParam {
    pub pointer: String,
    pub message: String,
}

impl Problem {
    /// Reads a refusal's body; anything else is described, never echoed (it could be a page of
    /// HTML, or hold what should not reach a log).
    pub fn from_answer(status: u16, content_type: &str, body: &[u8]) -> Problem {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error");
        let parsed = content_type
            .contains("json")
            .then(|| serde_json::from_slice::<Problem>(body).ok())
            .flatten();
        let mut problem = parsed.unwrap_or_else(|| Problem {
            detail: format!(
                "the API answered {status} with {} bytes of {}",
                body.len(),
                if content_type.is_empty() {
                    "an untyped body"
                } else {
                    content_type
                }
            ),
            ..Problem::default()
        });
        problem.status = status;
        if problem.title.is_empty() {
            problem.title = format!("{status} {reason}");
        }
        if let Some(message) = problem.message.take().filter(|_| problem.detail.is_empty()) {
            problem.detail = message;
        }
        problem
    }

    /// The detail, then each invalid parameter (`/pointer: message`).
    pub fn detail_with_params(&self) -> String {
        let mut text = self.detail.clone();
        for e in &self.errors {
            text.push_str(&format!("\n  {}: {}", e.pointer, e.message));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_shows_title_detail_and_params() {
        let body = br#"{"type":"x","title":"Invalid request","status":400,"detail":"the import request is invalid","errors":[{"pointer":"/email","message":"no email column"}]}"#;
        let p = Problem::from_answer(400, "application/problem+json", body);
        assert_eq!(
            Failure::Refused(p).to_string(),
            "Invalid request: the import request is invalid\n  /email: no email column"
        );
    }

    #[test]
    fn a_gateway_message_and_a_page_of_html_are_described() {
        let p = Problem::from_answer(403, "application/json", br#"{"message":"Forbidden"}"#);
        assert_eq!(
            (p.title.as_str(), p.detail.as_str()),
            ("403 Forbidden", "Forbidden")
        );
        let p = Problem::from_answer(502, "text/html", b"<html>secret</html>");
        assert_eq!(p.title, "502 Bad Gateway");
        assert!(!p.detail.contains("secret"), "{}", p.detail);
    }
}
