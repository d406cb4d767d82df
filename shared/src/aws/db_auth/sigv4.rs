//! SigV4 signing with `aws-sigv4` (the SDK's own signer): the one step the RDS auth token and
//! the Secrets Manager call share. They differ only in the service name and where the
//! signature goes (query string for the token, headers for the API call).

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableRequest, SigningInstructions, SigningSettings, sign};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::DbAuthError;

/// Signs `request` for `service` in `region` at `time`; returns what to add to the request.
pub(crate) fn sign_v4(
    request: SignableRequest<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<SigningInstructions, DbAuthError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(signing_error)?
        .into();
    let (instructions, _signature) = sign(request, &params).map_err(signing_error)?.into_parts();
    Ok(instructions)
}

/// RFC 3986 unreserved characters stay, everything else is percent-encoded: SigV4's rule,
/// and what botocore does to the query of a presigned URL.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A presigned token (RDS, ElastiCache): `base` (host and the operation's query) followed by
/// the signer's parameters in botocore's order, the signature last. The order is not signed;
/// it is kept so that the string is identical to the reference's.
pub(crate) fn presigned_token(base: String, instructions: &SigningInstructions) -> String {
    let params = instructions.params();
    let (signature, auth): (Vec<_>, Vec<_>) = params
        .iter()
        .partition(|(name, _)| *name == "X-Amz-Signature");
    let mut token = base;
    for (name, value) in auth.into_iter().chain(signature) {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    token
}

pub(super) fn signing_error(e: impl fmt::Display) -> DbAuthError {
    DbAuthError::Signing(e.to_string())
}
