//! The Redis stream `lead:imports`, its consumer group and its dead letters.
//!
//! One entry per chunk of a job (its fields: [`super::entry`]). Every command here is safe to send twice (the retry-once rule in
//! `connection`): enqueueing checks the job key first, XACK and trimming are idempotent, and an
//! entry read but never seen stays pending until XAUTOCLAIM hands it out again.

use super::connection::Redis;
use super::entry::{Delivery, leads_field};
use super::keys::Keys;
use super::status_cache::StatusCache;
use crate::job::plan::{ImportPlan, QueuedChunk};
use crate::job::status::JobSnapshot;
use crate::ports::{Enqueued, JobQueue, Unavailable};
use ::redis::streams::{StreamAutoClaimReply, StreamPendingCountReply, StreamReadReply};
use ::redis::{RedisResult, Script, Value};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("enqueue.lua")));

/// What XAUTOCLAIM found: entries taken over, and ids that were pending but are gone from the
/// stream (Redis 7+), whose leads must still be accounted for.
#[derive(Debug, Default)]
pub struct Claimed {
    pub deliveries: Vec<Delivery>,
    pub deleted_ids: Vec<String>,
    /// Where the next XAUTOCLAIM scan continues; `0-0` when the scan went round.
    pub next_cursor: String,
}

#[derive(Clone)]
pub struct Queue {
    redis: Redis,
    /// Only for `XREADGROUP … BLOCK`: Redis answers a connection's commands in order, so a
    /// blocked read on the shared connection would hold every other command of the process
    /// (an import, a status read in the local run) until it returns. Opened on first use.
    blocking: Redis,
    keys: Keys,
    consumer: String,
    /// A job is queued together with its status document, written in the cache's layout.
    cache: StatusCache,
}

impl Queue {
    /// `redis` is shared with the status cache; `blocking` is a connection of its own.
    pub(crate) fn new(
        redis: Redis,
        blocking: Redis,
        keys: Keys,
        consumer: &str,
        cache: StatusCache,
    ) -> Self {
        Queue {
            redis,
            blocking,
            keys,
            consumer: consumer.to_owned(),
            cache,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Writes the job's status document and all its entries in one atomic script.
    pub async fn enqueue(
        &self,
        plan: &ImportPlan,
        snapshot: &JobSnapshot,
    ) -> RedisResult<Enqueued> {
        let document = self.cache.document(snapshot);
        let mut args: Vec<String> =
            Vec::with_capacity(4 + document.fields.len() * 2 + plan.chunks.len());
        args.extend([
            document.ttl_secs.to_string(),
            (document.fields.len() * 2).to_string(),
        ]);
        args.extend(document.fields.into_iter().flat_map(|(k, v)| [k, v]));
        args.extend([
            plan.import_id.to_string(),
            plan.created_by.as_str().to_owned(),
        ]);
        args.extend(plan.chunks.iter().map(|chunk| leads_field(&chunk.leads)));
        let job_key = document.key;
        let reply: Value = self
            .redis
            .run(|mut c| {
                let mut invocation = ENQUEUE.key(&job_key);
                invocation.key(&self.keys.stream).arg(&args);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        match reply {
            Value::Array(_) => Ok(Enqueued::Queued(::redis::from_redis_value(reply)?)),
            _ => Ok(Enqueued::AlreadyQueued),
        }
    }

    /// Creates the consumer group (and the stream) if they do not exist yet. The group starts
    /// at `0` so that entries queued before the first drain ran are delivered too.
    pub async fn ensure_group(&self) -> RedisResult<()> {
        let mut create = ::redis::cmd("XGROUP");
        create
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(&self.keys.group)
            .arg("0")
            .arg("MKSTREAM");
        match self.redis.query::<()>(&create).await {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// XAUTOCLAIM: takes over entries left unacked longer than `min_idle` by any consumer.
    pub async fn claim_stale(
        &self,
        cursor: &str,
        min_idle: Duration,
        count: usize,
    ) -> RedisResult<Claimed> {
        let mut claim = ::redis::cmd("XAUTOCLAIM");
        claim
            .arg(&self.keys.stream)
            .arg(&self.keys.group)
            .arg(&self.consumer)
            .arg(min_idle.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(count);
        let reply: StreamAutoClaimReply = self.redis.query(&claim).await?;
        Ok(Claimed {
            deliveries: reply.claimed.into_iter().map(Delivery::from).collect(),
            deleted_ids: reply.deleted_ids,
            next_cursor: reply.next_stream_id,
        })
    }

    /// XREADGROUP `>`: entries never delivered to any consumer, waiting up to `block` for some.
    pub async fn read_new(&self, count: usize, block: Duration) -> RedisResult<Vec<Delivery>> {
        let mut read = ::redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(&self.keys.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        let connection = if block.is_zero() {
            &self.redis
        } else {
            read.arg("BLOCK").arg(block.as_millis() as u64);
            &self.blocking
        };
        read.arg("STREAMS").arg(&self.keys.stream).arg(">");
        let reply: Option<StreamReadReply> = connection.query(&read).await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(Delivery::from)
            .collect())
    }

    /// How many times each of this consumer's pending entries in `[first, last]` was delivered.
    pub async fn delivery_counts(
        &self,
        first: &str,
        last: &str,
        count: usize,
    ) -> RedisResult<HashMap<String, u64>> {
        let mut pending = ::redis::cmd("XPENDING");
        pending
            .arg(&self.keys.stream)
            .arg(&self.keys.group)
            .arg(first)
            .arg(last)
            .arg(count)
            .arg(&self.consumer);
        let reply: StreamPendingCountReply = self.redis.query(&pending).await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|p| (p.id, p.times_delivered as u64))
            .collect())
    }

    /// Acknowledges entries whose outcome is recorded everywhere.
    pub async fn ack(&self, ids: &[String]) -> RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut ack = ::redis::cmd("XACK");
        ack.arg(&self.keys.stream).arg(&self.keys.group).arg(ids);
        self.redis.query::<i64>(&ack).await.map(drop)
    }

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
        let add = pipe.cmd("XADD").arg(&self.keys.dead_letters).arg("*");
        add.arg("originalId")
            .arg(id)
            .arg("reason")
            .arg(reason)
            .arg("consumer")
            .arg(&self.consumer);
        for (name, value) in fields {
            if !matches!(name.as_str(), "originalId" | "reason" | "consumer") {
                add.arg(name)
                    .arg(::redis::from_redis_value_ref::<Vec<u8>>(value).unwrap_or_default());
            }
        }
        pipe.ignore();
        pipe.cmd("XACK")
            .arg(&self.keys.stream)
            .arg(&self.keys.group)
            .arg(id)
            .ignore();
        self.redis.query_pipe(&pipe).await
    }

    /// Removes acknowledged entries: everything older than the oldest pending entry (pass
    /// [`Queue::oldest_pending_id`]), or, when nothing is pending, older than the last entry
    /// delivered to the group. Entries not yet delivered and entries still pending are never
    /// older than that bound, so they stay.
    pub async fn trim_acknowledged(&self, oldest_pending: Option<&str>) -> RedisResult<u64> {
        let bound = match oldest_pending {
            Some(id) => id.to_owned(),
            None => match self.last_delivered_id().await? {
                Some(id) => id,
                None => return Ok(0),
            },
        };
        let mut trim = ::redis::cmd("XTRIM");
        trim.arg(&self.keys.stream).arg("MINID").arg(bound);
        self.redis.query(&trim).await
    }

    /// The id of the oldest entry delivered but not acked, by any consumer of the group.
    pub async fn oldest_pending_id(&self) -> RedisResult<Option<String>> {
        let mut summary = ::redis::cmd("XPENDING");
        summary.arg(&self.keys.stream).arg(&self.keys.group);
        let Value::Array(items) = self.redis.query(&summary).await? else {
            return Ok(None);
        };
        Ok(items
            .get(1)
            .and_then(|v| ::redis::from_redis_value_ref::<Option<String>>(v).ok())
            .flatten())
    }

    async fn last_delivered_id(&self) -> RedisResult<Option<String>> {
        let mut info = ::redis::cmd("XINFO");
        info.arg("GROUPS").arg(&self.keys.stream);
        let groups: Vec<HashMap<String, Value>> = self.redis.query(&info).await?;
        let text = |v: &Value| ::redis::from_redis_value_ref::<String>(v).ok();
        Ok(groups
            .iter()
            .find(|g| g.get("name").and_then(text).as_deref() == Some(&self.keys.group))
            .and_then(|g| g.get("last-delivered-id"))
            .and_then(text)
            .filter(|id| id != "0-0"))
    }

    /// Dead letters, oldest first (at most `count`).
    pub async fn dead_letters(&self, count: usize) -> RedisResult<Vec<Delivery>> {
        let mut range = ::redis::cmd("XRANGE");
        range
            .arg(&self.keys.dead_letters)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let reply: ::redis::streams::StreamRangeReply = self.redis.query(&range).await?;
        Ok(reply.ids.into_iter().map(Delivery::from).collect())
    }

    /// Puts a dead letter's chunk back on the stream as a new entry and removes the dead
    /// letter, in one MULTI (a crash cannot leave it in both or in neither).
    pub async fn requeue_dead_letter(&self, dead_id: &str, chunk: &QueuedChunk) -> RedisResult<()> {
        let leads = leads_field(&chunk.leads);
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(&self.keys.stream)
            .arg("*")
            .arg("importId")
            .arg(chunk.import_id.as_str())
            .arg("seq")
            .arg(chunk.seq)
            .arg("createdBy")
            .arg(chunk.created_by.as_str())
            .arg("leads")
            .arg(leads)
            .ignore()
            .cmd("XDEL")
            .arg(&self.keys.dead_letters)
            .arg(dead_id)
            .ignore();
        self.redis.query_pipe(&pipe).await
    }

    /// Redis's eviction policy. Anything but `noeviction` may silently delete queue keys.
    pub async fn maxmemory_policy(&self) -> RedisResult<Option<String>> {
        let mut get = ::redis::cmd("CONFIG");
        get.arg("GET").arg("maxmemory-policy");
        let reply: Vec<String> = self.redis.query(&get).await?;
        Ok(reply.into_iter().nth(1))
    }
}

/// How long ago a stream entry was added: its id starts with the milliseconds it was added at.
pub fn entry_age(id: &str) -> Duration {
    let added_ms: u64 = id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(now_ms.saturating_sub(added_ms))
}

impl JobQueue for Queue {
    async fn enqueue(
        &self,
        plan: &ImportPlan,
        snapshot: &JobSnapshot,
    ) -> Result<Enqueued, Unavailable> {
        Ok(Queue::enqueue(self, plan, snapshot).await?)
    }
}
