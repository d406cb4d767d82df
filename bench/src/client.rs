//! A bare HTTP/1.1 keep-alive client (hyper's connection API): one TCP connection per
//! simulated client, requests sent one after another on it, each timed.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host: addr.to_string(),
        })
    }

    pub async fn post_json(&mut self, path: &str, body: Bytes) -> anyhow::Result<Answer> {
        self.post(path, "application/json", body).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let request = http::Request::post(path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))?;
        self.send(request).await
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let request = http::Request::get(path)
            .header(http::header::HOST, &self.host)
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(&mut self, request: http::Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let started = Instant::now();
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }
}

/// The `q`-quantile (0..=1) of `samples`, in milliseconds (nearest rank).
pub fn percentile_ms(samples: &[Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}
