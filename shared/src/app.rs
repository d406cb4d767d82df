//! Wiring: the clients every function builds once per execution environment.

use crate::aws::db_auth::{
    AwsIdentity, DatabaseAuth, DbAuthError, IamTokenSource, read_rds_secret,
};
use crate::config::Config;
use crate::drain::Drain;
use crate::drain_starter::{DrainStarter, ImportKicker};
use crate::import::ImportLimits;
use crate::postgres::{Store, StoreError};
use crate::reconcile::Reconciler;
use crate::redis::connection::Redis;
use crate::redis::keys::Keys;
use crate::redis::status_cache::StatusCache;
use crate::redis::stream::Queue;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::sync::Arc;

/// The service's shared state: cheap to clone, built once at cold start.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub queue: Queue,
    pub cache: StatusCache,
    /// Where new drains are started (see `drain_starter`): off until the function or the
    /// local run sets it.
    pub starter: DrainStarter,
    /// With `DATABASE_AUTH=iam`: renews the password (an RDS auth token) before it expires.
    iam: Option<Arc<IamPassword>>,
}

struct IamPassword {
    source: IamTokenSource,
    options: PgConnectOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("REDIS_URL is not a valid Redis URL")]
    RedisUrl,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database auth: {0}")]
    DatabaseAuth(#[from] DbAuthError),
}

impl App {
    /// Builds the clients without connecting, with `DATABASE_URL`'s own credentials: a cold
    /// start never fails because a dependency is down; the first request that needs it
    /// answers 503 instead.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let options =
            PgConnectOptions::from_str(&config.database_url).map_err(|_| StoreError::BadUrl)?;
        Self::build(config, options, None)
    }

    /// The functions' constructor: `Config` and `DATABASE_AUTH` from the environment. With
    /// `secret`, the secret is read here, once per cold start; with `iam`, the first token is
    /// signed here (locally, from the role's credentials) and renewed by [`App::refresh`].
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::from_lookup(|name| std::env::var(name).ok()).await
    }

    /// [`App::from_env`] over any source of variables (the tests pass a map).
    pub async fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartupError> {
        let config = Config::from_lookup(&lookup)?;
        let options =
            PgConnectOptions::from_str(&config.database_url).map_err(|_| StoreError::BadUrl)?;
        match DatabaseAuth::from_lookup(&lookup)? {
            DatabaseAuth::Password => Self::build(config, options, None),
            DatabaseAuth::Secret { secret_id } => {
                let secret =
                    read_rds_secret(&AwsIdentity::from_lookup(&lookup)?, &secret_id).await?;
                // The host stays DATABASE_URL's: it may be an RDS Proxy in front of the database.
                let options = options
                    .username(&secret.username)
                    .password(&secret.password);
                Self::build(config, options, None)
            }
            DatabaseAuth::Iam => {
                let identity = AwsIdentity::from_lookup(&lookup)?;
                let source = IamTokenSource::new(
                    identity,
                    options.get_host(),
                    options.get_port(),
                    options.get_username(),
                );
                let token = source.token().await?;
                let signed_in = options.clone().password(&token);
                Self::build(config, signed_in, Some(IamPassword { source, options }))
            }
        }
    }

    fn build(
        config: Config,
        options: PgConnectOptions,
        iam: Option<IamPassword>,
    ) -> Result<Self, StartupError> {
        // Lambda runs one request at a time per environment; a few connections cover the
        // drain's batches in flight (each holds one for its transaction, plus a status rebuild),
        // and RDS Proxy (or `max_connections`) bounds the rest.
        let connections = (config.drain_parallel_batches + 2).max(4) as u32;
        let store = Store::with_options(options, connections);
        // Both connect lazily (see `Redis::connect_lazy` for the timeouts): one shared by
        // every command, one for the drain's blocking reads.
        let connect = || {
            Redis::connect_lazy(&config.redis_url, config.block_timeout)
                .map_err(|_| StartupError::RedisUrl)
        };
        let (shared, blocking) = (connect()?, connect()?);
        let keys = Keys::new(&config.key_prefix);
        let cache = StatusCache::new(shared.clone(), keys.clone(), config.cache_ttl);
        let queue = Queue::new(shared, blocking, keys, &config.consumer_name, cache.clone());
        tracing::info!(consumer = %config.consumer_name, "clients built for this execution environment");
        Ok(App {
            config: Arc::new(config),
            store,
            queue,
            cache,
            starter: DrainStarter::Off,
            iam: iam.map(Arc::new),
        })
    }

    /// Called at the start of every invocation: with IAM auth, makes sure connections the pool
    /// opens from now on use a token with minutes to spare (a token is checked only when a
    /// connection opens, so open connections outlive it). Does nothing otherwise.
    pub async fn refresh(&self) -> Result<(), DbAuthError> {
        if let Some(iam) = &self.iam {
            let token = iam.source.token().await?;
            self.store
                .pool()
                .set_connect_options(iam.options.clone().password(&token));
        }
        Ok(())
    }

    /// Starts drains through `DRAIN_FUNCTION_NAME` when it is set (import-fn and drain-fn).
    pub async fn with_lambda_drain_starter(mut self) -> Self {
        self.starter = DrainStarter::from_config(&self.config).await;
        self
    }

    /// The kick an accepted import sends.
    pub fn kicker(&self) -> ImportKicker {
        ImportKicker {
            starter: self.starter.clone(),
            queue: self.queue.clone(),
        }
    }

    /// What an import is planned under.
    pub fn import_limits(&self) -> ImportLimits {
        ImportLimits {
            max_leads: self.config.max_leads_per_import,
            batch_size: self.config.batch_size,
        }
    }

    pub fn reconciler(&self) -> Reconciler {
        Reconciler::new(
            self.queue.clone(),
            self.cache.clone(),
            self.store.clone(),
            self.config.reconcile_after,
            self.config.reconcile_jobs,
        )
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
