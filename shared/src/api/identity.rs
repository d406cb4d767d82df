//! Who is calling, read from the identity API Gateway's authorizer put in the request context:
//! behind a JWT authorizer the token's `sub` claim, behind IAM authorization the signing
//! principal's ARN. What an identity allows is [`crate::job::caller`]'s business.

use crate::job::caller::Caller;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use std::convert::Infallible;

/// Reads the identity from a lambda_http request context, if any.
pub fn caller_from_context(context: Option<&RequestContext>) -> Caller {
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

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(caller_from_context(parts.extensions.request_context_ref()))
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
        assert_eq!(caller_from_context(None), Caller::Unverified);
        assert_eq!(
            caller_from_context(Some(&context(serde_json::Value::Null))),
            Caller::Unverified
        );
    }

    #[test]
    fn jwt_sub_is_the_caller() {
        let ctx =
            context(serde_json::json!({"jwt": {"claims": {"sub": "user-1"}, "scopes": null}}));
        let caller = caller_from_context(Some(&ctx));
        assert_eq!(caller, Caller::Verified("user-1".into()));
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
            caller_from_context(Some(&ctx)),
            Caller::Verified("arn:aws:iam::123456789012:user/importer".into())
        );
    }
}
