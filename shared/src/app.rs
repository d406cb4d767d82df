//! Wiring: the clients every function builds once per execution environment.

use crate::config::Config;
use crate::drain::Drain;
use crate::keys::Keys;
use crate::queue::Queue;
use crate::status_cache::StatusCache;
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// The service's shared state: cheap to clone, built once at cold start.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub queue: Queue,
    pub cache: StatusCache,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("REDIS_URL is not a valid Redis URL")]
    RedisUrl,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl App {
    /// Builds the clients without connecting: a cold start never fails because a dependency
    /// is down; the first request that needs it answers 503 instead.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        // Lambda runs one request at a time per environment; a few connections cover the
        // drain's overlapping work, and RDS Proxy (or `max_connections`) bounds the rest.
        let store = Store::connect_lazy(&config.database_url, 4)?;
        let longest_block = config.block_timeout;
        let (queue, cache) = Queue::connect(
            &config.redis_url,
            Keys::new(&config.key_prefix),
            &config.consumer_name,
            config.cache_ttl,
            longest_block,
        )
        .map_err(|_| StartupError::RedisUrl)?;
        tracing::info!(consumer = %config.consumer_name, "clients built for this execution environment");
        Ok(App {
            config: Arc::new(config),
            store,
            queue,
            cache,
        })
    }

    pub fn from_env() -> Result<Self, StartupError> {
        Self::new(Config::from_env()?)
    }

    pub fn drain(&self) -> Drain {
        Drain::new(
            self.queue.clone(),
            self.cache.clone(),
            self.store.clone(),
            &self.config,
        )
    }
}
