//! The job status cache, `import:job:{importId}`: a Redis hash clients' polls are served from.
//!
//! Layout (known to this module only): the job's plan in plain fields (`importId`,
//! `createdBy`, `total`, `chunks`, `createdAt`, `updatedAt`, `rejected`) and one field `o:{seq}` per chunk holding its
//! recorded outcome. Writing an outcome with `HSETNX` makes a replayed chunk a no-op, so the
//! progress update is idempotent without any counter that could be added twice; the counts
//! are summed from the outcomes when read. The key is only a cache: when it has expired,
//! Postgres (which holds the same facts) rebuilds it.

use super::connection::Redis;
use super::keys::Keys;
use crate::domain::{ImportId, OnExisting};
use crate::job::status::{ChunkOutcome, JobSnapshot, LeadError, timestamp};
use crate::ports::{StatusCacheReader, Unavailable};
use ::redis::{RedisResult, Script};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;
use time::OffsetDateTime;

static APPLY_OUTCOMES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("apply_outcomes.lua")));

#[derive(Clone)]
pub struct StatusCache {
    redis: Redis,
    keys: Keys,
    ttl: Duration,
}

/// A job's status document as written when the job is queued (`Queue::enqueue` writes it in
/// the same script as the entries).
pub(crate) struct CacheDocument {
    pub key: String,
    pub ttl_secs: u64,
    pub fields: Vec<(String, String)>,
}

impl StatusCache {
    pub(crate) fn new(redis: Redis, keys: Keys, ttl: Duration) -> Self {
        StatusCache { redis, keys, ttl }
    }

    pub(crate) fn document(&self, snapshot: &JobSnapshot) -> CacheDocument {
        CacheDocument {
            key: self.keys.job(&snapshot.import_id),
            ttl_secs: self.ttl.as_secs(),
            fields: snapshot_fields(snapshot),
        }
    }

    /// The cached snapshot, or `None` when the key does not exist (never set, or expired).
    pub async fn get(&self, import_id: &ImportId) -> RedisResult<Option<JobSnapshot>> {
        let mut get = ::redis::cmd("HGETALL");
        get.arg(self.keys.job(import_id.as_str()));
        let fields: HashMap<String, String> = self.redis.query(&get).await?;
        Ok(snapshot_from_fields(&fields))
    }

    /// Records chunk outcomes in the cache. Returns `false` when the key is missing and no
    /// `rebuilt` snapshot was given: the caller then loads one from Postgres and calls again.
    /// Safe to repeat and to race with other drains: an outcome is written once per `seq`, and a
    /// snapshot only ever fills an empty key.
    pub async fn apply(
        &self,
        import_id: &ImportId,
        outcomes: &[ChunkOutcome],
        rebuilt: Option<&JobSnapshot>,
    ) -> RedisResult<bool> {
        let key = self.keys.job(import_id.as_str());
        let snapshot = rebuilt.map(snapshot_fields).unwrap_or_default();
        let now = timestamp::format(OffsetDateTime::now_utc());
        let mut args: Vec<String> = Vec::with_capacity(3 + snapshot.len() * 2 + outcomes.len() * 2);
        args.extend([
            self.ttl.as_secs().to_string(),
            now,
            (snapshot.len() * 2).to_string(),
        ]);
        args.extend(snapshot.into_iter().flat_map(|(k, v)| [k, v]));
        for outcome in outcomes {
            args.push(outcome.seq.to_string());
            args.push(serde_json::to_string(outcome).expect("outcomes serialize"));
        }
        let applied: i64 = self
            .redis
            .run(|mut c| {
                let mut invocation = APPLY_OUTCOMES.key(&key);
                invocation.arg(&args);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(applied == 1)
    }

    /// Drops one chunk's outcome from the cache (the dead-letter re-drive; Postgres already
    /// forgot it), so the job reads `processing` until the chunk is stored.
    pub async fn forget_outcome(&self, import_id: &ImportId, seq: u32) -> RedisResult<()> {
        let mut forget = ::redis::cmd("HDEL");
        forget
            .arg(self.keys.job(import_id.as_str()))
            .arg(format!("o:{seq}"));
        self.redis.query::<i64>(&forget).await.map(drop)
    }
}

impl StatusCacheReader for StatusCache {
    async fn cached(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, Unavailable> {
        Ok(self.get(import_id).await?)
    }
}

/// The hash fields that hold a snapshot (see the module comment for the layout).
fn snapshot_fields(s: &JobSnapshot) -> Vec<(String, String)> {
    let mut fields = vec![
        ("importId".to_owned(), s.import_id.clone()),
        ("createdBy".to_owned(), s.created_by.clone()),
        ("onExisting".to_owned(), s.on_existing.as_str().to_owned()),
        ("total".to_owned(), s.total.to_string()),
        ("chunks".to_owned(), s.chunks.to_string()),
        ("createdAt".to_owned(), timestamp::format(s.created_at)),
        ("updatedAt".to_owned(), timestamp::format(s.updated_at)),
        (
            "rejected".to_owned(),
            serde_json::to_string(&s.rejected).expect("errors serialize"),
        ),
    ];
    for outcome in &s.outcomes {
        fields.push((
            format!("o:{}", outcome.seq),
            serde_json::to_string(outcome).expect("outcomes serialize"),
        ));
    }
    fields
}

fn snapshot_from_fields(fields: &HashMap<String, String>) -> Option<JobSnapshot> {
    let get = |name: &str| fields.get(name).map(String::as_str);
    let time = |name: &str| get(name).and_then(timestamp::parse);
    let mut outcomes: Vec<ChunkOutcome> = fields
        .iter()
        .filter(|(k, _)| k.starts_with("o:"))
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    outcomes.sort_by_key(|o| o.seq);
    Some(JobSnapshot {
        import_id: get("importId")?.to_owned(),
        created_by: get("createdBy")?.to_owned(),
        // Absent from documents written before the choice existed.
        on_existing: match get("onExisting") {
            Some(mode) => OnExisting::parse(mode).ok()?,
            None => OnExisting::default(),
        },
        total: get("total")?.parse().ok()?,
        chunks: get("chunks")?.parse().ok()?,
        created_at: time("createdAt")?,
        updated_at: time("updatedAt")?,
        rejected: serde_json::from_str::<Vec<LeadError>>(get("rejected")?).ok()?,
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fields_round_trip_to_the_same_snapshot() {
        let snapshot = JobSnapshot {
            import_id: "j".into(),
            created_by: "u".into(),
            on_existing: OnExisting::Update,
            total: 3,
            chunks: 2,
            created_at: datetime!(2024-01-01 0:00 UTC),
            updated_at: datetime!(2024-01-01 0:01:02.345 UTC),
            rejected: vec![LeadError {
                index: 2,
                error: "bad".into(),
                field: None,
                code: "c".into(),
                line: Some(4),
            }],
            outcomes: vec![ChunkOutcome {
                seq: 1,
                successful: 1,
                updated: 1,
                ..ChunkOutcome::default()
            }],
        };
        let fields: HashMap<String, String> = snapshot_fields(&snapshot).into_iter().collect();
        assert_eq!(snapshot_from_fields(&fields), Some(snapshot));
    }

    #[test]
    fn an_empty_hash_is_no_snapshot() {
        assert_eq!(snapshot_from_fields(&HashMap::new()), None);
    }
}
