//! Sending the notifications that are due: called by every drain invocation (and so by the
//! local loop) after its drain, a few at a time, each attempt bounded by a timeout, so a slow
//! receiver delays a notification, never an import.

use super::target::{CheckedResolver, check_url};
use crate::app::App;
use crate::job::status::{NotificationState, timestamp};
use crate::postgres::DueDelivery;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Serialize;
use std::time::Duration;
use time::OffsetDateTime;

/// Notifications one invocation sends at most, and how long one attempt may take.
const PER_INVOCATION: usize = 20;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries stop this long after the notification was owed.
const GIVE_UP_AFTER: time::Duration = time::Duration::hours(24);

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

/// What one call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
}

/// The body: the Standard Webhooks envelope around the import's summary.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: crate::job::status::JobStatus,
}

/// Sends the notifications due now; failures are recorded for a later attempt, never raised.
pub async fn deliver_due(app: &App) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    if !super::Notifications::from_config(&app.config).enabled {
        return report;
    }
    let lease = ATTEMPT_TIMEOUT * PER_INVOCATION as u32 + Duration::from_secs(60);
    let due = match app
        .store
        .take_due_notifications(PER_INVOCATION, lease)
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the notifications due");
            return report;
        }
    };
    if due.is_empty() {
        return report;
    }
    let Some(client) = https_client(&app.config.webhook_allowed_hosts) else {
        return report;
    };
    for delivery in due {
        let Some(body) = body_of(app, &delivery).await else {
            continue;
        };
        let status = match delivery.url.strip_prefix(super::event_bus::TARGET_PREFIX) {
            Some(bus) => put_on_bus(app, bus, &body).await,
            None => send(app, &client, &delivery, &body).await,
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let next = (!delivered)
            .then(|| next_attempt(&delivery, app.config.webhook_retry_base))
            .flatten();
        if delivered {
            report.delivered += 1;
        } else {
            report.failed += 1;
        }
        if let Err(e) = app
            .store
            .record_attempt(&delivery.webhook_id, &body, status, next)
            .await
        {
            tracing::warn!(error = %e, import_id = %delivery.import_id, "could not record a notification attempt");
            continue;
        }
        let state = NotificationState {
            attempts: delivery.attempts + 1,
            last_attempt_at: Some(OffsetDateTime::now_utc()),
            last_response_code: status,
            delivered,
        };
        if let Err(e) = app
            .cache
            .set_notification(&delivery.import_id, &state)
            .await
        {
            tracing::warn!(error = %e, import_id = %delivery.import_id, "could not note a notification attempt in the cached status");
        }
    }
    report
}

/// A client whose connections reach only addresses the allow-list's rules allow.
fn https_client(allow: &super::AllowList) -> Option<HttpsClient> {
    let mut http = HttpConnector::new_with_resolver(CheckedResolver::new(allow.clone()));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .inspect_err(|e| tracing::error!(error = %e, "TLS setup for notifications failed"))
        .ok()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Some(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// The body sent on every attempt: kept from the first, else built now.
async fn body_of(app: &App, delivery: &DueDelivery) -> Option<String> {
    if let Some(body) = &delivery.body {
        return Some(body.clone());
    }
    let job = match app.store.load_job(&delivery.import_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "could not load a finished import to notify");
            return None;
        }
    };
    let envelope = Envelope {
        kind: "lead_import.finished",
        timestamp: timestamp::format(OffsetDateTime::now_utc()),
        data: job.facts().into_status(None),
    };
    Some(serde_json::to_string(&envelope).expect("the envelope serializes"))
}

/// One attempt: the answer's status, or `None` when there was none (refused target, network
/// error, timeout). Logs name the import, never the URL (it may carry a token).
async fn send(app: &App, client: &HttpsClient, delivery: &DueDelivery, body: &str) -> Option<u16> {
    let Some(secret) = app.signing_key.get().await else {
        // Off since it was owed, or the secret cannot be read now: tried again later.
        tracing::warn!(import_id = %delivery.import_id, "no webhook signing secret to sign a notification with");
        return None;
    };
    let uri = match check_url(&delivery.url, &app.config.webhook_allowed_hosts).await {
        Ok(uri) => uri,
        Err(e) => {
            tracing::warn!(import_id = %delivery.import_id, reason = %e, "notification target refused");
            return None;
        }
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &delivery.webhook_id)
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            secret.sign(&delivery.webhook_id, now, body),
        )
        .body(Full::new(Bytes::from(body.to_owned())))
        .ok()?;
    let exchange = async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        // Read (and drop) the answer so the connection can be reused.
        let _ = response.into_body().collect().await;
        Some(status)
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
        Ok(Some(status)) => Some(status),
        _ => {
            tracing::warn!(import_id = %delivery.import_id, "notification got no answer");
            None
        }
    }
}

/// The envelope's `data` as the event's detail; recorded as a `200` when EventBridge took it.
async fn put_on_bus(app: &App, bus: &str, body: &str) -> Option<u16> {
    let envelope: serde_json::Value = serde_json::from_str(body).ok()?;
    let detail = envelope.get("data")?.to_string();
    app.events.put(bus, &detail).await.then_some(200)
}

/// When to try again after attempt number `attempts + 1` failed: `base` doubled per earlier
/// attempt, times a jitter between 0.5 and 1.5; `None` once that is past 24 hours after the
/// notification was owed.
fn next_attempt(delivery: &DueDelivery, base: Duration) -> Option<OffsetDateTime> {
    let doubled = base.saturating_mul(1 << delivery.attempts.min(20));
    let jitter = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
    let delay = time::Duration::try_from(doubled.mul_f64(jitter)).ok()?;
    let next = OffsetDateTime::now_utc() + delay;
    (next < delivery.created_at + GIVE_UP_AFTER).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_with_jitter_and_stop_after_a_day() {
        let owed = |attempts, ago| DueDelivery {
            webhook_id: "id".into(),
            import_id: crate::domain::ImportId::parse("j").unwrap(),
            url: "https://x.io".into(),
            body: None,
            attempts,
            created_at: OffsetDateTime::now_utc() - ago,
        };
        let base = Duration::from_secs(5);
        for attempts in 0..5u32 {
            let next = next_attempt(&owed(attempts, time::Duration::ZERO), base).unwrap();
            let delay = (next - OffsetDateTime::now_utc()).as_seconds_f64();
            let nominal = 5.0 * f64::from(1 << attempts);
            assert!(
                delay > nominal * 0.49 && delay < nominal * 1.51,
                "{attempts}: {delay}"
            );
        }
        assert_eq!(
            next_attempt(&owed(1, time::Duration::hours(24)), base),
            None
        );
        assert_eq!(
            next_attempt(&owed(30, time::Duration::ZERO), base),
            None,
            "2^20 × 5 s is past a day"
        );
    }
}
