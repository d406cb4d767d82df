//! Wiring: the clients every function builds once per execution environment.

use crate::aws::cache_auth::{CacheAuth, CacheAuthError};
use crate::aws::db_auth::{
    AwsIdentity, DatabaseAuth, DbAuthError, IamTokenSource, SecretSource, secrets_manager_endpoint,
};
use crate::config::Config;
use crate::drain::Drain;
use crate::drain_starter::{DrainStarter, ImportKicker};
use crate::import::ImportLimits;
use crate::postgres::{CredentialSource, PoolSettings, Store, StoreError};
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
    /// Where new drains are started (see `drain_starter`): off until the function or the
    /// local run sets it.
    pub starter: DrainStarter,
    /// The EventBridge client of `EVENT_BUS_NAME`'s notifications, made on first use.
    pub events: crate::webhook::EventBus,
    /// The webhooks' signing secret (`WEBHOOK_SECRET`, or read from `WEBHOOK_SECRET_ARN`).
    pub signing_key: crate::webhook::SigningKey,
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
        Self::build(config, None, None)
    }

    /// Like [`App::new`], but every connection signs in with what `credentials` answers at the
    /// time (see `postgres::sign_in`): how `DATABASE_AUTH=iam` and `secret` work, and how the
    /// tests rotate a password under a running drain.
    pub fn with_credentials(
        config: Config,
        credentials: Arc<dyn CredentialSource>,
    ) -> Result<Self, StartupError> {
        Self::build(config, Some(credentials), None)
    }

    /// Like [`App::new`], with Redis credentials from `source`, asked for by every new Redis
    /// connection and every renewal (the tests' rotating password; on AWS,
    /// [`App::from_lookup`] gives ElastiCache IAM tokens this way).
    pub fn with_redis_credentials(
        config: Config,
        source: Arc<dyn RedisCredentialSource>,
    ) -> Result<Self, StartupError> {
        Self::build(config, None, Some(source))
    }

    /// The functions' constructor: `Config`, `DATABASE_AUTH` and `REDIS_AUTH` from the
    /// environment, signing (for `iam` and `secret`) with the Lambda environment's region and
    /// role credentials. Nothing is fetched for the database here: the first connection
    /// fetches its credentials, and later ones renew them (an IAM token after 10 minutes, the
    /// secret after 5 or when refused). With `REDIS_AUTH=iam`, a first cache token is signed
    /// here; the Redis connections ask for a current one whenever they sign in.
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::from_lookup(|name| std::env::var(name).ok()).await
    }

    /// [`App::from_env`] over any source of variables (the tests pass a map).
    pub async fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartupError> {
        Self::from_lookup_signing_as(lookup, None).await
    }

    /// [`App::from_lookup`], signing the IAM token or the Secrets Manager call as `identity`
    /// when given (the operator commands load it with `aws-config`: SSO, profiles), else as the
    /// Lambda environment's role ([`AwsIdentity::from_lookup`]).
    pub async fn from_lookup_signing_as(
        lookup: impl Fn(&str) -> Option<String>,
        identity: Option<AwsIdentity>,
    ) -> Result<Self, StartupError> {
        let mut app = Self::clients_from_lookup(&lookup, identity.clone()).await?;
        if let Some(secret_id) = app.config.webhook_secret_arn.clone() {
            let identity = match identity {
                Some(identity) => identity,
                None => AwsIdentity::from_lookup(&lookup)?,
            };
            let endpoint = secrets_manager_endpoint(identity.region(), &lookup);
            app.signing_key =
                crate::webhook::SigningKey::from_secrets_manager(identity, endpoint, secret_id);
        }
        Ok(app)
    }

    /// The clients of [`App::from_lookup_signing_as`].
    async fn clients_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        identity: Option<AwsIdentity>,
    ) -> Result<Self, StartupError> {
        let config = Config::from_lookup(&lookup)?;
        let cache_auth = CacheAuth::from_lookup(&lookup)?;
        cache_auth.check_url(&config.redis_url)?;
        let redis_credentials = cache_auth
            .credential_source(|| match &identity {
                Some(identity) => Ok(identity.clone()),
                None => AwsIdentity::from_lookup(&lookup),
            })
            .await?
            .map(|source| Arc::new(source) as Arc<dyn RedisCredentialSource>);
        let auth = DatabaseAuth::from_lookup(&lookup)?;
        if auth == DatabaseAuth::Password {
            return Self::build(config, None, redis_credentials);
        }
        let identity = match identity {
            Some(identity) => identity,
            None => AwsIdentity::from_lookup(&lookup)?,
        };
        let options = connect_options(&config)?;
        let source: Arc<dyn CredentialSource> = match auth {
            DatabaseAuth::Password => unreachable!("handled above"),
            DatabaseAuth::Secret { secret_id } => {
                let endpoint = secrets_manager_endpoint(identity.region(), &lookup);
                Arc::new(SecretSource::new(identity, endpoint, secret_id))
            }
            DatabaseAuth::Iam => Arc::new(IamTokenSource::new(
                identity,
                options.get_host(),
                options.get_port(),
                options.get_username(),
            )),
        };
        Self::build(config, Some(source), redis_credentials)
    }

    fn build(
        config: Config,
        credentials: Option<Arc<dyn CredentialSource>>,
        redis_credentials: Option<Arc<dyn RedisCredentialSource>>,
    ) -> Result<Self, StartupError> {
        let options = connect_options(&config)?;
        // Lambda runs one request at a time per environment; a few connections cover the
        // drain's batches in flight (each holds one for its transaction, plus a status rebuild),
        // and RDS Proxy (or `max_connections`) bounds the rest.
        let settings = PoolSettings {
            max_connections: (config.drain_parallel_batches + 2).max(4) as u32,
            max_lifetime: config.database_max_lifetime,
        };
        let store = Store::new(options, settings, credentials);
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
        let signing_key = config
            .webhook_secret
            .clone()
            .map_or_else(Default::default, crate::webhook::SigningKey::Value);
        Ok(App {
            signing_key,
            config: Arc::new(config),
            store,
            queue,
            cache,
            starter: DrainStarter::Off,
            events: crate::webhook::EventBus::default(),
        })
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
            callbacks: self
                .config
                .webhooks_signed()
                .then(|| std::sync::Arc::new(self.config.webhook_allowed_hosts.clone())),
        }
    }

    pub fn reconciler(&self) -> Reconciler {
        Reconciler::new(
            self.queue.clone(),
            self.cache.clone(),
            self.store.clone(),
            self.config.reconcile_after,
            self.config.reconcile_jobs,
            crate::webhook::Notifications::from_config(&self.config),
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

fn connect_options(config: &Config) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(&config.database_url).map_err(|_| StoreError::BadUrl)
}
