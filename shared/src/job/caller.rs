//! Who is calling, and what that allows.
//!
//! Behind an authorizer the caller is verified (a JWT's `sub`, an IAM principal's ARN); the API
//! edge reads it from the request context (`api::identity`), and refuses (`401`) a request whose
//! authorizer context names nobody usable: there is no way from an authorizer to an unverified
//! caller. Only without any authorizer (the local run, or an API deployed with
//! `Authorizer=NONE`) does nobody vouch for the caller, and the body's `createdBy` is trusted.
//!
//! With an identity, `createdBy` is taken from it (a body that names someone else is refused)
//! and a job is visible only to the identity that created it: anyone else is told the same as
//! for an unknown id, so job ids cannot be probed.

use crate::domain::CreatedBy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authorizer ran at all (the local run, `Authorizer=NONE`): nobody vouches for the
    /// caller. Never the result of an authorizer context that lacks an identity.
    Unverified,
    /// An authorizer verified this principal (JWT `sub`, or IAM user ARN / caller id).
    Verified(String),
}

/// The verified identity is too long or malformed to be stored as `createdBy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the caller's identity cannot be used as createdBy (too long or malformed)")]
pub struct UnusableIdentity;

impl Caller {
    /// The verified principal as a `createdBy`, if there is one.
    pub fn created_by(&self) -> Result<Option<CreatedBy>, UnusableIdentity> {
        match self {
            Caller::Unverified => Ok(None),
            Caller::Verified(principal) => CreatedBy::parse(principal)
                .map(Some)
                .map_err(|_| UnusableIdentity),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_caller_sees_only_its_own_jobs() {
        let caller = Caller::Verified("user-1".into());
        assert!(caller.may_see("user-1") && !caller.may_see("user-2"));
        assert!(Caller::Unverified.may_see("anyone"));
    }

    #[test]
    fn an_unusable_identity_is_refused_not_truncated() {
        assert_eq!(
            Caller::Verified("x".repeat(300)).created_by(),
            Err(UnusableIdentity)
        );
        assert_eq!(Caller::Unverified.created_by(), Ok(None));
    }
}
