//! Who is calling: the identity API Gateway's authorizer put in the request context.
//!
//! Behind a JWT authorizer the caller is the token's `sub` claim; behind IAM authorization it
//! is the signing principal's ARN. Without an authorizer (the local run, or an API deployed
//! with `Authorizer=NONE`) there is no verified identity and the body's `createdBy` is trusted.
//!
//! With an identity, `createdBy` is taken from it (a body that names someone else is refused
//! with `403`) and a job's status is visible only to the identity that created it: anyone else
//! gets the same `404` as for an unknown id, so job ids cannot be probed.

use crate::domain::CreatedBy;
use crate::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use std::convert::Infallible;

/// The caller of one request, as an axum extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authorizer ran: nobody vouches for the caller.
    Unverified,
    /// An authorizer verified this principal (JWT `sub`, or IAM user ARN / caller id).
    Verified(String),
}

impl Caller {
    /// Reads the identity from a lambda_http request context, if any.
    pub fn from_context(context: Option<&RequestContext>) -> Self {
        let Some(context) = context else {
            return Caller::Unverified;
        };
        #[allow(irrefutable_let_patterns, unreachable_patterns)]
        let authorizer = match context {
            RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref(),
            _ => None,
        };
        let Some(authorizer) = authorizer else {
            return Caller::Unverified;
        };
        let jwt_sub = authorizer
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.claims.get("sub"))
            .filter(|s| !s.trim().is_empty());
        if let Some(sub) = jwt_sub {
            return Caller::Verified(sub.trim().to_owned());
        }
        let iam = authorizer.iam.as_ref().and_then(|iam| {
            [&iam.user_arn, &iam.caller_id, &iam.user_id]
                .into_iter()
                .flatten()
                .find(|s| !s.trim().is_empty())
        });
        match iam {
            Some(principal) => Caller::Verified(without_session(principal.trim()).to_owned()),
            None => Caller::Unverified,
        }
    }

    /// The verified principal as a `createdBy`, if there is one.
    pub fn created_by(&self) -> Result<Option<CreatedBy>, Problem> {
        match self {
            Caller::Unverified => Ok(None),
            Caller::Verified(principal) => CreatedBy::parse(principal).map(Some).map_err(|_| {
                forbidden(
                    "the caller's identity cannot be used as createdBy (too long or malformed)",
                )
            }),
        }
    }

    /// Whether this caller may read a job created by `created_by`.
    pub fn may_see(&self, created_by: &str) -> bool {
        match self {
            Caller::Unverified => true,
            Caller::Verified(principal) => principal == created_by,
        }
    }
}

/// `403`: the request names an identity other than the caller's.
/// An assumed role's ARN names the session too
/// (`arn:aws:sts::123456789012:assumed-role/Importer/session-42`): the principal is the role,
/// so every session of it sees the same jobs, and the ARN stays within `createdBy`'s length.
fn without_session(arn: &str) -> &str {
    match arn.split_once(":assumed-role/") {
        Some((_, role_and_session)) if role_and_session.contains('/') => {
            let cut = arn.len() - role_and_session.len()
                + role_and_session.find('/').unwrap_or(role_and_session.len());
            &arn[..cut]
        }
        _ => arn,
    }
}

pub fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller::from_context(parts.extensions.request_context_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(authorizer: serde_json::Value) -> RequestContext {
        let ctx = serde_json::json!({
            "accountId": "123456789012", "apiId": "abc123", "stage": "$default",
            "requestId": "r", "routeKey": "GET /x", "time": "t", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/x", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "t"},
            "authorizer": authorizer,
        });
        RequestContext::ApiGatewayV2(serde_json::from_value(ctx).unwrap())
    }

    #[test]
    fn no_context_or_no_authorizer_is_unverified() {
        assert_eq!(Caller::from_context(None), Caller::Unverified);
        assert_eq!(
            Caller::from_context(Some(&context(serde_json::Value::Null))),
            Caller::Unverified
        );
    }

    #[test]
    fn jwt_sub_is_the_caller() {
        let ctx =
            context(serde_json::json!({"jwt": {"claims": {"sub": "user-1"}, "scopes": null}}));
        let caller = Caller::from_context(Some(&ctx));
        assert_eq!(caller, Caller::Verified("user-1".into()));
        assert!(caller.may_see("user-1") && !caller.may_see("user-2"));
    }

    #[test]
    fn an_assumed_role_is_the_caller_whatever_the_session() {
        let long_session = format!(
            "arn:aws:sts::123456789012:assumed-role/Importer/{}",
            "s".repeat(64)
        );
        assert_eq!(
            without_session(&long_session),
            "arn:aws:sts::123456789012:assumed-role/Importer"
        );
        assert_eq!(
            without_session("arn:aws:iam::123456789012:user/ada"),
            "arn:aws:iam::123456789012:user/ada"
        );
        assert_eq!(without_session("AIDAEXAMPLE"), "AIDAEXAMPLE");
    }

    #[test]
    fn iam_user_arn_is_the_caller() {
        let ctx = context(
            serde_json::json!({"iam": {"userArn": "arn:aws:iam::123456789012:user/importer", "callerId": "AIDA"}}),
        );
        assert_eq!(
            Caller::from_context(Some(&ctx)),
            Caller::Verified("arn:aws:iam::123456789012:user/importer".into())
        );
    }

    #[test]
    fn an_unusable_identity_is_refused_not_truncated() {
        let caller = Caller::Verified("x".repeat(300));
        assert_eq!(caller.created_by().unwrap_err().status, 403);
    }
}
