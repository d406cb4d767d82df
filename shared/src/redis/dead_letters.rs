//! The dead-letter stream `lead:imports:dead`: entries the drain gave up on, each a copy of the
//! entry's fields with the reason, kept for an operator to inspect, re-drive (`redrive`) or
//! erase, and trimmed after `DEAD_LETTER_RETENTION_DAYS` (they hold leads' personal data).

use super::entry::Delivery;
use super::stream::Queue;
use crate::job::plan::QueuedChunk;
use ::redis::{RedisResult, Value};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

impl Queue {
    /// Copies an entry to `lead:imports:dead` with the reason, and acks it, in one MULTI: a
    /// crash cannot leave it copied but pending (copied twice later) or acked but not copied.
    pub async fn dead_letter(
        &self,
        id: &str,
        fields: &HashMap<String, Value>,
        reason: &str,
    ) -> RedisResult<()> {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        let add = pipe.cmd("XADD").arg(&self.keys().dead_letters).arg("*");
        add.arg("originalId")
            .arg(id)
            .arg("reason")
            .arg(reason)
            .arg("consumer")
            .arg(self.consumer());
        for (name, value) in fields {
            if !matches!(name.as_str(), "originalId" | "reason" | "consumer") {
                add.arg(name)
                    .arg(::redis::from_redis_value_ref::<Vec<u8>>(value).unwrap_or_default());
            }
        }
        pipe.ignore();
        pipe.cmd("XACK")
            .arg(&self.keys().stream)
            .arg(&self.keys().group)
            .arg(id)
            .ignore();
        self.redis().query_pipe(&pipe).await
    }

    /// Dead letters, oldest first (at most `count`).
    pub async fn dead_letters(&self, count: usize) -> RedisResult<Vec<Delivery>> {
        let mut range = ::redis::cmd("XRANGE");
        range
            .arg(&self.keys().dead_letters)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let reply: ::redis::streams::StreamRangeReply = self.redis().query(&range).await?;
        Ok(reply.ids.into_iter().map(Delivery::from).collect())
    }

    /// Puts a dead letter's chunk back on the stream as a new entry and removes the dead
    /// letter, in one MULTI (a crash cannot leave it in both or in neither).
    pub async fn requeue_dead_letter(&self, dead_id: &str, chunk: &QueuedChunk) -> RedisResult<()> {
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        self.xadd_chunk(&mut pipe, chunk).ignore();
        pipe.cmd("XDEL")
            .arg(&self.keys().dead_letters)
            .arg(dead_id)
            .ignore();
        self.redis().query_pipe(&pipe).await
    }

    /// Removes dead letters older than `age` (their ids start with the time they were added).
    pub async fn trim_dead_letters(&self, age: Duration) -> RedisResult<u64> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let bound = now_ms.saturating_sub(age.as_millis() as u64);
        let mut trim = ::redis::cmd("XTRIM");
        trim.arg(&self.keys().dead_letters).arg("MINID").arg(bound);
        self.redis().query(&trim).await
    }

    /// Erases dead letters and the personal data they hold: the one with id `only`, or all.
    /// Their leads stay failed (`dead_letter`) in their jobs.
    pub async fn erase_dead_letters(&self, only: Option<&str>) -> RedisResult<u64> {
        let erase = match only {
            Some(id) => {
                let mut del = ::redis::cmd("XDEL");
                del.arg(&self.keys().dead_letters).arg(id);
                del
            }
            None => {
                let mut trim = ::redis::cmd("XTRIM");
                trim.arg(&self.keys().dead_letters).arg("MAXLEN").arg(0);
                trim
            }
        };
        self.redis().query(&erase).await
    }
}
