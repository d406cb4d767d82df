//! The cache's ACL user as the template makes it: its access string, read from template.yaml,
//! and a password the test can change while the app runs (as ElastiCache IAM tokens change),
//! handed to the app as its Redis credentials.

use super::app::TestApp;
use futures_util::future::BoxFuture;
use shared::app::App;
use shared::config::Config;
use shared::redis::credentials::{CredentialsError, RedisCredentialSource, RedisCredentials};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const TEMPLATE: &str = include_str!("../../../../template.yaml");

/// The `AccessString` of the template's `CacheUser`, for keys under `prefix` (the template
/// substitutes `${KeyPrefix}` the same way).
pub fn template_access_string(prefix: &str) -> String {
    let mut lines = TEMPLATE
        .lines()
        .skip_while(|l| l.trim() != "AccessString: !Sub");
    assert!(
        lines.next().is_some(),
        "template.yaml has CacheUser's AccessString"
    );
    let rule = lines
        .next()
        .and_then(|l| l.trim().strip_prefix("- "))
        .expect("the access string follows `AccessString: !Sub`");
    assert!(rule.contains("${KeyPrefix}"), "{rule}");
    rule.replace("${KeyPrefix}", prefix)
}

/// `ACL SETUSER user reset on >password <the template's access string>`, as arguments (on a
/// cluster connection the command reaches every node).
pub fn acl_setuser(user: &str, password: &str, prefix: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER")
        .arg(user)
        .arg("reset")
        .arg(format!(">{password}"));
    for rule in template_access_string(prefix).split_whitespace() {
        cmd.arg(rule);
    }
    cmd
}

/// A user's password that the test changes at will; counts how often it was asked for.
pub struct RotatingPassword {
    user: String,
    password: Mutex<String>,
    renew_every: Duration,
    asked: AtomicUsize,
}

impl RotatingPassword {
    pub fn new(user: &str, password: &str, renew_every: Duration) -> Arc<Self> {
        Arc::new(RotatingPassword {
            user: user.to_owned(),
            password: Mutex::new(password.to_owned()),
            renew_every,
            asked: AtomicUsize::new(0),
        })
    }

    /// From now on, the source answers `password`.
    pub fn set(&self, password: &str) {
        *self.password.lock().unwrap() = password.to_owned();
    }

    pub fn times_asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl RedisCredentialSource for RotatingPassword {
    fn credentials(&self) -> BoxFuture<'_, Result<RedisCredentials, CredentialsError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let credentials = RedisCredentials {
            username: self.user.clone(),
            password: self.password.lock().unwrap().clone(),
        };
        Box::pin(async move { Ok(credentials) })
    }

    fn renew_every(&self) -> Duration {
        self.renew_every
    }
}

impl TestApp {
    /// Rebuilds the app, configured by `overrides`, so that its Redis connections sign in
    /// with credentials from `source` (the test's own connection stays the default user's).
    pub fn sign_in_with(
        &mut self,
        source: Arc<dyn RedisCredentialSource>,
        overrides: &[(&str, &str)],
    ) {
        let vars = self.env(overrides);
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        self.app = App::with_redis_credentials(config, source).expect("app");
    }
}
