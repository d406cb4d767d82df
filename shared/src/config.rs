//! Every knob, read once from the environment at cold start.
//!
//! [`VARIABLES`] is the one list of them: name, default and meaning. [`Config::from_lookup`]
//! takes its defaults from it, and `docs/configuration.md` shows it as a table that the tests
//! below compare with it row for row, so the two cannot drift apart.

use crate::redis::keys::{CLUSTER_DEFAULT_PREFIX, hash_tag};
use std::time::Duration;

/// One environment variable of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The value used when the variable is unset or blank, as text; empty for none.
    pub default: &'static str,
    /// What it does, in Markdown, as docs/configuration.md shows it.
    pub meaning: &'static str,
}

impl Variable {
    const fn new(name: &'static str, default: &'static str, meaning: &'static str) -> Self {
        Variable {
            name,
            default,
            meaning,
        }
    }
}

/// Every variable the service reads to configure itself: [`Config`]'s, plus `RUST_LOG`
/// (read by [`crate::telemetry`]), `DATABASE_AUTH` / `DATABASE_SECRET_ARN` (read by
/// [`crate::aws::db_auth`]) and `REDIS_AUTH` / `REDIS_IAM_USER` / `REDIS_IAM_CACHE_ARN` (read
/// by [`crate::aws::cache_auth`]), so that operators find every knob in one table. Not listed: what the
/// Lambda runtime sets (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_REGION`, the role's credentials) and
/// the tests' and the bench's own variables; docs/configuration.md names those apart.
pub const VARIABLES: &[Variable] = &[
    Variable::new("BATCH_SIZE", "50", "leads per stream entry"),
    Variable::new(
        "CACHE_TTL",
        "3600",
        "seconds `import:job:{id}` lives after its last update",
    ),
    Variable::new(
        "BLOCK_TIMEOUT",
        "5000",
        "ms an idle drain waits for new entries (never past its deadline)",
    ),
    Variable::new(
        "BATCH_DELAY",
        "0",
        "ms pause between a drain's batches; the seed's 100 ms capped a consumer at 500 \
         leads/s, so it is off unless you need throttling",
    ),
    Variable::new(
        "REDIS_URL",
        "redis://127.0.0.1:6379",
        "`rediss://` for TLS (ElastiCache in-transit encryption). A password or ACL user may go \
         in the URL off AWS; on AWS use `REDIS_AUTH=iam`. With `REDIS_CLUSTER=true`, one or \
         more nodes, comma-separated (a configuration endpoint is enough). Unset, `make run` \
         starts a private `redis-server`",
    ),
    Variable::new(
        "REDIS_CLUSTER",
        "false",
        "`true` speaks the Redis Cluster protocol (ElastiCache Serverless, cluster-mode-enabled \
         groups); every key then shares the hash tag of `REDIS_KEY_PREFIX`",
    ),
    Variable::new(
        "REDIS_AUTH",
        "password",
        "`password` (whatever `REDIS_URL` carries, if anything) or `iam` (ElastiCache IAM \
         authentication: every new connection signs in as `REDIS_IAM_USER` with a 15-minute \
         token signed from the function's role, renewed every 10 minutes; needs `rediss://`)",
    ),
    Variable::new(
        "REDIS_IAM_USER",
        "",
        "for `REDIS_AUTH=iam`: the ElastiCache user (its id and name, which IAM auth requires \
         to be equal)",
    ),
    Variable::new(
        "REDIS_IAM_CACHE_ARN",
        "",
        "for `REDIS_AUTH=iam`: the ARN of the replication group or serverless cache, which the \
         token names (`arn:aws:elasticache:REGION:ACCOUNT:replicationgroup:ID` or \
         `…:serverlesscache:NAME`)",
    ),
    Variable::new(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/leads",
        "`sslmode=require`/`verify-full` honoured. Unset, `make run` starts a private Postgres",
    ),
    Variable::new(
        "DATABASE_AUTH",
        "password",
        "`password` (in `DATABASE_URL`), `iam` (an RDS IAM token signed from the function's \
         role, renewed every 10 minutes) or `secret` (Secrets Manager, read again every 5 \
         minutes and at once when the database refuses it); checked before any connection opens",
    ),
    Variable::new(
        "DATABASE_SECRET_ARN",
        "",
        "the RDS-format secret for `DATABASE_AUTH=secret`",
    ),
    Variable::new(
        "DATABASE_MAX_LIFETIME_MS",
        "1800000",
        "a database connection is closed after this long; its replacement signs in with the \
         credentials of the moment",
    ),
    Variable::new(
        "MAX_LEADS_PER_IMPORT",
        "10000",
        "more leads in one request answer `413`",
    ),
    Variable::new(
        "MAX_DELIVERIES",
        "5",
        "an entry delivered more often goes to `lead:imports:dead`; a delivery that failed \
         because Redis or Postgres was unavailable is given back and does not count",
    ),
    Variable::new(
        "RECONCILE_AFTER_MS",
        "60000",
        "the reconciler looks at an unfinished job once it is this old, and again at most this \
         often: it queues jobs Redis could not take and chunks Redis lost, from Postgres",
    ),
    Variable::new(
        "RECONCILE_JOBS",
        "20",
        "jobs the reconciler looks at per drain invocation",
    ),
    Variable::new(
        "DEAD_LETTER_RETENTION_DAYS",
        "14",
        "dead letters (which hold leads' personal data) older than this are trimmed",
    ),
    Variable::new(
        "IDLE_CONSUMER_MS",
        "3600000",
        "consumers of the group with nothing pending, idle this long, are removed (one is \
         left by every Lambda execution environment)",
    ),
    Variable::new(
        "CLAIM_IDLE_MS",
        "180000",
        "how long an entry sits unacked before another drain may take it; keep it longer than \
         drain-fn's timeout",
    ),
    Variable::new(
        "DRAIN_DEADLINE_MARGIN_MS",
        "3000",
        "a drain starts no batch this close to its Lambda deadline",
    ),
    Variable::new(
        "DRAIN_READ_COUNT",
        "40",
        "entries read, and stored in one transaction, per batch",
    ),
    Variable::new(
        "DRAIN_PARALLEL_BATCHES",
        "4",
        "batches one drain invocation has in Postgres at once, each in its own transaction and \
         connection (the pool holds this + 2, at least 4); 1 makes the drain strictly sequential",
    ),
    Variable::new(
        "CONSUMER_NAME",
        "lead-import-consumer-1",
        "the drain's consumer in the group. In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the \
         default is `drain-<random>`, one per execution environment",
    ),
    Variable::new(
        "REDIS_KEY_PREFIX",
        "",
        "prefix for every key, to share one Redis between deployments (the tests use it); \
         empty keeps the seed's key names. With `REDIS_CLUSTER=true` it must hold a hash tag, \
         so that every key is in one slot (a prefix without one stops the start), and empty \
         means `{leads}`",
    ),
    Variable::new(
        "DRAIN_FUNCTION_NAME",
        "",
        "the drain function import-fn and drain-fn start (Lambda `Invoke`, `InvocationType=Event`) \
         when work arrives or the backlog grows; empty: only the schedule starts drains. The \
         endpoint follows the SDK's `AWS_ENDPOINT_URL_LAMBDA`",
    ),
    Variable::new(
        "DRAIN_MAX_CONCURRENCY",
        "4",
        "most drains the backlog starts at once (keep it at drain-fn's reserved concurrency, \
         within the database's connection budget); the local run's limit too",
    ),
    Variable::new(
        "DRAIN_ENTRIES_PER_DRAIN",
        "200",
        "backlog (stream entries waiting or pending) one drain is expected to take; more \
         starts another drain, up to `DRAIN_MAX_CONCURRENCY`",
    ),
    Variable::new(
        "DRAIN_KICK_TIMEOUT_MS",
        "500",
        "longest an import waits for Lambda to take its drain kick; past it the schedule picks \
         the job up",
    ),
    Variable::new(
        "DEFAULT_CREATED_BY",
        "",
        "without an authorizer only: the `createdBy` of a CSV import (or form upload) that names \
         none, so that `curl -F file=@leads.csv` works against the local run (`make run` sets \
         it to your user name); empty: such an import is `400`. Behind an authorizer the \
         caller's identity is used",
    ),
    Variable::new(
        "WEBHOOK_SECRET",
        "",
        "the Standard Webhooks signing secret (`whsec_` and base64 of at least 24 bytes) of the \
         notifications sent when an import ends; empty: no notification is sent and a \
         `callbackUrl` is refused",
    ),
    Variable::new(
        "WEBHOOK_SECRET_ARN",
        "",
        "on AWS instead of `WEBHOOK_SECRET`: the Secrets Manager secret (ARN or name) whose \
         `SecretString` is that `whsec_` secret, read on first use with the function's role",
    ),
    Variable::new(
        "WEBHOOK_URL",
        "",
        "where every import's end is notified (beside its own `callbackUrl`); empty: none",
    ),
    Variable::new(
        "WEBHOOK_ALLOWED_HOSTS",
        "",
        "hosts and CIDR ranges (comma-separated) a notification may reach over plain `http` or \
         at a private, loopback or link-local address; others must be public `https`",
    ),
    Variable::new(
        "WEBHOOK_RETRY_BASE_MS",
        "5000",
        "delay before a failed notification's first retry; doubled per attempt, with jitter, \
         for up to 24 hours",
    ),
    Variable::new(
        "EVENT_BUS_NAME",
        "",
        "an EventBridge bus that also gets every import's end (`PutEvents`, source \
         `lead-import`, detail-type `Lead Import Finished`), retried like a webhook; empty: none",
    ),
    Variable::new("PORT", "3000", "the local run's port"),
    Variable::new(
        "DRAIN_INTERVAL_MS",
        "1000",
        "the local run's pause between drain invocations",
    ),
    Variable::new(
        "RUST_LOG",
        "info,sqlx=warn",
        "log filter (`tracing` `EnvFilter` syntax); logs are JSON lines",
    ),
];

/// Set by the Lambda runtime, never by hand: its presence picks `CONSUMER_NAME`'s default.
const SET_BY_LAMBDA: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The listed default of `name`. Panics for a name missing from [`VARIABLES`], which the
/// tests below would catch first.
pub(crate) fn default_of(name: &str) -> &'static str {
    match VARIABLES.iter().find(|v| v.name == name) {
        Some(v) => v.default,
        None => panic!("{name} is not in config::VARIABLES"),
    }
}

/// The service's configuration. `Config::from_env()` in the binaries; tests build it from a
/// map. Each field is the variable it names; [`VARIABLES`] says what it means and its default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BATCH_SIZE`.
    pub batch_size: usize,
    /// `CACHE_TTL` (seconds).
    pub cache_ttl: Duration,
    /// `BLOCK_TIMEOUT` (ms).
    pub block_timeout: Duration,
    /// `BATCH_DELAY` (ms).
    pub batch_delay: Duration,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `REDIS_CLUSTER`.
    pub redis_cluster: bool,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `DATABASE_MAX_LIFETIME_MS`.
    pub database_max_lifetime: Duration,
    /// `MAX_LEADS_PER_IMPORT`.
    pub max_leads_per_import: usize,
    /// `MAX_DELIVERIES`.
    pub max_deliveries: u64,
    /// `CLAIM_IDLE_MS`.
    pub claim_idle: Duration,
    /// `DRAIN_DEADLINE_MARGIN_MS`.
    pub drain_deadline_margin: Duration,
    /// `DRAIN_READ_COUNT`.
    pub drain_read_count: usize,
    /// `DRAIN_PARALLEL_BATCHES`.
    pub drain_parallel_batches: usize,
    /// `CONSUMER_NAME`: unique per execution environment.
    pub consumer_name: String,
    /// `REDIS_KEY_PREFIX`; in cluster mode it holds a hash tag (checked here).
    pub key_prefix: String,
    /// `DEFAULT_CREATED_BY`; `None` when empty.
    pub default_created_by: Option<String>,
    /// `PORT`.
    pub port: u16,
    /// `DRAIN_INTERVAL_MS`.
    pub drain_interval: Duration,
    /// `DRAIN_FUNCTION_NAME`; `None` when empty.
    pub drain_function_name: Option<String>,
    /// `DRAIN_MAX_CONCURRENCY`.
    pub drain_max_concurrency: u32,
    /// `DRAIN_ENTRIES_PER_DRAIN`.
    pub drain_entries_per_drain: u64,
    /// `DRAIN_KICK_TIMEOUT_MS`.
    pub drain_kick_timeout: Duration,
    /// `RECONCILE_AFTER_MS`.
    pub reconcile_after: Duration,
    /// `RECONCILE_JOBS`.
    pub reconcile_jobs: usize,
    /// `DEAD_LETTER_RETENTION_DAYS`.
    pub dead_letter_retention: Duration,
    /// `IDLE_CONSUMER_MS`.
    pub idle_consumer: Duration,
    /// `WEBHOOK_SECRET`; `None` when empty (no notifications).
    pub webhook_secret: Option<crate::webhook::WebhookSecret>,
    /// `WEBHOOK_SECRET_ARN`; `None` when empty.
    pub webhook_secret_arn: Option<String>,
    /// `WEBHOOK_URL`; `None` when empty.
    pub webhook_url: Option<String>,
    /// `WEBHOOK_ALLOWED_HOSTS`.
    pub webhook_allowed_hosts: crate::webhook::AllowList,
    /// `WEBHOOK_RETRY_BASE_MS`.
    pub webhook_retry_base: Duration,
    /// `EVENT_BUS_NAME`; `None` when empty.
    pub event_bus_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{name} must be {expected}, got {value:?}")]
pub struct ConfigError {
    name: &'static str,
    expected: &'static str,
    value: String,
}

impl Config {
    /// Whether signed notifications (webhooks) are on: a signing secret is configured.
    pub fn webhooks_signed(&self) -> bool {
        self.webhook_secret.is_some() || self.webhook_secret_arn.is_some()
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables (the tests pass a map). An unset
    /// or blank variable takes its default from [`VARIABLES`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let text = |name: &'static str| var(name).unwrap_or_else(|| default_of(name).to_owned());
        let number = |name: &'static str, min: u64| -> Result<u64, ConfigError> {
            let raw = text(name);
            raw.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= min)
                .ok_or(ConfigError {
                    name,
                    expected: if min == 0 {
                        "a whole number"
                    } else {
                        "a positive whole number"
                    },
                    value: raw,
                })
        };
        let millis = |name, min| number(name, min).map(Duration::from_millis);
        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            let raw = text(name);
            match raw.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ConfigError {
                    name,
                    expected: "true or false",
                    value: raw,
                }),
            }
        };
        let redis_cluster = flag("REDIS_CLUSTER")?;
        let key_prefix = match var("REDIS_KEY_PREFIX") {
            None if redis_cluster => CLUSTER_DEFAULT_PREFIX.to_owned(),
            None => default_of("REDIS_KEY_PREFIX").to_owned(),
            Some(prefix) if redis_cluster && hash_tag(&prefix).is_none() => {
                return Err(ConfigError {
                    name: "REDIS_KEY_PREFIX",
                    expected: "a prefix holding a hash tag, such as {leads} or {leads}:, with \
                               REDIS_CLUSTER=true (a script or MULTI may only touch keys of one \
                               slot, and only a hash tag puts every key in the same one)",
                    value: prefix,
                });
            }
            Some(prefix) => prefix,
        };
        // In Lambda every execution environment is its own consumer; its log stream is unique
        // to it, and a random suffix covers runtimes that do not set one.
        let consumer_name = match var("CONSUMER_NAME") {
            Some(name) => name,
            None if var(SET_BY_LAMBDA).is_some() => {
                format!("drain-{}", uuid::Uuid::new_v4().simple())
            }
            None => default_of("CONSUMER_NAME").to_owned(),
        };
        let port = number("PORT", 0)?;
        let webhook_secret = match var("WEBHOOK_SECRET") {
            None => None,
            Some(text) => Some(
                crate::webhook::WebhookSecret::parse(&text).ok_or(ConfigError {
                    name: "WEBHOOK_SECRET",
                    expected: "whsec_ followed by base64 of at least 24 bytes",
                    // Never the secret itself.
                    value: "(hidden)".to_owned(),
                })?,
            ),
        };
        let webhook_secret_arn = var("WEBHOOK_SECRET_ARN");
        if webhook_secret.is_some() && webhook_secret_arn.is_some() {
            return Err(ConfigError {
                name: "WEBHOOK_SECRET_ARN",
                expected: "unset when WEBHOOK_SECRET is set (one source of the secret)",
                value: String::new(),
            });
        }
        let webhook_url = var("WEBHOOK_URL");
        if webhook_url.is_some() && webhook_secret.is_none() && webhook_secret_arn.is_none() {
            return Err(ConfigError {
                name: "WEBHOOK_SECRET",
                expected: "set (or WEBHOOK_SECRET_ARN) when WEBHOOK_URL is: notifications are signed",
                value: String::new(),
            });
        }
        let webhook_allowed_hosts =
            crate::webhook::AllowList::parse(&text("WEBHOOK_ALLOWED_HOSTS")).map_err(|entry| {
                ConfigError {
                    name: "WEBHOOK_ALLOWED_HOSTS",
                    expected: "host names and CIDR ranges, comma-separated",
                    value: entry,
                }
            })?;
        Ok(Config {
            batch_size: number("BATCH_SIZE", 1)? as usize,
            cache_ttl: Duration::from_secs(number("CACHE_TTL", 1)?),
            block_timeout: millis("BLOCK_TIMEOUT", 0)?,
            batch_delay: millis("BATCH_DELAY", 0)?,
            redis_url: text("REDIS_URL"),
            redis_cluster,
            database_url: text("DATABASE_URL"),
            database_max_lifetime: millis("DATABASE_MAX_LIFETIME_MS", 1)?,
            max_leads_per_import: number("MAX_LEADS_PER_IMPORT", 1)? as usize,
            max_deliveries: number("MAX_DELIVERIES", 1)?,
            claim_idle: millis("CLAIM_IDLE_MS", 1)?,
            drain_deadline_margin: millis("DRAIN_DEADLINE_MARGIN_MS", 0)?,
            drain_read_count: number("DRAIN_READ_COUNT", 1)? as usize,
            drain_parallel_batches: number("DRAIN_PARALLEL_BATCHES", 1)? as usize,
            consumer_name,
            key_prefix,
            default_created_by: var("DEFAULT_CREATED_BY"),
            port: u16::try_from(port).map_err(|_| ConfigError {
                name: "PORT",
                expected: "a port number",
                value: port.to_string(),
            })?,
            drain_interval: millis("DRAIN_INTERVAL_MS", 1)?,
            drain_function_name: var("DRAIN_FUNCTION_NAME"),
            drain_max_concurrency: number("DRAIN_MAX_CONCURRENCY", 1)? as u32,
            drain_entries_per_drain: number("DRAIN_ENTRIES_PER_DRAIN", 1)?,
            drain_kick_timeout: millis("DRAIN_KICK_TIMEOUT_MS", 0)?,
            reconcile_after: millis("RECONCILE_AFTER_MS", 0)?,
            reconcile_jobs: number("RECONCILE_JOBS", 1)? as usize,
            dead_letter_retention: Duration::from_secs(
                number("DEAD_LETTER_RETENTION_DAYS", 1)? * 24 * 3600,
            ),
            idle_consumer: millis("IDLE_CONSUMER_MS", 1)?,
            webhook_secret,
            webhook_secret_arn,
            webhook_url,
            webhook_allowed_hosts,
            webhook_retry_base: millis("WEBHOOK_RETRY_BASE_MS", 1)?,
            event_bus_name: var("EVENT_BUS_NAME"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = config(&[]).unwrap();
        assert_eq!(c.batch_size, 50);
        assert_eq!(c.cache_ttl, Duration::from_secs(3600));
        assert_eq!(c.block_timeout, Duration::from_millis(5000));
        assert_eq!(c.batch_delay, Duration::ZERO);
        assert_eq!(c.max_leads_per_import, 10_000);
        assert_eq!(c.drain_parallel_batches, 4);
        assert_eq!(c.max_deliveries, 5);
        assert_eq!(c.claim_idle, Duration::from_secs(180));
        assert_eq!(c.port, 3000);
        assert_eq!(c.consumer_name, "lead-import-consumer-1");
        assert_eq!(c.key_prefix, "");
        assert!(!c.redis_cluster);
    }

    #[test]
    fn cluster_mode_defaults_to_a_hash_tag_and_refuses_a_prefix_without_one() {
        let c = config(&[("REDIS_CLUSTER", "true")]).unwrap();
        assert!(c.redis_cluster);
        assert_eq!(c.key_prefix, "{leads}");
        let c = config(&[("REDIS_CLUSTER", "TRUE"), ("REDIS_KEY_PREFIX", "app:{t1}:")]).unwrap();
        assert_eq!(c.key_prefix, "app:{t1}:");
        for untagged in ["leads:", "{}", "{}{leads}", "{leads"] {
            let err = config(&[("REDIS_CLUSTER", "true"), ("REDIS_KEY_PREFIX", untagged)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("REDIS_KEY_PREFIX must be a prefix holding a hash tag")
                    && err.ends_with(&format!("got {untagged:?}")),
                "{err}"
            );
        }
        // Outside cluster mode any prefix goes, as before.
        assert_eq!(
            config(&[("REDIS_KEY_PREFIX", "leads:")])
                .unwrap()
                .key_prefix,
            "leads:"
        );
        assert_eq!(
            config(&[("REDIS_CLUSTER", "yes")]).unwrap_err().to_string(),
            "REDIS_CLUSTER must be true or false, got \"yes\""
        );
    }

    #[test]
    fn reads_overrides() {
        let c = config(&[
            ("BATCH_SIZE", "500"),
            ("BATCH_DELAY", "100"),
            ("CONSUMER_NAME", "c7"),
        ])
        .unwrap();
        assert_eq!(
            (c.batch_size, c.batch_delay, c.consumer_name.as_str()),
            (500, Duration::from_millis(100), "c7")
        );
    }

    #[test]
    fn lambda_consumers_are_unique() {
        let a = config(&[("AWS_LAMBDA_FUNCTION_NAME", "drain-fn")]).unwrap();
        let b = config(&[("AWS_LAMBDA_FUNCTION_NAME", "drain-fn")]).unwrap();
        assert!(a.consumer_name.starts_with("drain-"));
        assert_ne!(a.consumer_name, b.consumer_name);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("BATCH_SIZE", "0")]).unwrap_err().to_string();
        assert_eq!(err, "BATCH_SIZE must be a positive whole number, got \"0\"");
        assert!(config(&[("PORT", "70000")]).is_err());
        assert!(config(&[("CACHE_TTL", "soon")]).is_err());
    }

    /// The names `lookup` was asked for while building a configuration from nothing.
    fn names_asked(build: impl FnOnce(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
        let asked = RefCell::new(BTreeSet::new());
        build(&|name: &str| {
            asked.borrow_mut().insert(name.to_owned());
            None
        });
        asked.into_inner()
    }

    #[test]
    fn from_lookup_reads_exactly_the_listed_variables() {
        // Listed, but read elsewhere (see VARIABLES); checked by the next test and telemetry.
        let elsewhere = [
            "RUST_LOG",
            "DATABASE_AUTH",
            "DATABASE_SECRET_ARN",
            "REDIS_AUTH",
            "REDIS_IAM_USER",
            "REDIS_IAM_CACHE_ARN",
        ];
        let mut asked = names_asked(|lookup| {
            Config::from_lookup(lookup).unwrap();
        });
        assert!(asked.remove(SET_BY_LAMBDA));
        let listed: BTreeSet<String> = VARIABLES
            .iter()
            .map(|v| v.name)
            .filter(|name| !elsewhere.contains(name))
            .map(str::to_owned)
            .collect();
        assert_eq!(asked, listed, "Config::from_lookup and VARIABLES disagree");
    }

    #[test]
    fn database_auth_reads_the_listed_variables_and_default() {
        use crate::aws::db_auth::DatabaseAuth;
        let asked = RefCell::new(BTreeSet::new());
        let _missing_arn = DatabaseAuth::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            (name == "DATABASE_AUTH").then(|| "secret".to_owned())
        });
        let asked: Vec<String> = asked.into_inner().into_iter().collect();
        assert_eq!(asked, ["DATABASE_AUTH", "DATABASE_SECRET_ARN"]);
        let listed_default = default_of("DATABASE_AUTH");
        assert_eq!(
            DatabaseAuth::from_lookup(|_| None).unwrap(),
            DatabaseAuth::from_lookup(|name| {
                (name == "DATABASE_AUTH").then(|| listed_default.to_owned())
            })
            .unwrap()
        );
    }

    #[test]
    fn cache_auth_reads_the_listed_variables_and_default() {
        use crate::aws::cache_auth::CacheAuth;
        let asked = RefCell::new(BTreeSet::new());
        let _missing_user = CacheAuth::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            (name == "REDIS_AUTH").then(|| "iam".to_owned())
        });
        let asked: Vec<String> = asked.into_inner().into_iter().collect();
        assert_eq!(
            asked,
            ["REDIS_AUTH", "REDIS_IAM_CACHE_ARN", "REDIS_IAM_USER"]
        );
        let listed_default = default_of("REDIS_AUTH");
        assert_eq!(
            CacheAuth::from_lookup(|_| None).unwrap(),
            CacheAuth::from_lookup(|name| {
                (name == "REDIS_AUTH").then(|| listed_default.to_owned())
            })
            .unwrap()
        );
    }

    const CONFIGURATION_MD: &str = include_str!("../../docs/configuration.md");
    const TABLE_HEADER: &str = "| variable | default | meaning |";

    /// A variable as a row of the docs' table; an empty default reads "empty".
    fn row(v: &Variable) -> String {
        let default = match v.default {
            "" => "empty".to_owned(),
            text => format!("`{text}`"),
        };
        format!("| `{}` | {default} | {} |", v.name, v.meaning)
    }

    /// The rows of the one table in docs/configuration.md headed `TABLE_HEADER`.
    fn documented_rows() -> Vec<&'static str> {
        let mut tables = CONFIGURATION_MD
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim() == TABLE_HEADER);
        let (header, _) = tables
            .next()
            .expect("docs/configuration.md has the variables table");
        assert!(
            tables.next().is_none(),
            "docs/configuration.md has one variables table"
        );
        CONFIGURATION_MD
            .lines()
            .skip(header + 2) // the header and the `| --- |` line
            .map(str::trim)
            .take_while(|line| line.starts_with('|'))
            .collect()
    }

    /// The variable's name in a row of the docs' table.
    fn documented_name(row: &str) -> &str {
        row.split('|')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .trim_matches('`')
    }

    #[test]
    fn the_docs_table_lists_exactly_the_variables() {
        let documented = documented_rows();
        let expected: Vec<String> = VARIABLES.iter().map(row).collect();
        let in_docs: BTreeSet<&str> = documented.iter().map(|r| documented_name(r)).collect();
        let in_code: BTreeSet<&str> = VARIABLES.iter().map(|v| v.name).collect();
        let undocumented: Vec<_> = in_code.difference(&in_docs).collect();
        let unknown: Vec<_> = in_docs.difference(&in_code).collect();
        assert!(
            undocumented.is_empty(),
            "docs/configuration.md has no row for {undocumented:?}; the table should read:\n{}",
            expected.join("\n")
        );
        assert!(
            unknown.is_empty(),
            "docs/configuration.md documents {unknown:?}, which config::VARIABLES does not list"
        );
        assert_eq!(
            documented,
            expected,
            "docs/configuration.md's rows (default, meaning or order) differ from \
             config::VARIABLES; the table should read:\n{}",
            expected.join("\n")
        );
    }
}
