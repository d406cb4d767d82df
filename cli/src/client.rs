//! The API's HTTP client: one base URL, one way to authenticate, and the retry rule: network
//! errors and busy answers (`429`, `502`, `503`, `504`) are sent again with exponential
//! backoff (or the answer's `Retry-After`), and each retry is said. Refusals come back as
//! their problem, never as a raw body.

use crate::auth::Auth;
use crate::events::{Event, Output};
use crate::failure::{Failure, Problem, bad_input};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, Response, StatusCode, Url};
use std::time::Duration;

/// Everything but RFC 3986's unreserved characters is escaped in a query.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The first retry's delay; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL without its trailing `/` (a stage's `ApiUrl` ends with one).
    base: String,
    auth: Auth,
    output: Output,
    /// Sends of one request, the first included.
    attempts: u32,
}

/// Whether a request may reach the API twice without harm. An import (same id, same body)
/// and a cancel may; a retry of failures may not (each would start a child import), so it is
/// resent only when the first send surely did nothing (no connection, or `503`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    OnlyIfNotDone,
}

pub struct Request {
    pub method: Method,
    pub url: Url,
    pub accept: &'static str,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub repeat: Repeat,
}

impl Client {
    pub fn new(url: &str, retries: u32, auth: Auth, output: Output) -> Result<Client, Failure> {
        let base = url.trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base).map_err(|e| bad_input(format!("--url {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_input(format!("--url {url:?} must be http or https")));
        }
        // One crypto provider for rustls in the whole process (ring, as the workspace's).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("leads-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| bad_input(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            auth,
            output,
            attempts: retries.saturating_add(1),
        })
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// `path` (starting with `/`) under the base URL, with `query` pairs. Every character but
    /// RFC 3986's unreserved ones is escaped: a space is `%20`, not the form encoding's `+`,
    /// which SigV4 signers and verifiers do not all read alike.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&format!("{}{path}", self.base)).expect("the base URL parses");
        if !query.is_empty() {
            let escape = |text: &str| utf8_percent_encode(text, UNRESERVED).to_string();
            let pairs: Vec<String> = query
                .iter()
                .map(|(name, value)| format!("{}={}", escape(name), escape(value)))
                .collect();
            url.set_query(Some(&pairs.join("&")));
        }
        url
    }

    /// A GET of JSON.
    pub fn get(&self, url: Url) -> Request {
        Request {
            method: Method::GET,
            url,
            accept: "application/json",
            content_type: None,
            body: Bytes::new(),
            repeat: Repeat::Safe,
        }
    }

    /// Sends `request` until it is answered with something other than a network error or a
    /// busy status, or the attempts run out. A `2xx` is returned; anything else is a refusal.
    pub async fn send(&self, request: &Request) -> Result<Response, Failure> {
        let mut attempt = 1;
        loop {
            let (reason, retry_after) = match self.send_once(request).await? {
                Ok(answer) if answer.status().is_success() => return Ok(answer),
                Ok(answer) if busy(answer.status(), request.repeat) => {
                    let retry_after = retry_after(&answer);
                    let problem = refusal(answer).await;
                    (
                        format!("{}: {}", problem.title, problem.detail),
                        retry_after,
                    )
                }
                Ok(answer) => return Err(Failure::Refused(refusal(answer).await)),
                Err(e) if request.repeat == Repeat::Safe || e.is_connect() => {
                    (network_error(&e), None)
                }
                Err(e) => return Err(Failure::Unreachable(network_error(&e))),
            };
            if attempt >= self.attempts {
                return Err(Failure::Unreachable(format!(
                    "{reason} (gave up after {attempt} attempt(s))"
                )));
            }
            let delay = retry_after.unwrap_or_else(|| backoff(attempt));
            self.output.notice(
                &format!(
                    "{reason}; retrying in {:.1}s (attempt {} of {})",
                    delay.as_secs_f64(),
                    attempt + 1,
                    self.attempts
                ),
                &Event::Retry {
                    attempt: attempt + 1,
                    of: self.attempts,
                    delay_seconds: delay.as_secs_f64(),
                    reason: &reason,
                },
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Sends and reads a JSON answer.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        request: &Request,
    ) -> Result<(StatusCode, T), Failure> {
        let answer = self.send(request).await?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| Failure::Unreachable(network_error(&e)))?;
        let value = serde_json::from_slice(&body).map_err(|e| {
            Failure::Unreachable(format!(
                "the API's {status} answer to {} {} is not what the contract says: {e}",
                request.method,
                request.url.path()
            ))
        })?;
        Ok((status, value))
    }

    async fn send_once(
        &self,
        request: &Request,
    ) -> Result<Result<Response, reqwest::Error>, Failure> {
        // Signed again for each attempt: a SigV4 signature holds its time.
        let auth = self
            .auth
            .headers(request.method.as_str(), request.url.as_str(), &request.body)
            .await?;
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .header("accept", request.accept);
        if let Some(content_type) = &request.content_type {
            builder = builder.header("content-type", content_type);
        }
        for (name, value) in auth {
            builder = builder.header(name, value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        Ok(builder.send().await)
    }
}

fn busy(status: StatusCode, repeat: Repeat) -> bool {
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => repeat == Repeat::Safe,
        _ => false,
    }
}

/// The delay before attempt `attempt + 1`: 0.5 s, 1 s, 2 s, … up to 30 s.
fn backoff(attempt: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(MAX_DELAY)
}

/// `Retry-After` in seconds (the form this API sends), capped at a minute.
fn retry_after(answer: &Response) -> Option<Duration> {
    let seconds: u64 = answer
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

async fn refusal(answer: Response) -> Problem {
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = answer.bytes().await.unwrap_or_default();
    Problem::from_answer(status, &content_type, &body)
}

/// A network error in one line, with its cause (reqwest's top message alone says little).
fn network_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (1..=8).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[test]
    fn a_stage_url_with_a_trailing_slash_keeps_its_stage() {
        let client = Client::new(
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
            0,
            Auth::None,
            Output::new(true),
        )
        .unwrap();
        assert_eq!(
            client
                .url("/leads/imports", &[("state", "failed")])
                .as_str(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/leads/imports?state=failed"
        );
    }
}
