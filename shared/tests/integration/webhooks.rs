//! Notifications when an import ends (issue 15): a real HTTP receiver on 127.0.0.1 (let in by
//! `WEBHOOK_ALLOWED_HOSTS`) checks each request as the Standard Webhooks specification says,
//! answers 500 twice and then 200; exactly one notification is accepted, the same
//! `webhook-id` on every attempt. SSRF targets are refused when the import is submitted.

use crate::contract::conforms_to_contract;
use crate::support::app::{TestApp, spawn_app_with};
use crate::support::assertions::assert_nothing_left;
use crate::support::leads::synthetic_leads;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// 32 bytes, as `whsec_` base64.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";
/// Older than this is a replay (the specification's suggested tolerance).
const TOLERANCE_SECS: i64 = 300;

#[derive(Default)]
struct Receiver {
    /// Every request whose signature verified: (webhook-id, body).
    verified: Vec<(String, String)>,
    /// The webhook-ids answered 200.
    accepted: Vec<String>,
}

/// Verifies as a receiver would (its own HMAC, not the service's signer); answers 400 to a
/// bad signature or a stale timestamp, 500 to the first two good ones, then 200.
async fn hook(
    State(receiver): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let Ok(sent_at) = timestamp.parse::<i64>() else {
        return StatusCode::BAD_REQUEST;
    };
    if (time::OffsetDateTime::now_utc().unix_timestamp() - sent_at).abs() > TOLERANCE_SECS {
        return StatusCode::BAD_REQUEST;
    }
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", &body].concat();
    let valid = header("webhook-signature").split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    });
    if !valid {
        return StatusCode::BAD_REQUEST;
    }
    let mut r = receiver.lock().unwrap();
    r.verified
        .push((id.to_owned(), String::from_utf8(body.to_vec()).unwrap()));
    if r.verified.len() <= 2 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.accepted.push(id.to_owned());
    StatusCode::OK
}

async fn start_receiver() -> (String, Arc<Mutex<Receiver>>) {
    let receiver = Arc::new(Mutex::new(Receiver::default()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

async fn notifying_app() -> TestApp {
    spawn_app_with(&[
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("WEBHOOK_RETRY_BASE_MS", "1"),
    ])
    .await
}

#[tokio::test]
async fn the_end_is_notified_once_accepted_with_a_stable_id_after_two_failures() {
    let t = notifying_app().await;
    let (url, receiver) = start_receiver().await;
    let body = json!({"importId": "notified", "createdBy": "u1", "callbackUrl": url,
                      "leads": synthetic_leads(60, "hook", 10, 0)});
    assert_eq!(t.post_import(&body.to_string()).await.status, 202);
    // The drain finishes the import, owes its notification and makes the first attempt.
    t.drain_all().await;
    for _ in 0..50 {
        if !receiver.lock().unwrap().accepted.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        shared::webhook::deliver_due(&t.app).await;
    }
    // Nothing is owed any more: another round sends nothing.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(shared::webhook::deliver_due(&t.app).await.delivered, 0);

    let r = std::mem::take(&mut *receiver.lock().unwrap());
    assert_eq!(r.verified.len(), 3, "500, 500, 200");
    assert_eq!(r.accepted.len(), 1, "exactly one accepted");
    assert!(
        r.verified
            .iter()
            .all(|(id, body)| *id == r.accepted[0] && *body == r.verified[0].1),
        "the same webhook-id and body on every attempt"
    );
    let event: Value = serde_json::from_str(&r.verified[0].1).unwrap();
    assert_eq!(event["type"], "lead_import.finished");
    assert_eq!(event["data"]["importId"], "notified");
    assert_eq!(event["data"]["status"], "completed");
    assert_eq!(event["data"]["progress"]["failed"], 6);

    let status = t.get_status("notified").await;
    conforms_to_contract("get", "/leads/import/{importId}/status", &status);
    let doc = status.body;
    assert_eq!(doc["notification"]["attempts"], 3, "{doc}");
    assert_eq!(doc["notification"]["lastResponseCode"], 200);
    assert_eq!(doc["notification"]["delivered"], true);
}

#[tokio::test]
async fn a_stale_or_forged_request_is_refused_by_the_receiver() {
    let (url, receiver) = start_receiver().await;
    let sign = |id: &str, ts: i64, body: &str| {
        shared::webhook::WebhookSecret::parse(SECRET)
            .unwrap()
            .sign(id, ts, body)
    };
    let post = |ts: i64, signature: String| {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<Bytes>>();
        let request = http::Request::post(url.as_str())
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        async move { client.request(request).await.unwrap().status() }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(
        post(now - 3_600, sign("msg_1", now - 3_600, "{}")).await,
        400,
        "stale"
    );
    assert_eq!(
        post(now, sign("msg_1", now, "{\"x\":1}")).await,
        400,
        "not this body"
    );
    assert_eq!(
        post(now, sign("msg_1", now, "{}")).await,
        500,
        "valid (first answer is 500)"
    );
    assert_eq!(receiver.lock().unwrap().verified.len(), 1);
}

#[tokio::test]
async fn ssrf_targets_are_refused_at_submit() {
    // Notifications on, nothing allowed: `localhost` is a name that resolves to a loopback
    // address (as a hostile name resolving to 10.0.0.1 would to a private one).
    let t = spawn_app_with(&[("WEBHOOK_SECRET", SECRET)]).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://localhost/hook",
        "https://localhost/hook",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "not a url",
    ] {
        let body = json!({"createdBy": "u1", "callbackUrl": url,
                          "leads": [{"fullName": "A", "email": "a@x.io"}]});
        let answer = t.post_import(&body.to_string()).await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.body);
        assert_eq!(answer.body["errors"][0]["pointer"], "/callbackUrl", "{url}");
        conforms_to_contract("post", "/leads/import", &answer);
    }
    // A CSV import names it in the query.
    let csv = t
        .call(
            http::Request::post("/leads/import?createdBy=u1&callbackUrl=https://10.0.0.1/x")
                .header("content-type", "text/csv")
                .body(axum::body::Body::from("fullName,email\nA,a@x.io\n"))
                .unwrap(),
        )
        .await;
    assert_eq!(csv.status, 400, "{}", csv.body);
    assert_nothing_left(&t).await;

    // Without WEBHOOK_SECRET no callbackUrl is taken at all.
    let off = spawn_app_with(&[]).await;
    let body = json!({"createdBy": "u1", "callbackUrl": "https://example.com/hook",
                      "leads": [{"fullName": "A", "email": "a@x.io"}]});
    assert_eq!(off.post_import(&body.to_string()).await.status, 400);
}

/// The same end on an EventBridge bus: `PutEvents` to a fake EventBridge endpoint, which
/// refuses the first call (a throttle) and takes the second.
#[tokio::test]
async fn the_end_goes_to_the_event_bus_when_one_is_configured() {
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = events.clone();
    let fake = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                assert_eq!(headers["x-amz-target"], "AWSEvents.PutEvents");
                let mut seen = seen.lock().unwrap();
                seen.push(serde_json::from_slice(&body).unwrap());
                let json = [("content-type", "application/x-amz-json-1.1")];
                if seen.len() == 1 {
                    let throttled = r#"{"__type":"ThrottlingException","message":"slow down"}"#;
                    return (StatusCode::BAD_REQUEST, json, throttled.to_owned());
                }
                let ok = r#"{"FailedEntryCount":0,"Entries":[{"EventId":"e-1"}]}"#;
                (StatusCode::OK, json, ok.to_owned())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await.unwrap() });
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let client = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version_latest()
            .http_client(http)
            .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
            .build(),
    );

    let mut t = spawn_app_with(&[
        ("EVENT_BUS_NAME", "leads-bus"),
        ("WEBHOOK_RETRY_BASE_MS", "1"),
    ])
    .await;
    t.app.events = shared::webhook::EventBus::with_client(client);
    t.post_accepted("on-the-bus", &synthetic_leads(3, "bus", 0, 0))
        .await;
    t.drain_all().await;
    for _ in 0..50 {
        if events.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        shared::webhook::deliver_due(&t.app).await;
    }
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert_eq!(events.len(), 2, "refused once, then taken: {events:?}");
    let entry = &events[1]["Entries"][0];
    assert_eq!(entry["Source"], "lead-import");
    assert_eq!(entry["DetailType"], "Lead Import Finished");
    assert_eq!(entry["EventBusName"], "leads-bus");
    let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["importId"], "on-the-bus");
    assert_eq!(detail["status"], "completed");
    let doc = t.get_status("on-the-bus").await.body;
    assert_eq!(doc["notification"]["delivered"], true, "{doc}");
    assert_eq!(doc["notification"]["attempts"], 2);
}

/// On AWS the signing secret is read from Secrets Manager (`WEBHOOK_SECRET_ARN`), on first
/// use: the receiver verifies the notification with it.
#[tokio::test]
async fn the_signing_secret_can_come_from_secrets_manager() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = crate::credentials::fake_secrets_manager(
        Arc::new(Mutex::new(SECRET.to_owned())),
        calls.clone(),
    )
    .await;
    let t = spawn_app_with(&[]).await;
    let vars = t.env(&[
        (
            "WEBHOOK_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:leads/db-webhook",
        ),
        ("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("WEBHOOK_RETRY_BASE_MS", "1"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str()),
    ]);
    let app = shared::app::App::from_lookup(|k| vars.get(k).cloned())
        .await
        .unwrap();
    let t = TestApp { app, ..t };
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing read at cold start"
    );
    let (url, receiver) = start_receiver().await;
    let body = json!({"importId": "signed-by-sm", "createdBy": "u1", "callbackUrl": url,
                      "leads": synthetic_leads(2, "sm", 0, 0)});
    assert_eq!(t.post_import(&body.to_string()).await.status, 202);
    t.drain_all().await;
    for _ in 0..3 {
        shared::webhook::deliver_due(&t.app).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = std::mem::take(&mut *receiver.lock().unwrap());
    assert!(
        r.verified.len() >= 3,
        "every attempt verified with the secret: {}",
        r.verified.len()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "read once, then kept");
}

/// An import whose every lead is refused at submit has no chunk for a drain to finish: the
/// reconciler, which notes it finished, owes its notification.
#[tokio::test]
async fn an_import_without_a_valid_lead_is_notified_by_the_reconciler() {
    let t = spawn_app_with(&[
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("WEBHOOK_RETRY_BASE_MS", "1"),
        ("RECONCILE_AFTER_MS", "0"),
    ])
    .await;
    let (url, receiver) = start_receiver().await;
    let body = json!({"importId": "all-refused", "createdBy": "u1", "callbackUrl": url,
                      "leads": [{"fullName": "A", "email": "nope"}]});
    assert_eq!(t.post_import(&body.to_string()).await.status, 202);
    for _ in 0..5 {
        t.drain_all().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = std::mem::take(&mut *receiver.lock().unwrap());
    assert_eq!(r.accepted.len(), 1, "{} attempts", r.verified.len());
    let event: Value = serde_json::from_str(&r.verified[0].1).unwrap();
    assert_eq!(event["data"]["importId"], "all-refused");
    assert_eq!(event["data"]["status"], "completed");
}
