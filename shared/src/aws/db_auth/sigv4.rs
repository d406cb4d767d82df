//! SigV4 signing with `aws-sigv4` (the SDK's own signer): the one step the RDS auth token and
//! the Secrets Manager call share. They differ only in the service name and where the
//! signature goes (query string for the token, headers for the API call).

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableRequest, SigningInstructions, SigningSettings, sign};
use aws_sigv4::sign::v4;

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

pub(super) fn signing_error(e: impl fmt::Display) -> DbAuthError {
    DbAuthError::Signing(e.to_string())
}
