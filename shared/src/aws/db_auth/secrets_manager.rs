//! Fetching the secret: one SigV4-signed `GetSecretValue` POST (JSON 1.1 protocol) sent with
//! hyper, rather than the Secrets Manager SDK client, for the size the module's note measures.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::sigv4::{sign_v4, signing_error};
use super::{AwsIdentity, DbAuthError, RdsSecret, parse_rds_secret};
use crate::postgres::{Credential, CredentialFuture, CredentialSource};

/// Longest wait for Secrets Manager's answer.
const SECRETS_MANAGER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where Secrets Manager answers: `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL`
/// when `lookup` has them (the SDKs' override variables; the tests point it at a fake), else the
/// regional endpoint, which a Secrets Manager interface VPC endpoint with private DNS also
/// answers to.
pub fn secrets_manager_endpoint(region: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| {
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://secretsmanager.{region}.{domain}")
        })
}

/// The signed `GetSecretValue` request (JSON 1.1 protocol), as the SDK would send it.
fn get_secret_value_request(
    credentials: &Credentials,
    region: &str,
    endpoint: &str,
    secret_id: &str,
    time: SystemTime,
) -> Result<http::Request<Bytes>, DbAuthError> {
    let body = serde_json::json!({ "SecretId": secret_id }).to_string();
    let mut request = http::Request::post(format!("{endpoint}/"))
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(Bytes::from(body))
        .map_err(signing_error)?;
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default()));
    let signable = SignableRequest::new(
        "POST",
        request.uri().to_string(),
        headers,
        SignableBody::Bytes(request.body()),
    )
    .map_err(signing_error)?;
    let instructions = sign_v4(
        signable,
        credentials,
        region,
        "secretsmanager",
        time,
        SigningSettings::default(),
    )?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

/// Reads a Secrets Manager secret (ARN or name) in the RDS JSON format with one signed
/// `GetSecretValue` call to `endpoint` ([`secrets_manager_endpoint`]). Needs
/// `secretsmanager:GetSecretValue` on it (and `kms:Decrypt` for a customer managed key) and a
/// route to Secrets Manager (NAT or VPC endpoint).
pub async fn read_rds_secret(
    identity: &AwsIdentity,
    endpoint: &str,
    secret_id: &str,
) -> Result<RdsSecret, DbAuthError> {
    parse_rds_secret(&read_secret_string(identity, endpoint, secret_id).await?)
}

/// A secret's `SecretString`, read as [`read_rds_secret`] reads one (the webhook signing
/// secret is one such string).
pub async fn read_secret_string(
    identity: &AwsIdentity,
    endpoint: &str,
    secret_id: &str,
) -> Result<String, DbAuthError> {
    let credentials = identity.credentials().await?;
    let request = get_secret_value_request(
        &credentials,
        identity.region(),
        endpoint,
        secret_id,
        SystemTime::now(),
    )?;
    get_secret_string(request).await
}

/// A secret's username and password are used for this long before the secret is read again
/// (and at once when the database refuses them), so a rotation reaches new connections within
/// minutes even before the old password stops working.
pub const SECRET_RENEW_AFTER: Duration = Duration::from_secs(300);

/// The Store's credential from a Secrets Manager secret in the RDS JSON format: its username
/// and password (the host stays `DATABASE_URL`'s: it may be an RDS Proxy in front of the
/// database).
pub struct SecretSource {
    identity: AwsIdentity,
    endpoint: String,
    secret_id: String,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("region", &self.identity.region())
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretSource {
    pub fn new(identity: AwsIdentity, endpoint: String, secret_id: String) -> Self {
        SecretSource {
            identity,
            endpoint,
            secret_id,
        }
    }

    async fn read(&self) -> Result<Credential, DbAuthError> {
        let secret = read_rds_secret(&self.identity, &self.endpoint, &self.secret_id).await?;
        tracing::debug!(secret_id = %self.secret_id, "read the database secret");
        Ok(Credential {
            username: Some(secret.username),
            password: secret.password,
            renew_after: SECRET_RENEW_AFTER,
            valid_for: None,
        })
    }
}

impl CredentialSource for SecretSource {
    fn fetch(&self) -> CredentialFuture<'_> {
        Box::pin(self.read())
    }
}

async fn get_secret_string(request: http::Request<Bytes>) -> Result<String, DbAuthError> {
    let failed = |what: String| DbAuthError::SecretsManager(what);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| failed(format!("TLS setup: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let request = request.map(http_body_util::Full::new);
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| failed(format!("request failed: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        Ok::<_, DbAuthError>((status, body.to_bytes()))
    };
    let (status, body) = tokio::time::timeout(SECRETS_MANAGER_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            failed(format!(
                "no answer within {} s",
                SECRETS_MANAGER_TIMEOUT.as_secs()
            ))
        })??;

    if !status.is_success() {
        // `{"__type": "...#AccessDeniedException", "message": "..."}`: names, never a value.
        #[derive(serde::Deserialize)]
        struct AwsError {
            #[serde(rename = "__type")]
            kind: Option<String>,
            #[serde(alias = "Message")]
            message: Option<String>,
        }
        let error = serde_json::from_slice::<AwsError>(&body).ok();
        let kind = error
            .as_ref()
            .and_then(|e| e.kind.as_deref())
            .map(|k| k.rsplit('#').next().unwrap_or(k));
        let message = error.as_ref().and_then(|e| e.message.as_deref());
        return Err(failed(format!(
            "GetSecretValue answered {status}: {}{}",
            kind.unwrap_or("unknown error"),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )));
    }
    #[derive(serde::Deserialize)]
    struct GetSecretValueOutput {
        #[serde(rename = "SecretString")]
        secret_string: Option<String>,
    }
    serde_json::from_slice::<GetSecretValueOutput>(&body)
        .map_err(|_| failed("GetSecretValue answered something that is not its JSON".into()))?
        .secret_string
        .ok_or_else(|| {
            DbAuthError::SecretFormat(
                "the secret has no SecretString (binary secrets are not supported)".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::db_auth::test_inputs::{REGION, SESSION_TOKEN, credentials, signing_time};

    // Generated by `python3 scripts/rds_token_reference.py`, like the RDS tokens: botocore's
    // SigV4Auth("secretsmanager") on the GetSecretValue request that get_secret_value_request
    // builds (same two headers, same compact JSON body), at the same time.
    const SECRET_ID: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:leads/db-AbCdEf";
    const REFERENCE_GET_SECRET_VALUE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=779cbc284e465691646f621a800c69ef8bbac6495fbaef181380c4f669cc7158";

    #[test]
    fn get_secret_value_is_signed_like_botocore() {
        let request = get_secret_value_request(
            &credentials(Some(SESSION_TOKEN)),
            REGION,
            "https://secretsmanager.us-east-1.amazonaws.com",
            SECRET_ID,
            signing_time(),
        )
        .unwrap();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("authorization").as_deref(),
            Some(REFERENCE_GET_SECRET_VALUE_AUTHORIZATION)
        );
        assert_eq!(header("x-amz-date").as_deref(), Some("20240101T000000Z"));
        assert_eq!(
            header("x-amz-security-token").as_deref(),
            Some(SESSION_TOKEN)
        );
        assert_eq!(
            request.uri(),
            "https://secretsmanager.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            &request.body()[..],
            format!(r#"{{"SecretId":"{SECRET_ID}"}}"#).as_bytes()
        );
    }

    /// A one-shot HTTP server on loopback answering `status` and `body`; yields the request.
    async fn fake_secrets_manager(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if received.len() >= end + 4 + length {
                        break;
                    }
                }
                assert!(n > 0, "the client closed early");
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8(received).unwrap()
        });
        (endpoint, server)
    }

    #[tokio::test]
    async fn reads_a_secret_from_secrets_manager() {
        let (endpoint, server) = fake_secrets_manager(
            "200 OK",
            r#"{"ARN":"arn","Name":"leads/db","SecretString":"{\"username\":\"lead_import\",\"password\":\"s3cr3t\",\"port\":5432}","VersionId":"v1"}"#,
        )
        .await;
        let creds = credentials(Some(SESSION_TOKEN));
        let request =
            get_secret_value_request(&creds, REGION, &endpoint, SECRET_ID, SystemTime::now())
                .unwrap();
        let secret = parse_rds_secret(&get_secret_string(request).await.unwrap()).unwrap();
        assert_eq!(
            (
                secret.username.as_str(),
                secret.password.as_str(),
                secret.port
            ),
            ("lead_import", "s3cr3t", Some(5432))
        );
        let sent = server.await.unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("post / http/1.1\r\n"), "{sent}");
        for expected in [
            "x-amz-target: secretsmanager.getsecretvalue",
            "content-type: application/x-amz-json-1.1",
            "authorization: aws4-hmac-sha256 credential=akidexample/",
            "x-amz-security-token: ",
            "host: 127.0.0.1:",
        ] {
            assert!(sent.contains(expected), "{expected} missing from {sent}");
        }
    }

    #[tokio::test]
    async fn secrets_manager_errors_name_the_cause() {
        let (endpoint, _server) = fake_secrets_manager(
            "400 Bad Request",
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        )
        .await;
        let request = get_secret_value_request(
            &credentials(None),
            REGION,
            &endpoint,
            SECRET_ID,
            SystemTime::now(),
        )
        .unwrap();
        let err = get_secret_string(request).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "could not read the database secret: GetSecretValue answered 400 Bad Request: ResourceNotFoundException: Secrets Manager can't find the specified secret."
        );
    }

    #[test]
    fn secrets_manager_endpoints() {
        let none = |_: &str| None;
        assert_eq!(
            secrets_manager_endpoint("eu-west-1", none),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            secrets_manager_endpoint("cn-north-1", none),
            "https://secretsmanager.cn-north-1.amazonaws.com.cn"
        );
        let overridden = |name: &str| {
            (name == "AWS_ENDPOINT_URL_SECRETS_MANAGER").then(|| "http://127.0.0.1:4566/ ".into())
        };
        assert_eq!(
            secrets_manager_endpoint("eu-west-1", overridden),
            "http://127.0.0.1:4566"
        );
    }
}
