//! Redis connections (one shared per execution environment, one more for the drain's blocking
//! reads: see `Queue`), to one server or to a Redis Cluster, and the "retry once" rule.
//!
//! After a Lambda freeze the socket may be dead without anyone knowing; the first command on
//! it fails. `ConnectionManager` (one server) and the cluster connection (one connection per
//! node, re-made as needed) reconnect when that happens, so one retry of the same command goes
//! through on the fresh connection. Every command we send is safe to repeat (see each caller),
//! which is what makes the retry correct.
//!
//! With credentials from a [`RedisCredentialSource`] (ElastiCache IAM auth), every new
//! connection, and every reconnection, signs in with the source's current credentials.

use super::credentials::{CredentialsProvider, RedisCredentialSource};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long opening a connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// How much longer than the longest `BLOCK` a reply may take before the command times out.
const REPLY_MARGIN: Duration = Duration::from_secs(2);

/// One connection type over both deployments: a single server (or a primary with replicas)
/// behind a `ConnectionManager`, or a Redis Cluster, whose connection routes each command to
/// the node that holds its key's slot (every key of the service shares one: `keys`).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// Where and how to connect: `REDIS_URL`, `REDIS_CLUSTER`, and the credentials to sign in
/// with when they do not come from the URL.
#[derive(Clone)]
pub(crate) struct Target<'a> {
    /// One URL, or with `cluster` one or more comma-separated (seed nodes).
    pub urls: &'a str,
    pub cluster: bool,
    pub credentials: Option<Arc<dyn RedisCredentialSource>>,
}

#[derive(Clone)]
pub(crate) struct Redis {
    conn: Connection,
}

impl Redis {
    /// Connects on first use, so a cold start does not fail while Redis is down: the request
    /// then gets a 503 and the next one may succeed. `longest_block` is the longest `BLOCK` any
    /// command will ask for; replies may take that long, so the response timeout is above it
    /// (on every node's connection in cluster mode too).
    pub(crate) fn connect_lazy(target: &Target<'_>, longest_block: Duration) -> RedisResult<Self> {
        let response_timeout = longest_block + REPLY_MARGIN;
        let provider = target.credentials.clone().map(CredentialsProvider::new);
        let conn = if target.cluster {
            let nodes: Vec<&str> = target
                .urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            let mut builder = ClusterClientBuilder::new(nodes)
                .connection_timeout(CONNECTION_TIMEOUT)
                .response_timeout(response_timeout)
                // One request may meet a MOVED or a reconnection on its way; its whole time is
                // bounded too (the retry-once rule below adds one more attempt).
                .overall_response_timeout(Some(response_timeout * 2))
                .retries(2)
                .min_retry_wait(100)
                .max_retry_wait(500);
            if let Some(provider) = provider {
                builder = builder.set_credentials_provider(provider);
            }
            // The config's timeouts replace the builder's for the nodes' connections (an unset
            // one would mean none at all), so they are given again here.
            let config = ClusterConfig::new()
                .set_connection_timeout(CONNECTION_TIMEOUT)
                .set_response_timeout(response_timeout);
            Connection::Cluster(
                builder
                    .build()?
                    .get_pending_async_connection_with_config(config),
            )
        } else {
            let client = redis::Client::open(target.urls)?;
            let mut config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            if let Some(provider) = provider {
                config = config.set_credentials_provider(provider);
            }
            Connection::Single(client.get_connection_manager_lazy(config)?)
        };
        Ok(Redis { conn })
    }

    /// Runs `op`, and once more if the first attempt failed on the connection itself.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Err(e) if is_connection_problem(&e) => {
                tracing::debug!(error = %e, "redis command failed on the connection; retrying once");
                op(self.conn.clone()).await
            }
            result => result,
        }
    }
}

impl Redis {
    /// Sends one command under the retry-once rule.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Sends a pipeline (a MULTI when it is `atomic`) under the retry-once rule. In cluster
    /// mode every command of it must name keys of one slot, as ours do.
    pub(crate) async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        self.run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }
}

fn is_connection_problem(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}
