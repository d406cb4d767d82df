//! Redis connections (one shared per execution environment, one more for the drain's blocking
//! reads: see `Queue`), and the "retry once" rule.
//!
//! After a Lambda freeze the socket may be dead without anyone knowing; the first command on
//! it fails. `ConnectionManager` reconnects in the background when that happens, so one retry
//! of the same command goes through on the fresh connection. Every command we send is safe to
//! repeat (see each caller), which is what makes the retry correct.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisResult};
use std::future::Future;
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct Redis {
    conn: ConnectionManager,
}

impl Redis {
    /// Connects on first use, so a cold start does not fail while Redis is down: the request
    /// then gets a 503 and the next one may succeed. `longest_block` is the longest `BLOCK` any
    /// command will ask for; replies may take that long, so the response timeout is above it.
    pub(crate) fn connect_lazy(url: &str, longest_block: Duration) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(longest_block + Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        Ok(Redis {
            conn: client.get_connection_manager_lazy(config)?,
        })
    }

    /// Runs `op`, and once more if the first attempt failed on the connection itself.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
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

    /// Sends a pipeline (a MULTI when it is `atomic`) under the retry-once rule.
    pub(crate) async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        self.run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }
}

fn is_connection_problem(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}
