//! Every knob, read once from the environment at cold start, with the documented defaults.

use std::time::Duration;

/// The service's configuration. `Config::from_env()` in the binaries; tests build it from a map.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BATCH_SIZE`: leads per stream entry (the seed's 50).
    pub batch_size: usize,
    /// `CACHE_TTL`: seconds a job's status document stays in Redis after its last update.
    pub cache_ttl: Duration,
    /// `BLOCK_TIMEOUT`: longest wait of an idle drain for new entries (ms).
    pub block_timeout: Duration,
    /// `BATCH_DELAY`: pause between two batches of one drain (ms); 0 unless throttling.
    pub batch_delay: Duration,
    /// `REDIS_URL`: `redis://` or `rediss://` (TLS).
    pub redis_url: String,
    /// `DATABASE_URL`: Postgres URL; `sslmode` is honoured.
    pub database_url: String,
    /// `MAX_LEADS_PER_IMPORT`: more leads than this in one request answer 413.
    pub max_leads_per_import: usize,
    /// `MAX_DELIVERIES`: an entry delivered more often than this goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// `CLAIM_IDLE_MS`: how long an entry sits unacked before another drain may take it over.
    pub claim_idle: Duration,
    /// `DRAIN_DEADLINE_MARGIN_MS`: a drain stops starting batches this long before its deadline.
    pub drain_deadline_margin: Duration,
    /// `DRAIN_READ_COUNT`: stream entries read, and stored in one transaction, per batch.
    pub drain_read_count: usize,
    /// `DRAIN_PARALLEL_BATCHES`: batches one drain invocation has in Postgres at once.
    pub drain_parallel_batches: usize,
    /// `CONSUMER_NAME`: this drain's consumer in the group; unique per execution environment.
    pub consumer_name: String,
    /// `REDIS_KEY_PREFIX`: prepended to every key, so several deployments (or tests) can share
    /// one Redis. Empty by default, which gives the seed's key names.
    pub key_prefix: String,
    /// `PORT`: the local run's HTTP port.
    pub port: u16,
    /// `DRAIN_INTERVAL_MS`: the local run's drain schedule.
    pub drain_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{name} must be {expected}, got {value:?}")]
pub struct ConfigError {
    name: &'static str,
    expected: &'static str,
    value: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables (the tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let number = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(raw) => {
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
                }
            }
        };
        let millis = |name, default, min| number(name, default, min).map(Duration::from_millis);
        // In Lambda every execution environment is its own consumer; its log stream is unique
        // to it, and a random suffix covers runtimes that do not set one.
        let default_consumer = match var("AWS_LAMBDA_FUNCTION_NAME") {
            Some(_) => format!("drain-{}", uuid::Uuid::new_v4().simple()),
            None => "lead-import-consumer-1".to_owned(),
        };
        let port = number("PORT", 3000, 0)?;
        Ok(Config {
            batch_size: number("BATCH_SIZE", 50, 1)? as usize,
            cache_ttl: Duration::from_secs(number("CACHE_TTL", 3600, 1)?),
            block_timeout: millis("BLOCK_TIMEOUT", 5000, 0)?,
            batch_delay: millis("BATCH_DELAY", 0, 0)?,
            redis_url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/leads".into()),
            max_leads_per_import: number("MAX_LEADS_PER_IMPORT", 10_000, 1)? as usize,
            max_deliveries: number("MAX_DELIVERIES", 5, 1)?,
            claim_idle: millis("CLAIM_IDLE_MS", 180_000, 1)?,
            drain_deadline_margin: millis("DRAIN_DEADLINE_MARGIN_MS", 3_000, 0)?,
            drain_read_count: number("DRAIN_READ_COUNT", 40, 1)? as usize,
            drain_parallel_batches: number("DRAIN_PARALLEL_BATCHES", 2, 1)? as usize,
            consumer_name: var("CONSUMER_NAME").unwrap_or(default_consumer),
            key_prefix: var("REDIS_KEY_PREFIX").unwrap_or_default(),
            port: u16::try_from(port).map_err(|_| ConfigError {
                name: "PORT",
                expected: "a port number",
                value: port.to_string(),
            })?,
            drain_interval: millis("DRAIN_INTERVAL_MS", 1000, 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(c.drain_parallel_batches, 2);
        assert_eq!(c.max_deliveries, 5);
        assert_eq!(c.claim_idle, Duration::from_secs(180));
        assert_eq!(c.port, 3000);
        assert_eq!(c.consumer_name, "lead-import-consumer-1");
        assert_eq!(c.key_prefix, "");
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
}
