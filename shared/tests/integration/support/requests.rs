//! Requests to the app's routers, and their answers as a test sees them.

use super::app::TestApp;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A response as a test sees it, from the router or from API Gateway (a replayed event).
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Value,
}

impl Answer {
    /// A body as JSON; an empty one is `null`.
    pub(super) fn json_body(bytes: &[u8]) -> Value {
        if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(bytes).expect("JSON body")
        }
    }
}

impl TestApp {
    pub async fn post_import(&self, body: &str) -> Answer {
        self.post_import_as("application/json", body.as_bytes().to_vec())
            .await
    }

    /// Posts `leads` as import `import_id` (created by `u1`) and asserts it was accepted.
    pub async fn post_accepted(&self, import_id: &str, leads: &[Value]) {
        let answer = self
            .post_import(
                &serde_json::json!({"importId": import_id, "leads": leads, "createdBy": "u1"})
                    .to_string(),
            )
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }

    pub async fn post_import_as(&self, content_type: &str, body: Vec<u8>) -> Answer {
        let request = Request::post("/leads/import")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        self.call(request).await
    }

    pub async fn get_status(&self, import_id: &str) -> Answer {
        self.call(
            Request::get(format!("/leads/import/{import_id}/status"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = shared::api::router(self.app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(http::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(http::header::LOCATION);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            location,
            body: Answer::json_body(&bytes),
        }
    }
}
