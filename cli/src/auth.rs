//! How a request proves who sends it: nothing (the local run), a bearer token (the JWT
//! authorizer), or a SigV4 signature with the caller's AWS login (the IAM authorizer).

use crate::args::{AuthKind, Global};
use crate::failure::{Failure, bad_input};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// API Gateway's signing name: what the IAM authorizer checks signatures for.
const SERVICE: &str = "execute-api";

#[derive(Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Iam {
        credentials: SharedCredentialsProvider,
        region: String,
    },
}

impl Auth {
    /// From the command line: `--auth`/`--sigv4`, else a token when one is given, else none.
    pub async fn from_args(global: &Global) -> Result<Auth, Failure> {
        let kind = if global.sigv4 {
            AuthKind::Iam
        } else {
            global.auth.unwrap_or(if global.token.is_some() {
                AuthKind::Token
            } else {
                AuthKind::None
            })
        };
        match kind {
            AuthKind::None => Ok(Auth::None),
            AuthKind::Token => match global.token.as_deref().map(str::trim) {
                Some(token) if !token.is_empty() => Ok(Auth::Bearer(token.to_owned())),
                _ => Err(bad_input("--auth token needs --token or LEADS_TOKEN")),
            },
            AuthKind::Iam => iam(global.region.clone()).await,
        }
    }

    /// Whether the API takes the caller's identity from the credentials (then `createdBy`
    /// defaults to the caller rather than the local user name).
    pub fn names_the_caller(&self) -> bool {
        !matches!(self, Auth::None)
    }

    /// The headers that authenticate a request of `method` to `url` with `body`.
    pub async fn headers(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Failure> {
        match self {
            Auth::None => Ok(vec![]),
            Auth::Bearer(token) => Ok(vec![("authorization".into(), format!("Bearer {token}"))]),
            Auth::Iam {
                credentials,
                region,
            } => {
                let credentials = credentials.provide_credentials().await.map_err(|e| {
                    bad_input(format!(
                        "no AWS credentials for --auth iam ({e}); run `aws sso login` or set AWS_PROFILE"
                    ))
                })?;
                sigv4_headers(method, url, body, &credentials, region, SystemTime::now())
            }
        }
    }
}

/// The caller's AWS login through aws-config's default chain (environment, profile, SSO,
/// credential_process), over rustls with ring like every other client of the workspace.
async fn iam(region: Option<String>) -> Result<Auth, Failure> {
    use aws_smithy_http_client::{Builder, tls};
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let config = loader.load().await;
    let region = config
        .region()
        .ok_or_else(|| {
            bad_input("--auth iam needs a region: --region, AWS_REGION, or a profile's region")
        })?
        .to_string();
    let credentials = config
        .credentials_provider()
        .ok_or_else(|| bad_input("no AWS credentials provider for --auth iam"))?;
    Ok(Auth::Iam {
        credentials,
        region,
    })
}

/// SigV4 for `execute-api`: the `x-amz-date`, session token and `authorization` headers of a
/// request, signing its host and body.
pub fn sigv4_headers(
    method: &str,
    url: &str,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, Failure> {
    sigv4_headers_for(SERVICE, method, url, body, credentials, region, time)
}

fn sigv4_headers_for(
    service: &str,
    method: &str,
    url: &str,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, Failure> {
    let failed = |e: &dyn std::fmt::Display| bad_input(format!("cannot sign the request: {e}"));
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    // Only the host (from the URL) and the signer's own headers are signed: the HTTP client
    // may add others (user agent, content length) that a signature must not depend on.
    let request = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
        .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| failed(&e))?.into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// AWS's documented example keys (the SigV4 test suite's and the IAM docs').
    fn example_credentials(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    /// `get-vanilla` of AWS's SigV4 test suite: GET / on example.amazonaws.com, service
    /// `service`, us-east-1, 2015-08-30T12:36:00Z; its documented signature.
    #[test]
    fn the_signer_matches_the_aws_test_suite() {
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let headers = sigv4_headers_for(
            "service",
            "GET",
            "https://example.amazonaws.com/",
            b"",
            &example_credentials(None),
            "us-east-1",
            time,
        )
        .unwrap();
        assert_eq!(header(&headers, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&headers, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// An import as the CLI sends it to an IAM-authorized stage: POST with a CSV body and a
    /// query, a session token. The reference is botocore's (`scripts/cli_sigv4_reference.py`).
    #[test]
    fn an_import_is_signed_as_botocore_signs_it() {
        let time = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        let headers = sigv4_headers(
            "POST",
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/leads/import?importId=0123456789abcdef-p0001&createdBy=ann&delimiter=%2C",
            b"email,fullName\nann@example.com,Ann\n",
            &example_credentials(Some("IQoJb3JpZ2luX2VjEXAMPLE/session+token==")),
            "eu-west-1",
            time,
        )
        .unwrap();
        assert_eq!(header(&headers, "x-amz-date"), "20240101T000000Z");
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
        );
        assert_eq!(
            header(&headers, "authorization"),
            REFERENCE_IMPORT_AUTHORIZATION
        );
    }

    const REFERENCE_IMPORT_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=ece773f85622df56d3082cd94018ccbb7d9d2d1859bee886b3792326f03bb831";
}
