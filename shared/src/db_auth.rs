//! How the functions authenticate to Postgres on AWS, chosen by `DATABASE_AUTH`:
//!
//! - `password` (the default, for the local run): `DATABASE_URL` carries the password.
//! - `secret`: `DATABASE_SECRET_ARN` names a Secrets Manager secret in the RDS JSON format
//!   (`{"username", "password", "host", "port", "dbname"}`, or just `username` and `password`
//!   for a secret that RDS manages itself); [`read_rds_secret`] reads it once per cold start.
//! - `iam`: `DATABASE_URL` has no password; an RDS IAM auth token, from [`IamTokenSource`],
//!   is the password. A token is valid for 15 minutes, and is checked only when a connection
//!   opens, so open connections outlive it; new connections need a fresh one.
//!
//! [`generate_rds_auth_token`] is the pure signer: the same token as
//! `aws rds generate-db-auth-token` (botocore's `generate_db_auth_token`), which the tests
//! check byte for byte against botocore's output (`scripts/rds_token_reference.py`).
//!
//! Size: neither `aws-config` nor `aws-sdk-secretsmanager` is used. In a Lambda function the
//! credentials are always the role's, in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN` ([`AwsIdentity::from_lambda_env`]), and `GetSecretValue` is one
//! SigV4-signed JSON POST, signed by `aws-sigv4`, the SDK's own signer. Measured on drain-fn
//! (x86_64, release, stripped): 5.4 MB without this module, 5.8 MB with it, 9.7 MB with
//! `aws_config::load_defaults` and the Secrets Manager SDK client instead. A caller that has
//! an `aws_config::SdkConfig` can still use it ([`AwsIdentity::from_sdk_config`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize as _;

/// How long an RDS IAM auth token is valid (fixed by RDS; the `X-Amz-Expires` it is signed with).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// [`IamTokenSource`] signs a new token once its cached one is this old, well within
/// [`TOKEN_LIFETIME`], so a connection opening at the last moment still has minutes to spare.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(600);
/// A token is also renewed when the credentials it was signed with expire within this margin
/// (a token signed with temporary credentials dies with them).
const CREDENTIALS_EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Longest wait for Secrets Manager's answer.
const SECRETS_MANAGER_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 3986 unreserved characters stay, everything else is percent-encoded: SigV4's rule,
/// and what botocore does to the query of a presigned URL.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum DbAuthError {
    #[error("DATABASE_AUTH must be one of password, secret, iam, got {0:?}")]
    UnknownMode(String),
    #[error("DATABASE_AUTH=secret needs DATABASE_SECRET_ARN")]
    MissingSecretArn,
    #[error("no AWS region configured (AWS_REGION)")]
    MissingRegion,
    #[error("no AWS credentials provider configured")]
    MissingCredentialsProvider,
    #[error("no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")]
    MissingCredentials,
    #[error("could not load AWS credentials: {0}")]
    Credentials(String),
    #[error("could not sign the RDS auth token: {0}")]
    Signing(String),
    #[error("could not read the database secret: {0}")]
    SecretsManager(String),
    /// Never carries any part of the secret's value.
    #[error("the database secret is not in the RDS JSON format: {0}")]
    SecretFormat(String),
}

/// The `DATABASE_AUTH` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseAuth {
    /// `DATABASE_URL` carries the password (local runs and tests).
    Password,
    /// Username and password come from this Secrets Manager secret (`DATABASE_SECRET_ARN`).
    Secret { secret_id: String },
    /// The password is an RDS IAM auth token for `DATABASE_URL`'s host, port and user.
    Iam,
}

impl DatabaseAuth {
    pub fn from_env() -> Result<Self, DbAuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads `DATABASE_AUTH` (default `password`) and, for `secret`, `DATABASE_SECRET_ARN`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbAuthError> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match var("DATABASE_AUTH")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("password") => Ok(Self::Password),
            Some("iam") => Ok(Self::Iam),
            Some("secret") => var("DATABASE_SECRET_ARN")
                .map(|secret_id| Self::Secret { secret_id })
                .ok_or(DbAuthError::MissingSecretArn),
            Some(_) => Err(DbAuthError::UnknownMode(
                lookup("DATABASE_AUTH").unwrap_or_default(),
            )),
        }
    }
}

/// Signs an RDS IAM auth token exactly as botocore's `generate_db_auth_token` does: a SigV4
/// query-presigned `GET https://{host}:{port}/?Action=connect&DBUser={user}` for the service
/// `rds-db`, valid for 900 s from `time`, returned without the `https://` scheme.
/// The session token, if any, is part of the signed query (`X-Amz-Security-Token`).
pub fn generate_rds_auth_token(
    credentials: &Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    time: SystemTime,
) -> Result<String, DbAuthError> {
    let signing_error = |e: &dyn fmt::Display| DbAuthError::Signing(e.to_string());
    let base = format!(
        "{host}:{port}/?Action=connect&DBUser={}",
        utf8_percent_encode(user, QUERY_VALUE)
    );
    let url = format!("https://{base}");

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    // botocore signs the hash of the empty body (not `UNSIGNED-PAYLOAD`, as S3 presigning
    // does); the only signed header is `host` (`host:port`, the port being non-default for
    // https), which the signer takes from the URL.
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();

    // botocore's order: the operation's parameters, then Algorithm, Credential, Date, Expires,
    // SignedHeaders, Security-Token (the signer's order), and the signature last (the signer
    // puts it before the session token). The order is not signed; the string is kept identical.
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

/// Where to sign for: a region and a source of credentials.
#[derive(Clone)]
pub struct AwsIdentity {
    region: String,
    credentials: SharedCredentialsProvider,
}

impl fmt::Debug for AwsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsIdentity")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsIdentity {
    pub fn new(region: impl Into<String>, credentials: SharedCredentialsProvider) -> Self {
        Self {
            region: region.into(),
            credentials,
        }
    }

    /// A Lambda execution environment's: `AWS_REGION` and the function role's credentials,
    /// which Lambda puts in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` for the environment's whole life.
    pub fn from_lambda_env() -> Result<Self, DbAuthError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbAuthError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or(DbAuthError::MissingRegion)?;
        let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(DbAuthError::MissingCredentials);
        };
        let credentials =
            Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment");
        Ok(Self::new(
            region,
            SharedCredentialsProvider::new(credentials),
        ))
    }

    /// The region and credentials chain of a loaded `aws_config::SdkConfig`, e.g. from
    /// `aws_config::load_defaults(BehaviorVersion::latest())` in a tool run outside Lambda.
    pub fn from_sdk_config(config: &aws_types::SdkConfig) -> Result<Self, DbAuthError> {
        let region = config.region().ok_or(DbAuthError::MissingRegion)?;
        let credentials = config
            .credentials_provider()
            .ok_or(DbAuthError::MissingCredentialsProvider)?;
        Ok(Self::new(region.as_ref(), credentials))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub async fn credentials(&self) -> Result<Credentials, DbAuthError> {
        self.credentials.provide_credentials().await.map_err(|e| {
            DbAuthError::Credentials(
                aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
            )
        })
    }
}

/// Hands out RDS IAM auth tokens for one database user, signing a new one when the cached one
/// is [`TOKEN_RENEW_AFTER`] old (or its credentials are about to expire). Cheap to call before
/// every connection attempt; share it with an `Arc`.
pub struct IamTokenSource {
    identity: AwsIdentity,
    host: String,
    port: u16,
    user: String,
    renew_after: Duration,
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: Arc<str>,
    renew_at: Instant,
}

impl fmt::Debug for IamTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamTokenSource")
            .field("region", &self.identity.region)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl IamTokenSource {
    pub fn new(identity: AwsIdentity, host: &str, port: u16, user: &str) -> Self {
        Self {
            identity,
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            renew_after: TOKEN_RENEW_AFTER,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Signs with the Lambda environment's region and role ([`AwsIdentity::from_lambda_env`]).
    pub fn from_lambda_env(host: &str, port: u16, user: &str) -> Result<Self, DbAuthError> {
        Ok(Self::new(AwsIdentity::from_lambda_env()?, host, port, user))
    }

    /// Changes how old a cached token may get (at most [`TOKEN_LIFETIME`]).
    pub fn with_renew_after(mut self, renew_after: Duration) -> Self {
        self.renew_after = renew_after.min(TOKEN_LIFETIME);
        self
    }

    /// A token valid for at least `TOKEN_LIFETIME - renew_after` (5 minutes by default).
    pub async fn token(&self) -> Result<Arc<str>, DbAuthError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(c) = cached.as_ref().filter(|c| now < c.renew_at) {
            return Ok(c.token.clone());
        }
        let credentials = self.identity.credentials().await?;
        let signed_at = SystemTime::now();
        let token: Arc<str> = generate_rds_auth_token(
            &credentials,
            &self.identity.region,
            &self.host,
            self.port,
            &self.user,
            signed_at,
        )?
        .into();
        let mut valid_for = self.renew_after;
        if let Some(expiry) = credentials.expiry() {
            let left = expiry.duration_since(signed_at).unwrap_or_default();
            valid_for = valid_for.min(left.saturating_sub(CREDENTIALS_EXPIRY_MARGIN));
        }
        tracing::debug!(host = %self.host, user = %self.user, renew_in_s = valid_for.as_secs(), "signed an RDS IAM auth token");
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: now + valid_for,
        });
        Ok(token)
    }
}

/// An RDS database secret. A secret that RDS manages itself (`ManageMasterUserPassword`) holds
/// only `username` and `password`; the others are present in secrets made for a database by
/// the Secrets Manager console or rotation templates.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RdsSecret {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "port_number_or_string")]
    pub port: Option<u16>,
    #[serde(default)]
    pub dbname: Option<String>,
}

impl fmt::Debug for RdsSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdsSecret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

fn port_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("port is not a port number")),
    }
}

/// Parses a secret string in the RDS JSON format. Errors name what is wrong (a missing field,
/// the position of a syntax error) but never echo the secret's contents.
pub fn parse_rds_secret(secret_string: &str) -> Result<RdsSecret, DbAuthError> {
    serde_json::from_str::<RdsSecret>(secret_string).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                // serde's messages for missing fields and our own custom one quote no value;
                // "invalid type"/"invalid value" ones may, so those are reduced to a category.
                let msg = e.to_string();
                if msg.starts_with("missing field") || msg.starts_with("port is not") {
                    msg.split(" at line")
                        .next()
                        .unwrap_or("invalid data")
                        .to_owned()
                } else {
                    "a field has the wrong type (expected strings, and a number or string port)"
                        .to_owned()
                }
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("not valid JSON (line {}, column {})", e.line(), e.column())
            }
            serde_json::error::Category::Io => "unreadable".to_owned(),
        };
        DbAuthError::SecretFormat(what)
    })
}

/// Where Secrets Manager answers: `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL`
/// when set (the SDKs' override variables), else the regional endpoint, which a Secrets
/// Manager interface VPC endpoint with private DNS also answers to.
pub fn secrets_manager_endpoint(region: &str) -> String {
    ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
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
    let signing_error = |e: &dyn fmt::Display| DbAuthError::Signing(e.to_string());
    let body = serde_json::json!({ "SecretId": secret_id }).to_string();
    let mut request = http::Request::post(format!("{endpoint}/"))
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .body(Bytes::from(body))
        .map_err(|e| signing_error(&e))?;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("secretsmanager")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
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
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

/// Reads a Secrets Manager secret (ARN or name) in the RDS JSON format with one signed
/// `GetSecretValue` call. Needs `secretsmanager:GetSecretValue` on it (and `kms:Decrypt` for a
/// customer managed key) and a route to Secrets Manager (NAT or VPC endpoint).
pub async fn read_rds_secret(
    identity: &AwsIdentity,
    secret_id: &str,
) -> Result<RdsSecret, DbAuthError> {
    let endpoint = secrets_manager_endpoint(identity.region());
    let credentials = identity.credentials().await?;
    let request = get_secret_value_request(
        &credentials,
        identity.region(),
        &endpoint,
        secret_id,
        SystemTime::now(),
    )?;
    parse_rds_secret(&get_secret_string(request).await?)
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Inputs of scripts/rds_token_reference.py (AWS's documentation example keys).
    const ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/session+token==";
    const REGION: &str = "us-east-1";
    const HOST: &str = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com";
    const PORT: u16 = 5432;
    const USER: &str = "lead_import";
    /// 2024-01-01T00:00:00Z
    const SIGNING_TIME_UNIX: u64 = 1_704_067_200;

    // Generated by `python3 scripts/rds_token_reference.py` with botocore 1.43.127 (its
    // pure-Python signer, BOTO_DISABLE_CRT=true, and `botocore.auth.get_current_datetime`
    // patched to return 2024-01-01T00:00:00), i.e. botocore's
    // `boto3.client("rds").generate_db_auth_token(DBHostname=HOST, Port=5432, DBUsername=...,
    // Region="us-east-1")` for the credentials above, without / with the session token.
    const REFERENCE_TOKEN: &str = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lead_import&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=5bf8cbcf397a40c1d4fca158e7b82d576100d931ec1a4b5603758f86fa799967";
    const REFERENCE_TOKEN_WITH_SESSION: &str = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lead_import&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2Fsession%2Btoken%3D%3D&X-Amz-Signature=1df82b2ff7d4c7f2236a0fca04b206c15cdbfef231bf8da83c2e6d6228858a92";
    const REFERENCE_TOKEN_ODD_USER: &str = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=odd%20user%2B1%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=2fc970bef413c1686e3d469543258d9b2f974cc4c92b24a34d9ea3827d1b86a7";
    // Same script: botocore's SigV4Auth("secretsmanager") on the GetSecretValue request that
    // get_secret_value_request builds (same two headers, same compact JSON body), same time.
    const SECRET_ID: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:leads/db-AbCdEf";
    const REFERENCE_GET_SECRET_VALUE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=779cbc284e465691646f621a800c69ef8bbac6495fbaef181380c4f669cc7158";

    fn credentials(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn signing_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(SIGNING_TIME_UNIX)
    }

    #[test]
    fn token_matches_botocore() {
        let token =
            generate_rds_auth_token(&credentials(None), REGION, HOST, PORT, USER, signing_time())
                .unwrap();
        assert_eq!(token, REFERENCE_TOKEN);
    }

    #[test]
    fn token_with_session_token_matches_botocore() {
        let creds = credentials(Some(SESSION_TOKEN));
        let token =
            generate_rds_auth_token(&creds, REGION, HOST, PORT, USER, signing_time()).unwrap();
        assert_eq!(token, REFERENCE_TOKEN_WITH_SESSION);
    }

    #[test]
    fn user_is_percent_encoded_like_botocore() {
        let token = generate_rds_auth_token(
            &credentials(None),
            REGION,
            HOST,
            PORT,
            "odd user+1@x",
            signing_time(),
        )
        .unwrap();
        assert_eq!(token, REFERENCE_TOKEN_ODD_USER);
    }

    #[test]
    fn database_auth_modes() {
        let from = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            DatabaseAuth::from_lookup(move |k| {
                pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(from(&[]).unwrap(), DatabaseAuth::Password);
        assert_eq!(
            from(&[("DATABASE_AUTH", "IAM")]).unwrap(),
            DatabaseAuth::Iam
        );
        assert_eq!(
            from(&[
                ("DATABASE_AUTH", "secret"),
                ("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:x")
            ])
            .unwrap(),
            DatabaseAuth::Secret {
                secret_id: "arn:aws:secretsmanager:x".into()
            }
        );
        assert!(matches!(
            from(&[("DATABASE_AUTH", "secret")]),
            Err(DbAuthError::MissingSecretArn)
        ));
        assert!(matches!(
            from(&[("DATABASE_AUTH", "kerberos")]),
            Err(DbAuthError::UnknownMode(_))
        ));
    }

    #[test]
    fn parses_rds_secrets() {
        let full = parse_rds_secret(
            r#"{"engine":"postgres","username":"leads","password":"p@ss\"w0rd","host":"db.example","port":5432,"dbname":"leads","dbInstanceIdentifier":"leads-db"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                full.username.as_str(),
                full.password.as_str(),
                full.host.as_deref(),
                full.port,
                full.dbname.as_deref()
            ),
            (
                "leads",
                "p@ss\"w0rd",
                Some("db.example"),
                Some(5432),
                Some("leads")
            )
        );
        let managed = parse_rds_secret(r#"{"username":"postgres","password":"x"}"#).unwrap();
        assert_eq!(
            (managed.host, managed.port, managed.dbname),
            (None, None, None)
        );
        assert_eq!(
            parse_rds_secret(r#"{"username":"u","password":"p","port":"6432"}"#)
                .unwrap()
                .port,
            Some(6432)
        );
        assert!(!format!("{full:?}").contains("w0rd"));
    }

    #[test]
    fn secret_errors_never_echo_the_secret() {
        for bad in [
            r#"{"username":"u"}"#,
            r#"{"username":"u","password":123456789}"#,
            r#"{"username":"u","password":"hunter2","port":"hunter2"}"#,
            r#"{"username":"u","password":"hunter2""#,
            "hunter2",
        ] {
            let err = parse_rds_secret(bad).unwrap_err().to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("123456789"),
                "{err}"
            );
        }
        assert!(
            parse_rds_secret(r#"{"username":"u"}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field `password`")
        );
    }

    #[derive(Debug)]
    struct CountingProvider {
        calls: Arc<AtomicUsize>,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for CountingProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let creds = Credentials::new(
                ACCESS_KEY,
                SECRET_KEY,
                Some(SESSION_TOKEN.into()),
                self.expiry,
                "test",
            );
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(creds))
        }
    }

    fn source(expiry: Option<SystemTime>) -> (IamTokenSource, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(CountingProvider {
            calls: calls.clone(),
            expiry,
        });
        (
            IamTokenSource::new(AwsIdentity::new(REGION, provider), HOST, PORT, USER),
            calls,
        )
    }

    #[tokio::test]
    async fn token_source_caches_until_renewal() {
        let (src, calls) = source(None);
        let first = src.token().await.unwrap();
        let second = src.token().await.unwrap();
        assert_eq!(first, second);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the second call is served from the cache"
        );
        assert!(first.starts_with("leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=lead_import&"));
        assert!(first.contains("X-Amz-Security-Token=") && first.contains("X-Amz-Expires=900"));

        let (src, calls) = source(None);
        let src = src.with_renew_after(Duration::ZERO);
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "an expired cache entry is signed anew"
        );
    }

    #[tokio::test]
    async fn identity_from_sdk_config_and_environment() {
        let config = aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(credentials(None)))
            .build();
        let source = IamTokenSource::new(
            AwsIdentity::from_sdk_config(&config).unwrap(),
            HOST,
            PORT,
            USER,
        );
        let token = source.token().await.unwrap();
        assert!(
            token.contains("X-Amz-Credential=AKIDEXAMPLE%2F")
                && token.contains("%2Fus-east-1%2Frds-db%2Faws4_request")
        );
        let no_region = aws_types::SdkConfig::builder().build();
        assert!(matches!(
            AwsIdentity::from_sdk_config(&no_region),
            Err(DbAuthError::MissingRegion)
        ));

        let env = |pairs: &'static [(&'static str, &'static str)]| {
            AwsIdentity::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let lambda = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ])
        .unwrap();
        assert_eq!(lambda.region(), "eu-west-1");
        let creds = lambda.credentials().await.unwrap();
        assert_eq!(
            (creds.access_key_id(), creds.session_token()),
            (ACCESS_KEY, Some(SESSION_TOKEN))
        );
        assert!(matches!(
            env(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")]),
            Err(DbAuthError::MissingRegion)
        ));
        assert!(matches!(
            env(&[("AWS_REGION", "us-east-1")]),
            Err(DbAuthError::MissingCredentials)
        ));
    }

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
        // The override variables are not set in the test environment.
        if std::env::var_os("AWS_ENDPOINT_URL").is_none()
            && std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_none()
        {
            assert_eq!(
                secrets_manager_endpoint("eu-west-1"),
                "https://secretsmanager.eu-west-1.amazonaws.com"
            );
            assert_eq!(
                secrets_manager_endpoint("cn-north-1"),
                "https://secretsmanager.cn-north-1.amazonaws.com.cn"
            );
        }
    }

    #[tokio::test]
    async fn token_source_renews_before_credentials_expire() {
        // Credentials that expire within the margin: every call signs with fresh ones.
        let (src, calls) = source(Some(SystemTime::now() + Duration::from_secs(120)));
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Credentials valid for hours: cached.
        let (src, calls) = source(Some(SystemTime::now() + Duration::from_secs(6 * 3600)));
        src.token().await.unwrap();
        src.token().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
