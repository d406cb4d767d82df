//! Wiring: the clients every function builds once per execution environment.

use crate::aws::cache_auth::{CacheAuth, CacheAuthError};
use crate::aws::db_auth::{
    AwsIdentity, DatabaseAuth, DbAuthError, IamTokenSource, read_rds_secret,
};
use crate::config::Config;
use crate::drain::Drain;
use crate::import::ImportLimits;
use crate::postgres::{Store, StoreError};
use crate::reconcile::Reconciler;
use crate::redis::connection::{Redis, Target};
use crate::redis::credentials::RedisCredentialSource;
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
    #[error("cache auth: {0}")]
    CacheAuth(#[from] CacheAuthError),
}

impl App {
    /// Builds the clients without connecting, with `DATABASE_URL`'s own credentials: a cold
    /// start never fails because a dependency is down; the first request that needs it
    /// answers 503 instead.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let options =
            PgConnectOptions::from_str(&config.database_url).map_err(|_| StoreError::BadUrl)?;
        Self::build(config, options, None, None)
    }

    /// Like [`App::new`], with Redis credentials from `source`, asked for by every new Redis
    /// connection and every renewal (the tests' rotating password; on AWS,
    /// [`App::from_lookup`] gives ElastiCache IAM tokens this way).
    pub fn with_redis_credentials(
        config: Config,
        source: Arc<dyn RedisCredentialSource>,
    ) -> Result<Self, StartupError> {
        let options =
            PgConnectOptions::from_str(&config.database_url).map_err(|_| StoreError::BadUrl)?;
        Self::build(config, options, None, Some(source))
    }

    /// The functions' constructor: `Config`, `DATABASE_AUTH` and `REDIS_AUTH` from the
    /// environment. With `DATABASE_AUTH=secret`, the secret is read here, once per cold start;
    /// with `iam`, the first token is signed here (locally, from the role's credentials) and
    /// renewed by [`App::refresh`]. With `REDIS_AUTH=iam`, a first cache token is signed here
    /// too; the Redis connections ask for a current one whenever they sign in.
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
        let cache_auth = CacheAuth::from_lookup(&lookup)?;
        cache_auth.check_url(&config.redis_url)?;
        let redis_credentials = cache_auth
            .credential_source(|| AwsIdentity::from_lookup(&lookup))
            .await?
            .map(|source| Arc::new(source) as Arc<dyn RedisCredentialSource>);
        match DatabaseAuth::from_lookup(&lookup)? {
            DatabaseAuth::Password => Self::build(config, options, None, redis_credentials),
            DatabaseAuth::Secret { secret_id } => {
                let secret =
                    read_rds_secret(&AwsIdentity::from_lookup(&lookup)?, &secret_id).await?;
                // The host stays DATABASE_URL's: it may be an RDS Proxy in front of the database.
                let options = options
                    .username(&secret.username)
                    .password(&secret.password);
                Self::build(config, options, None, redis_credentials)
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
                Self::build(
                    config,
                    signed_in,
                    Some(IamPassword { source, options }),
                    redis_credentials,
                )
            }
        }
    }

    fn build(
        config: Config,
        options: PgConnectOptions,
        iam: Option<IamPassword>,
        redis_credentials: Option<Arc<dyn RedisCredentialSource>>,
    ) -> Result<Self, StartupError> {
        // Lambda runs one request at a time per environment; a few connections cover the
        // drain's batches in flight (each holds one for its transaction, plus a status rebuild),
        // and RDS Proxy (or `max_connections`) bounds the rest.
        let connections = (config.drain_parallel_batches + 2).max(4) as u32;
        let store = Store::with_options(options, connections);
        // Both connect lazily (see `Redis::connect_lazy` for the timeouts), to one server or
        // a cluster: one shared by every command, one for the drain's blocking reads.
        let target = Target {
            urls: &config.redis_url,
            cluster: config.redis_cluster,
            credentials: redis_credentials,
        };
        let connect = || {
            Redis::connect_lazy(&target, config.block_timeout).map_err(|_| StartupError::RedisUrl)
        };
        let (shared, blocking) = (connect()?, connect()?);
        let keys = Keys::new(&config.key_prefix);
        let cache = StatusCache::new(shared.clone(), keys.clone(), config.cache_ttl);
        let queue = Queue::new(shared, blocking, keys, &config.consumer_name, cache.clone());
        tracing::info!(consumer = %config.consumer_name, redis_cluster = config.redis_cluster, "clients built for this execution environment");
        Ok(App {
            config: Arc::new(config),
            store,
            queue,
            cache,
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
