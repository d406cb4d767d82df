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

    /// `GET path` (path and query), answered in JSON.
    pub async fn get(&self, path_and_query: &str) -> Answer {
        self.call(Request::get(path_and_query).body(Body::empty()).unwrap())
            .await
    }

    /// `POST path` (path and query) without a body.
    pub async fn post(&self, path_and_query: &str) -> Answer {
        self.call(Request::post(path_and_query).body(Body::empty()).unwrap())
            .await
    }

    /// Every error of an import's report, page after page of `limit`.
    pub async fn error_report(&self, import_id: &str, limit: usize) -> Vec<Value> {
        let mut errors = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let query = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
            let page = self
                .get(&format!(
                    "/leads/import/{import_id}/errors?limit={limit}{query}"
                ))
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            let items = page.body["errors"].as_array().unwrap();
            assert!(items.len() <= limit);
            errors.extend(items.iter().cloned());
            match page.body.get("nextCursor") {
                Some(next) => cursor = Some(next.as_str().unwrap().to_owned()),
                None => return errors,
            }
        }
    }

    /// The answer's status, `Content-Type` and body as bytes (a body that is not JSON).
    pub async fn call_raw(&self, request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
        let response = shared::api::router(self.app.clone())
            .oneshot(request)
            .await
            .unwrap();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, bytes.to_vec())
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
