//! Keeping the stream and its group tidy: trimming acknowledged entries, removing consumers of
//! execution environments that are gone, and the eviction policy check. Each decision that
//! reads the group and then changes it runs as one Lua script, so no drain can slip in between.

use super::stream::Queue;
use ::redis::{RedisResult, Script};
use std::sync::LazyLock;
use std::time::Duration;

static TRIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("trim.lua")));
static IDLE_CONSUMERS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("idle_consumers.lua")));

/// What a trim did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trimmed {
    pub entries: u64,
    /// The oldest entry still pending (delivered, unacked), if any: the backlog alarm's input.
    pub oldest_pending: Option<String>,
}

impl Queue {
    /// Removes acknowledged entries: see `trim.lua` for the bound and why it is safe.
    pub async fn trim_acknowledged(&self) -> RedisResult<Trimmed> {
        let stream = &self.keys().stream;
        let group = &self.keys().group;
        let (entries, oldest_pending): (u64, Option<String>) = self
            .redis()
            .run(|mut c| {
                let mut invocation = TRIM.key(stream);
                invocation.arg(group);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(Trimmed {
            entries,
            oldest_pending,
        })
    }

    /// Removes consumers (one per past execution environment) with nothing pending that were
    /// idle longer than `idle`; returns how many.
    pub async fn remove_idle_consumers(&self, idle: Duration) -> RedisResult<u64> {
        let stream = &self.keys().stream;
        let group = &self.keys().group;
        self.redis()
            .run(|mut c| {
                let mut invocation = IDLE_CONSUMERS.key(stream);
                invocation.arg(group).arg(idle.as_millis() as u64);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await
    }

    /// Redis's eviction policy. Anything but `noeviction` may silently delete queue keys.
    pub async fn maxmemory_policy(&self) -> RedisResult<Option<String>> {
        let mut get = ::redis::cmd("CONFIG");
        get.arg("GET").arg("maxmemory-policy");
        let reply: Vec<String> = self.redis().query(&get).await?;
        Ok(reply.into_iter().nth(1))
    }
}
