//! The sample events of `events/`, and API Gateway events replayed through `lambda_http`.

use super::requests::Answer;
use http::StatusCode;
use serde_json::{Value, json};

pub fn read_event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event file")
}

/// A sample event of `events/` as JSON, to edit before replaying it.
pub fn event_json(name: &str) -> Value {
    serde_json::from_str(&read_event(name)).expect("an event is JSON")
}

/// Puts `body` in an API Gateway v2 event as API Gateway would: as text, or base64-encoded when
/// it is not UTF-8. The `content-length` header of the original body goes.
pub fn set_event_body(event: &mut Value, body: Vec<u8>) {
    event["headers"]
        .as_object_mut()
        .expect("an event with headers")
        .remove("content-length");
    match String::from_utf8(body) {
        Ok(text) => {
            event["body"] = json!(text);
            event["isBase64Encoded"] = json!(false);
        }
        Err(e) => {
            use base64::Engine as _;
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()));
            event["isBase64Encoded"] = json!(true);
        }
    }
}

/// Puts `body` in an API Gateway v2 event base64-encoded, as API Gateway does for a content type
/// it takes as binary. The `content-length` header of the original body goes.
pub fn set_event_body_base64(event: &mut Value, body: &[u8]) {
    use base64::Engine as _;
    event["headers"]
        .as_object_mut()
        .expect("an event with headers")
        .remove("content-length");
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
}

/// Sends an API Gateway v2 event (JSON) through `lambda_http`'s adapter, exactly as the Lambda
/// runtime does, and returns API Gateway's response (`statusCode`, `headers`, `body`) as an
/// [`Answer`].
pub async fn replay_event(router: axum::Router, event: &str) -> Answer {
    use lambda_http::Service;
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_str(event).expect("an API Gateway v2 event");
    let response = lambda_http::Adapter::from(router)
        .call(lambda_runtime::LambdaEvent::new(
            request,
            lambda_runtime::Context::default(),
        ))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    let header = |name: &str| response["headers"][name].as_str().map(str::to_owned);
    let status = response["statusCode"].as_u64().expect("a statusCode");
    Answer {
        status: StatusCode::from_u16(status as u16).expect("an HTTP status"),
        content_type: header("content-type").unwrap_or_default(),
        location: header("location"),
        body: Answer::json_body(response["body"].as_str().unwrap_or_default().as_bytes()),
    }
}
