//! The unit tests' AWS inputs, shared by the files here and by `cache_auth`'s: those of
//! `scripts/rds_token_reference.py` (AWS's documentation example keys), so that what the tests
//! sign can be compared with what botocore signs.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

pub(crate) const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub(crate) const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub(crate) const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/session+token==";
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const HOST: &str = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com";
pub(crate) const PORT: u16 = 5432;
pub(crate) const USER: &str = "lead_import";
/// 2024-01-01T00:00:00Z
const SIGNING_TIME_UNIX: u64 = 1_704_067_200;

pub(crate) fn credentials(session_token: Option<&str>) -> Credentials {
    Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        session_token.map(str::to_owned),
        None,
        "test",
    )
}

pub(crate) fn signing_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(SIGNING_TIME_UNIX)
}
