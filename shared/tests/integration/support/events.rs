//! The sample events of `events/`, and API Gateway events replayed through `lambda_http`.

use serde_json::Value;

/// Sends an API Gateway v2 event (JSON) through `lambda_http`'s adapter, exactly as the Lambda
/// runtime does, and returns the API Gateway response JSON (`statusCode`, `headers`, `body`).
pub async fn replay_event(router: axum::Router, event: &str) -> Value {
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
    serde_json::to_value(response).unwrap()
}

/// The status code and the JSON body of a replayed event's response.
pub fn status_and_body(response: &Value) -> (u64, Value) {
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response["statusCode"].as_u64().unwrap(), body)
}

pub fn read_event(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event file")
}
