//! The Redis stream `lead:imports`, its consumer group and its dead letters.
//!
//! One entry per chunk of a job (its fields: [`super::entry`]). Every command here is safe to send twice (the retry-once rule in
//! `connection`): enqueueing checks the job key first, XACK and trimming are idempotent, and an
//! entry read but never seen stays pending until XAUTOCLAIM hands it out again.

use super::connection::Redis;
use super::entry::Delivery;
use super::keys::Keys;
use super::status_cache::StatusCache;
use crate::domain::ImportId;
use crate::job::leads_json;
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

    pub(super) fn redis(&self) -> &Redis {
        &self.redis
    }

    pub(super) fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Writes a job's status document and one entry per chunk (each chunk's leads as
    /// `leads_json`, in `seq` order) in one atomic script; nothing when the job was queued
    /// before.
    pub async fn enqueue<'a>(
        &self,
        snapshot: &JobSnapshot,
        chunks_json: impl ExactSizeIterator<Item = &'a str>,
    ) -> RedisResult<Enqueued> {
        let document = self.cache.document(snapshot);
        let mut args: Vec<String> =
            Vec::with_capacity(4 + document.fields.len() * 2 + chunks_json.len());
        args.extend([
            document.ttl_secs.to_string(),
            (document.fields.len() * 2).to_string(),
        ]);
        args.extend(document.fields.into_iter().flat_map(|(k, v)| [k, v]));
        args.extend([
            snapshot.import_id.clone(),
            snapshot.created_by.clone(),
            snapshot.on_existing.as_str().to_owned(),
        ]);
        args.extend(chunks_json.map(str::to_owned));
        let job_key = document.key;
        let reply: Value = self
            .redis
            .run(|mut c| {
                let mut invocation = ENQUEUE.key(&job_key);
                invocation.key(&self.keys.stream).arg(&args);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(match reply {
            Value::Array(_) => Enqueued::Queued(::redis::from_redis_value(reply)?),
            Value::Int(_) => Enqueued::AlreadyQueued(None),
            other => Enqueued::AlreadyQueued(Some(
                ::redis::from_redis_value::<String>(other)?
                    .split(' ')
                    .map(str::to_owned)
                    .collect(),
            )),
        })
    }

    /// Queues chunks again as new entries (the reconciler, a deleted or undecodable entry);
    /// returns their ids, in the order given. A chunk whose outcome is recorded already is
    /// harmless to queue again: the drain finds its outcome and stores nothing.
    pub async fn add_entries(&self, chunks: &[QueuedChunk]) -> RedisResult<Vec<String>> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for chunk in chunks {
            self.xadd_chunk(&mut pipe, chunk);
        }
        self.redis.query_pipe(&pipe).await
    }

    /// Adds to `pipe` the XADD of a new entry carrying `chunk` (its fields: `entry`).
    pub(super) fn xadd_chunk<'p>(
        &self,
        pipe: &'p mut ::redis::Pipeline,
        chunk: &QueuedChunk,
    ) -> &'p mut ::redis::Pipeline {
        pipe.cmd("XADD")
            .arg(&self.keys.stream)
            .arg("*")
            .arg("importId")
            .arg(chunk.import_id.as_str())
            .arg("seq")
            .arg(chunk.seq)
            .arg("createdBy")
            .arg(chunk.created_by.as_str())
            .arg("onExisting")
            .arg(chunk.on_existing.as_str())
            .arg("leads")
            .arg(leads_json::encode(&chunk.leads))
    }

    /// For each `(entry id, job, seq)`: whether the stream still holds that entry, carrying
    /// that chunk (after a failover, an id may have been given again to another entry).
    pub async fn entries_present(
        &self,
        wanted: &[(&str, &ImportId, u32)],
    ) -> RedisResult<Vec<bool>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for (id, _, _) in wanted {
            pipe.cmd("XRANGE").arg(&self.keys.stream).arg(*id).arg(*id);
        }
        let replies: Vec<::redis::streams::StreamRangeReply> = self.redis.query_pipe(&pipe).await?;
        Ok(replies
            .into_iter()
            .zip(wanted)
            .map(|(reply, (_, import_id, seq))| {
                reply
                    .ids
                    .into_iter()
                    .any(|entry| Delivery::from(entry).key() == Some(((*import_id).clone(), *seq)))
            })
            .collect())
    }

    /// Gives back deliveries that failed because Redis or Postgres was unavailable, not for
    /// anything in the entry: each entry's delivery count goes back to what it was before this
    /// delivery, so an outage never counts toward `MAX_DELIVERIES`. The entries stay pending
    /// with their idle time reset, so they are claimed again after `CLAIM_IDLE_MS`.
    pub async fn give_back(&self, deliveries: &[(String, u64)]) -> RedisResult<()> {
        let mut by_count: HashMap<u64, Vec<&str>> = HashMap::new();
        for (id, count) in deliveries {
            by_count.entry(*count).or_default().push(id);
        }
        if by_count.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        for (count, ids) in by_count {
            pipe.cmd("XCLAIM")
                .arg(&self.keys.stream)
                .arg(&self.keys.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(ids)
                .arg("RETRYCOUNT")
                .arg(count.saturating_sub(1))
                .arg("JUSTID")
                .ignore();
        }
        self.redis.query_pipe(&pipe).await
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
        let chunks_json = plan.chunks_json().iter().map(String::as_str);
        Ok(Queue::enqueue(self, snapshot, chunks_json).await?)
    }
}
