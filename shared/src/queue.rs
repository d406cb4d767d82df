//! The Redis stream `lead:imports`, its consumer group and its dead letters.
//!
//! One entry per chunk of a job, with fields `importId`, `seq`, `createdBy` and `leads` (a JSON
//! array of indexed leads). Every command here is safe to send twice (the retry-once rule in
//! `redis_conn`): enqueueing checks the job key first, XACK and trimming are idempotent, and an
//! entry read but never seen stays pending until XAUTOCLAIM hands it out again.

use crate::import_plan::{ImportPlan, IndexedLead, QueuedChunk};
use crate::job_status::JobSnapshot;
use crate::keys::Keys;
use crate::redis_conn::Redis;
use crate::status_cache::{StatusCache, snapshot_fields};
use redis::streams::{StreamAutoClaimReply, StreamPendingCountReply, StreamReadReply};
use redis::{RedisResult, Script, Value};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// `KEYS[1]` job hash, `KEYS[2]` stream. ARGV: ttl, payloadHash, n, n hash field/value items,
/// importId, createdBy, then one leads JSON per chunk. All or nothing: the job document and
/// every entry appear together and their ids are returned, or (when the job key already
/// exists) nothing is written and the stored payload hash is returned.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local existing = redis.call('HGET', KEYS[1], 'payloadHash')
        if existing then return existing end
        local n = tonumber(ARGV[3])
        redis.call('HSET', KEYS[1], 'payloadHash', ARGV[2])
        for i = 4, 3 + n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        local import_id, created_by = ARGV[4 + n], ARGV[5 + n]
        local ids = {}
        for i = 6 + n, #ARGV do
          ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'importId', import_id, 'seq', i - 6 - n,
                                     'createdBy', created_by, 'leads', ARGV[i])
        end
        return ids
        ",
    )
});

/// One entry handed to this consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub fields: HashMap<String, Value>,
}

impl Delivery {
    /// Reads the chunk the entry carries; `Err` names what is wrong with a poison entry.
    pub fn decode(&self) -> Result<QueuedChunk, String> {
        let text = |name: &str| -> Result<String, String> {
            let value = self
                .fields
                .get(name)
                .ok_or_else(|| format!("field {name} is missing"))?;
            redis::from_redis_value_ref::<String>(value)
                .map_err(|_| format!("field {name} is not text"))
        };
        let import_id = text("importId")?;
        crate::domain::ImportId::parse(&import_id).map_err(|e| format!("field importId: {e}"))?;
        let seq = text("seq")?
            .parse::<u32>()
            .map_err(|_| "field seq is not a number".to_owned())?;
        let created_by = text("createdBy")?;
        let leads: Vec<IndexedLead> = serde_json::from_str(&text("leads")?)
            .map_err(|e| format!("field leads is not a list of leads: {e}"))?;
        Ok(QueuedChunk {
            import_id,
            seq,
            created_by,
            leads,
        })
    }
}

impl From<redis::streams::StreamId> for Delivery {
    fn from(entry: redis::streams::StreamId) -> Self {
        Delivery {
            id: entry.id,
            fields: entry.map,
        }
    }
}

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
    cache_ttl: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The job's document and entries were written now; the entry ids, in `seq` order.
    Queued(Vec<String>),
    /// The job key already existed (a retry); nothing was written. Carries its payload hash.
    AlreadyQueued(String),
}

impl Queue {
    /// Connects lazily; see `Redis::connect_lazy` for the timeouts.
    pub fn connect(
        url: &str,
        keys: Keys,
        consumer: &str,
        cache_ttl: Duration,
        longest_block: Duration,
    ) -> RedisResult<(Queue, StatusCache)> {
        let redis = Redis::connect_lazy(url, longest_block)?;
        let cache = StatusCache::new(redis.clone(), keys.clone(), cache_ttl);
        Ok((
            Queue {
                redis,
                blocking: Redis::connect_lazy(url, longest_block)?,
                keys,
                consumer: consumer.to_owned(),
                cache_ttl,
            },
            cache,
        ))
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
        let fields = snapshot_fields(snapshot);
        let mut args: Vec<String> = Vec::with_capacity(5 + fields.len() * 2 + plan.chunks.len());
        args.extend([
            self.cache_ttl.as_secs().to_string(),
            plan.payload_hash.clone(),
            (fields.len() * 2).to_string(),
        ]);
        args.extend(fields.into_iter().flat_map(|(k, v)| [k, v]));
        args.extend([
            plan.import_id.to_string(),
            plan.created_by.as_str().to_owned(),
        ]);
        for chunk in &plan.chunks {
            args.push(serde_json::to_string(&chunk.leads).expect("leads serialize"));
        }
        let job_key = self.keys.job(plan.import_id.as_str());
        let reply: Value = self
            .redis
            .run(|mut c| {
                let mut invocation = ENQUEUE.key(&job_key);
                invocation.key(&self.keys.stream).arg(&args);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        match reply {
            Value::Array(_) => Ok(Enqueued::Queued(redis::from_redis_value(reply)?)),
            other => Ok(Enqueued::AlreadyQueued(redis::from_redis_value(other)?)),
        }
    }

    /// Creates the consumer group (and the stream) if they do not exist yet. The group starts
    /// at `0` so that entries queued before the first drain ran are delivered too.
    pub async fn ensure_group(&self) -> RedisResult<()> {
        let mut create = redis::cmd("XGROUP");
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
        let mut claim = redis::cmd("XAUTOCLAIM");
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
        let mut read = redis::cmd("XREADGROUP");
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
        let mut pending = redis::cmd("XPENDING");
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
        let mut ack = redis::cmd("XACK");
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
        let mut pipe = redis::pipe();
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
                    .arg(redis::from_redis_value_ref::<Vec<u8>>(value).unwrap_or_default());
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
        let mut trim = redis::cmd("XTRIM");
        trim.arg(&self.keys.stream).arg("MINID").arg(bound);
        self.redis.query(&trim).await
    }

    /// The id of the oldest entry delivered but not acked, by any consumer of the group.
    pub async fn oldest_pending_id(&self) -> RedisResult<Option<String>> {
        let mut summary = redis::cmd("XPENDING");
        summary.arg(&self.keys.stream).arg(&self.keys.group);
        let Value::Array(items) = self.redis.query(&summary).await? else {
            return Ok(None);
        };
        Ok(items
            .get(1)
            .and_then(|v| redis::from_redis_value_ref::<Option<String>>(v).ok())
            .flatten())
    }

    async fn last_delivered_id(&self) -> RedisResult<Option<String>> {
        let mut info = redis::cmd("XINFO");
        info.arg("GROUPS").arg(&self.keys.stream);
        let groups: Vec<HashMap<String, Value>> = self.redis.query(&info).await?;
        let text = |v: &Value| redis::from_redis_value_ref::<String>(v).ok();
        Ok(groups
            .iter()
            .find(|g| g.get("name").and_then(text).as_deref() == Some(&self.keys.group))
            .and_then(|g| g.get("last-delivered-id"))
            .and_then(text)
            .filter(|id| id != "0-0"))
    }

    /// Dead letters, oldest first (at most `count`).
    pub async fn dead_letters(&self, count: usize) -> RedisResult<Vec<Delivery>> {
        let mut range = redis::cmd("XRANGE");
        range
            .arg(&self.keys.dead_letters)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let reply: redis::streams::StreamRangeReply = self.redis.query(&range).await?;
        Ok(reply.ids.into_iter().map(Delivery::from).collect())
    }

    /// Puts a dead letter's chunk back on the stream as a new entry and removes the dead
    /// letter, in one MULTI (a crash cannot leave it in both or in neither).
    pub async fn requeue_dead_letter(&self, dead_id: &str, chunk: &QueuedChunk) -> RedisResult<()> {
        let leads = serde_json::to_string(&chunk.leads).expect("leads serialize");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(&self.keys.stream)
            .arg("*")
            .arg("importId")
            .arg(&chunk.import_id)
            .arg("seq")
            .arg(chunk.seq)
            .arg("createdBy")
            .arg(&chunk.created_by)
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
        let mut get = redis::cmd("CONFIG");
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
