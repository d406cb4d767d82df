//! What drains are running and how much work is waiting: the inputs of starting drains with
//! the backlog (see `drain_starter`). Running drains are members of the sorted set
//! `lead:drains`, scored by their deadline (epoch ms); a drain that dies without leaving is
//! dropped once its deadline has passed. Drains asked to start but not started yet (Lambda
//! takes a moment, longer when throttled) are members of `lead:drains:starting` until they
//! start or [`STARTING_MS`] passes, so they are counted and not asked for twice.

use super::stream::Queue;
use ::redis::{RedisResult, Value};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a drain asked to start counts as starting.
pub const STARTING_MS: u64 = 10_000;

/// The work waiting in the stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Entries not yet delivered to any drain (the group's lag).
    pub waiting: u64,
    /// Entries delivered but not acknowledged.
    pub pending: u64,
}

impl Backlog {
    pub fn entries(&self) -> u64 {
        self.waiting + self.pending
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Queue {
    /// Notes drain `id` as running until `until_ms` (and, when it was `asked` to start, as no
    /// longer starting), forgets drains whose deadline passed, and returns how many run or are
    /// starting now (this one included).
    pub async fn register_drain(&self, id: &str, until_ms: u64, asked: bool) -> RedisResult<u64> {
        let (running, starting) = (&self.keys().drains, &self.keys().drains_starting);
        let now = now_ms();
        let mut pipe = ::redis::pipe();
        for key in [running, starting] {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now)
                .ignore();
        }
        pipe.cmd("ZADD").arg(running).arg(until_ms).arg(id).ignore();
        if asked {
            pipe.cmd("ZPOPMIN").arg(starting).ignore();
        }
        pipe.cmd("ZCARD").arg(running).cmd("ZCARD").arg(starting);
        let (running, starting): (u64, u64) = self.redis().query_pipe(&pipe).await?;
        Ok(running + starting)
    }

    /// Notes that `count` drains were asked to start.
    pub async fn note_starting(&self, count: u32) -> RedisResult<()> {
        if count == 0 {
            return Ok(());
        }
        let until = now_ms() + STARTING_MS;
        let mut add = ::redis::cmd("ZADD");
        add.arg(&self.keys().drains_starting);
        for _ in 0..count {
            add.arg(until)
                .arg(uuid::Uuid::new_v4().simple().to_string());
        }
        self.redis().query::<i64>(&add).await.map(drop)
    }

    pub async fn unregister_drain(&self, id: &str) -> RedisResult<()> {
        let mut rem = ::redis::cmd("ZREM");
        rem.arg(&self.keys().drains).arg(id);
        self.redis().query::<i64>(&rem).await.map(drop)
    }

    /// Drains running with at least `spare_ms` before their deadline, plus those starting.
    pub async fn drains_with_time_left(&self, spare_ms: u64) -> RedisResult<u64> {
        let now = now_ms();
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZCOUNT")
            .arg(&self.keys().drains)
            .arg(now + spare_ms)
            .arg("+inf")
            .cmd("ZCOUNT")
            .arg(&self.keys().drains_starting)
            .arg(now)
            .arg("+inf");
        let (running, starting): (u64, u64) = self.redis().query_pipe(&pipe).await?;
        Ok(running + starting)
    }

    /// The group's lag plus its pending entries. Redis keeps the lag as a count (entries added
    /// minus entries read), and entries deleted (`XDEL`) before the group read them spoil it:
    /// it is nil until the group reads past them, and may stay above zero after. So a lag that
    /// is not zero is checked against the stream itself: when no entry is left after the
    /// group's last delivered one, nothing waits (else an idle drain would wait for entries
    /// that are gone until its deadline, and start successors for them); when one is, the lag
    /// counts (Redis's nil, as the stream's length: more drains rather than fewer).
    pub async fn backlog(&self) -> RedisResult<Backlog> {
        let mut pipe = ::redis::pipe();
        pipe.cmd("XINFO").arg("GROUPS").arg(&self.keys().stream);
        pipe.cmd("XLEN").arg(&self.keys().stream);
        let result: RedisResult<(Vec<HashMap<String, Value>>, u64)> =
            self.redis().query_pipe(&pipe).await;
        let (groups, length) = match result {
            Ok(reply) => reply,
            // No stream yet: nothing waits.
            Err(e) if e.code() == Some("ERR") => return Ok(Backlog::default()),
            Err(e) => return Err(e),
        };
        let Some(group) = groups.iter().find(|g| {
            g.get("name")
                .and_then(|v| ::redis::from_redis_value_ref::<String>(v).ok())
                .as_deref()
                == Some(self.keys().group.as_str())
        }) else {
            return Ok(Backlog {
                waiting: length,
                pending: 0,
            });
        };
        let number = |name: &str| {
            group
                .get(name)
                .and_then(|v| ::redis::from_redis_value_ref::<u64>(v).ok())
        };
        let waiting = match number("lag") {
            Some(0) => 0,
            lag => {
                let last_delivered = group
                    .get("last-delivered-id")
                    .and_then(|v| ::redis::from_redis_value_ref::<String>(v).ok())
                    .unwrap_or_else(|| "0-0".to_owned());
                if self.any_entry_after(&last_delivered).await? {
                    lag.unwrap_or(length)
                } else {
                    0
                }
            }
        };
        Ok(Backlog {
            waiting,
            pending: number("pending").unwrap_or(0),
        })
    }

    /// Whether the stream holds an entry after `id`.
    async fn any_entry_after(&self, id: &str) -> RedisResult<bool> {
        let reply: ::redis::streams::StreamRangeReply = self
            .redis()
            .query(
                ::redis::cmd("XRANGE")
                    .arg(&self.keys().stream)
                    .arg(format!("({id}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        Ok(!reply.ids.is_empty())
    }
}
