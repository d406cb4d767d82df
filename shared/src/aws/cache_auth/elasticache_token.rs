//! The ElastiCache IAM auth token signer. Pure (credentials, cache, user and time in, token
//! out), so the tests here can check it byte for byte against a token botocore presigns.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::CacheAuthError;
use crate::aws::db_auth::{DbAuthError, sign_v4};

/// How long an ElastiCache IAM auth token is valid (the `X-Amz-Expires` it is signed with;
/// ElastiCache accepts no longer).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// RFC 3986 unreserved characters stay, everything else is percent-encoded: SigV4's rule,
/// and what botocore does to the query of a presigned URL.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What kind of cache an ARN names: the token says so for a serverless one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// `…:replicationgroup:ID` (cluster mode disabled or enabled).
    ReplicationGroup,
    /// `…:serverlesscache:NAME` (ElastiCache Serverless, always cluster mode).
    ServerlessCache,
}

/// The cache a token is for, from its ARN (`REDIS_IAM_CACHE_ARN`), the same ARN the role's
/// `elasticache:Connect` permission names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheArn {
    region: String,
    kind: CacheKind,
    name: String,
}

impl CacheArn {
    /// `arn:PARTITION:elasticache:REGION:ACCOUNT:replicationgroup:ID` or
    /// `…:serverlesscache:NAME`. ElastiCache keeps ids in lowercase, and the token must name
    /// the cache as ElastiCache does, so the name is lowercased.
    pub fn parse(arn: &str) -> Result<Self, CacheAuthError> {
        let bad = || CacheAuthError::BadCacheArn(arn.to_owned());
        let parts: Vec<&str> = arn.trim().split(':').collect();
        let ["arn", partition, "elasticache", region, account, kind, name] = parts.as_slice()
        else {
            return Err(bad());
        };
        let kind = match *kind {
            "replicationgroup" => CacheKind::ReplicationGroup,
            "serverlesscache" => CacheKind::ServerlessCache,
            _ => return Err(bad()),
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if partition.is_empty() || region.is_empty() || account.is_empty() || !valid_name {
            return Err(bad());
        }
        Ok(CacheArn {
            region: (*region).to_owned(),
            kind,
            name: name.to_ascii_lowercase(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn kind(&self) -> CacheKind {
        self.kind
    }

    /// The replication group id or serverless cache name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Signs an ElastiCache IAM auth token as AWS's documentation does (its Java example, the
/// ElastiCache developer toolkit): a SigV4 query-presigned
/// `GET http://{cache}/?Action=connect&User={user}[&ResourceType=ServerlessCache]` for the
/// service `elasticache` in the cache's region, valid for 900 s from `time`, returned without
/// the `http://`. The session token, if any, is part of the signed query
/// (`X-Amz-Security-Token`). It is the password of `AUTH {user} {token}`.
pub fn generate_elasticache_auth_token(
    credentials: &Credentials,
    cache: &CacheArn,
    user: &str,
    time: SystemTime,
) -> Result<String, CacheAuthError> {
    let mut base = format!(
        "{}/?Action=connect&User={}",
        cache.name,
        utf8_percent_encode(user, QUERY_VALUE)
    );
    if cache.kind == CacheKind::ServerlessCache {
        base.push_str("&ResourceType=ServerlessCache");
    }
    let url = format!("http://{base}");

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    // As for the RDS token: the hash of the empty body is signed, and the only signed header
    // is `host` (the cache name), which the signer takes from the URL.
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| CacheAuthError::Signing(e.to_string()))?;
    let instructions = sign_v4(
        request,
        credentials,
        &cache.region,
        "elasticache",
        time,
        settings,
    )
    .map_err(|e| match e {
        DbAuthError::Signing(reason) => CacheAuthError::Signing(reason),
        other => CacheAuthError::Aws(other),
    })?;

    // botocore's order: the operation's parameters, then the signer's, the signature last.
    // The order is not signed; the string is kept identical to the reference's.
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
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::db_auth::test_inputs::{SESSION_TOKEN, credentials, signing_time};

    // Generated by `python3 scripts/rds_token_reference.py` with botocore 1.43.11 and 1.43.127
    // (the same output; its pure-Python signer, `botocore.auth.get_current_datetime` patched
    // to return 2024-01-01T00:00:00): botocore's `SigV4QueryAuth(credentials, "elasticache",
    // "us-east-1", expires=900)` presigning `GET http://{cache}/` with the query
    // `Action=connect&User=…[&ResourceType=ServerlessCache]`, the request AWS documents as
    // the token (botocore has no ElastiCache token helper of its own).
    const REFERENCE_ELASTICACHE_TOKEN: &str = "lead-import-cache/?Action=connect&User=lead-import-0a1b2c3d4e5f&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Felasticache%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=21539c63d2e1a1a048decf3391c2b6e54b615f8cb28696606f9cd4c5f91b482b";
    const REFERENCE_ELASTICACHE_TOKEN_WITH_SESSION: &str = "lead-import-cache/?Action=connect&User=lead-import-0a1b2c3d4e5f&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Felasticache%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2Fsession%2Btoken%3D%3D&X-Amz-Signature=13b396974c441de89ae70b49b1638fbfd71c7f1ed4e1014131e9bc76ecb4d044";
    const REFERENCE_ELASTICACHE_SERVERLESS_TOKEN: &str = "lead-import-0a1b2c3d4e5f/?Action=connect&User=lead-import-0a1b2c3d4e5f&ResourceType=ServerlessCache&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Felasticache%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2Fsession%2Btoken%3D%3D&X-Amz-Signature=9eab6b85ab4d952d3b3ef569448022226b0ae591f4a393e4e563f3c41d53a947";

    const USER: &str = "lead-import-0a1b2c3d4e5f";

    fn group() -> CacheArn {
        CacheArn::parse(
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:lead-import-cache",
        )
        .unwrap()
    }

    #[test]
    fn replication_group_token_matches_botocore() {
        let token =
            generate_elasticache_auth_token(&credentials(None), &group(), USER, signing_time())
                .unwrap();
        assert_eq!(token, REFERENCE_ELASTICACHE_TOKEN);
        let token = generate_elasticache_auth_token(
            &credentials(Some(SESSION_TOKEN)),
            &group(),
            USER,
            signing_time(),
        )
        .unwrap();
        assert_eq!(token, REFERENCE_ELASTICACHE_TOKEN_WITH_SESSION);
    }

    #[test]
    fn serverless_token_matches_botocore() {
        // Upper case in the ARN: ElastiCache keeps the name in lowercase, as the token must.
        let serverless = CacheArn::parse(
            "arn:aws:elasticache:us-east-1:123456789012:serverlesscache:Lead-Import-0a1b2c3d4e5f",
        )
        .unwrap();
        assert_eq!(serverless.kind(), CacheKind::ServerlessCache);
        let token = generate_elasticache_auth_token(
            &credentials(Some(SESSION_TOKEN)),
            &serverless,
            USER,
            signing_time(),
        )
        .unwrap();
        assert_eq!(token, REFERENCE_ELASTICACHE_SERVERLESS_TOKEN);
    }

    #[test]
    fn cache_arns_are_checked() {
        for bad in [
            "",
            "lead-import-cache",
            "arn:aws:elasticache:us-east-1:123456789012:cluster:lead-import-cache",
            "arn:aws:elasticache:us-east-1:123456789012:user:lead-import",
            "arn:aws:rds:us-east-1:123456789012:replicationgroup:x",
            "arn:aws:elasticache::123456789012:replicationgroup:x",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:a/b",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:x:y",
        ] {
            assert!(
                matches!(CacheArn::parse(bad), Err(CacheAuthError::BadCacheArn(_))),
                "{bad:?} accepted"
            );
        }
        let china =
            CacheArn::parse("arn:aws-cn:elasticache:cn-north-1:123456789012:replicationgroup:g1")
                .unwrap();
        assert_eq!(
            (china.region(), china.kind(), china.name()),
            ("cn-north-1", CacheKind::ReplicationGroup, "g1")
        );
    }
}
