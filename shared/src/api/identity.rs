//! Who is calling, read from the identity API Gateway's authorizer put in the request context:
//! behind a JWT authorizer the token's `sub` claim, behind IAM authorization the signing
//! principal's ARN. What an identity allows is [`crate::job::caller`]'s business.
//!
//! It fails closed: only a request with no authorizer context at all (the local run, an API
//! deployed with `Authorizer=NONE`) is [`Caller::Unverified`]. An authorizer context that names
//! no usable identity (a JWT without a `sub`, an IAM context without the principal's ARN, an
//! authorizer of a kind this service does not read) is refused with `401`
//! ([`NoIdentity`]), never served as an unverified caller.

use crate::job::caller::Caller;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use super::problem::Problem;

/// An authorizer ran, but its context names nobody this service can use: `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoIdentity {
    #[error("the bearer token has no subject (its sub claim is missing or blank)")]
    JwtWithoutSubject,
    #[error("the request's signer has no principal ARN")]
    IamWithoutArn,
    #[error("the authorizer vouched for no identity this service can read")]
    UnknownAuthorizer,
}

/// Reads the identity from a lambda_http request context, if any.
pub fn caller_from_context(context: Option<&RequestContext>) -> Result<Caller, NoIdentity> {
    let Some(context) = context else {
        return Ok(Caller::Unverified);
    };
    #[allow(irrefutable_let_patterns, unreachable_patterns)]
    let authorizer = match context {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref(),
        _ => None,
    };
    let Some(authorizer) = authorizer else {
        return Ok(Caller::Unverified);
    };
    let usable = |s: &&String| !s.trim().is_empty();
    if let Some(jwt) = &authorizer.jwt {
        return match jwt.claims.get("sub").filter(usable) {
            Some(sub) => Ok(Caller::Verified(sub.trim().to_owned())),
            None => Err(NoIdentity::JwtWithoutSubject),
        };
    }
    if let Some(iam) = &authorizer.iam {
        return match [&iam.user_arn, &iam.caller_id]
            .into_iter()
            .flatten()
            .find(usable)
        {
            Some(principal) => Ok(Caller::Verified(
                without_session(principal.trim()).to_owned(),
            )),
            None => Err(NoIdentity::IamWithoutArn),
        };
    }
    Err(NoIdentity::UnknownAuthorizer)
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
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        caller_from_context(parts.extensions.request_context_ref()).map_err(|e| {
            tracing::warn!(reason = %e, "refused a request whose authorizer named no identity");
            Problem::from(e)
        })
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
        assert_eq!(caller_from_context(None), Ok(Caller::Unverified));
        assert_eq!(
            caller_from_context(Some(&context(serde_json::Value::Null))),
            Ok(Caller::Unverified)
        );
    }

    #[test]
    fn jwt_sub_is_the_caller() {
        let ctx =
            context(serde_json::json!({"jwt": {"claims": {"sub": "user-1"}, "scopes": null}}));
        let caller = caller_from_context(Some(&ctx));
        assert_eq!(caller, Ok(Caller::Verified("user-1".into())));
    }

    #[test]
    fn an_authorizer_without_a_usable_identity_fails_closed() {
        let refused = |authorizer| caller_from_context(Some(&context(authorizer)));
        for claims in [
            serde_json::json!({"iss": "https://issuer.example"}),
            serde_json::json!({"sub": ""}),
            serde_json::json!({"sub": "  "}),
        ] {
            assert_eq!(
                refused(serde_json::json!({"jwt": {"claims": claims, "scopes": null}})),
                Err(NoIdentity::JwtWithoutSubject)
            );
        }
        for iam in [
            serde_json::json!({"accountId": "123456789012"}),
            serde_json::json!({"userArn": " ", "callerId": "", "userId": "AIDAEXAMPLE"}),
        ] {
            assert_eq!(
                refused(serde_json::json!({ "iam": iam })),
                Err(NoIdentity::IamWithoutArn)
            );
        }
        assert_eq!(
            refused(serde_json::json!({"lambda": {"tenant": "t-1"}})),
            Err(NoIdentity::UnknownAuthorizer)
        );
        assert_eq!(
            refused(serde_json::json!({})),
            Err(NoIdentity::UnknownAuthorizer)
        );
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
            Ok(Caller::Verified(
                "arn:aws:iam::123456789012:user/importer".into()
            ))
        );
    }
}
