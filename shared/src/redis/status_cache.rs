//! The job status cache, `import:job:{importId}`: a Redis hash clients' polls are served from.
//!
//! Layout (known to this module only): the job's plan in plain fields (`importId`,
//! `createdBy`, `total`, `chunks`, `createdAt`, `updatedAt`, `startedAt`, `rejectedCount`,
//! `cancelled`, and `rejected`: the first [`STATUS_ERRORS`] leads refused at import) and one
//! field `o:{seq}` per chunk holding its recorded outcome's counts. The chunks' errors live
//! beside it in `import:job:{importId}:errors`, one field `e:{seq}` per chunk that has any, so
//! that a poll reads the counts and only the errors of the first chunks, however many leads
//! failed. Writing an outcome with `HSETNX` makes a replayed chunk a no-op, so the progress
//! update is idempotent without any counter that could be added twice; the counts are summed
//! from the outcomes when read. The keys are only a cache: when they have expired (or were
//! dropped, as a cancel does), Postgres (which holds the same facts) rebuilds them.

use super::connection::Redis;
use super::keys::Keys;
use crate::domain::{ImportId, OnExisting};
use crate::job::status::{
    ChunkOutcome, JobSnapshot, LeadError, NotificationState, STATUS_ERRORS, timestamp,
};
use crate::ports::{StatusCacheReader, Unavailable};
use ::redis::{RedisResult, Script};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;
use time::OffsetDateTime;

static APPLY_OUTCOMES: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("apply_outcomes.lua")));

/// HSET of one field, only on a key that exists (a partial hash would read as no document and
/// block the rebuild).
static SET_IF_CACHED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end",
    )
});

#[derive(Clone)]
pub struct StatusCache {
    redis: Redis,
    keys: Keys,
    ttl: Duration,
}

/// A job's status document as written when the job is queued (`Queue::enqueue` writes it in
/// the same script as the entries). A job being queued has no outcome yet, so no errors hash.
pub(crate) struct CacheDocument {
    pub key: String,
    pub ttl_secs: u64,
    pub fields: Vec<(String, String)>,
}

/// A snapshot as the two hashes' fields.
struct Fields {
    status: Vec<(String, String)>,
    errors: Vec<(String, String)>,
}

impl StatusCache {
    pub(crate) fn new(redis: Redis, keys: Keys, ttl: Duration) -> Self {
        StatusCache { redis, keys, ttl }
    }

    pub(crate) fn document(&self, snapshot: &JobSnapshot) -> CacheDocument {
        CacheDocument {
            key: self.keys.job(&snapshot.import_id),
            ttl_secs: self.ttl.as_secs(),
            fields: snapshot_fields(snapshot).status,
        }
    }

    /// The cached snapshot, or `None` when the key does not exist (never set, or expired).
    /// Its outcomes' counts are complete; only the errors of the first chunks that hold
    /// [`STATUS_ERRORS`] of them are read (what the status document shows).
    pub async fn get(&self, import_id: &ImportId) -> RedisResult<Option<JobSnapshot>> {
        let mut get = ::redis::cmd("HGETALL");
        get.arg(self.keys.job(import_id.as_str()));
        let fields: HashMap<String, String> = self.redis.query(&get).await?;
        let Some(mut snapshot) = snapshot_from_fields(&fields) else {
            return Ok(None);
        };
        let mut needed = Vec::new();
        let mut failed = 0usize;
        for outcome in snapshot.outcomes.iter().filter(|o| o.failed > 0) {
            if failed >= STATUS_ERRORS {
                break;
            }
            failed += outcome.failed as usize;
            needed.push(format!("e:{}", outcome.seq));
        }
        if !needed.is_empty() {
            let mut get = ::redis::cmd("HMGET");
            get.arg(self.keys.job_errors(import_id.as_str()))
                .arg(&needed);
            let errors: Vec<Option<String>> = self.redis.query(&get).await?;
            let by_field: HashMap<&String, String> = needed
                .iter()
                .zip(errors)
                .filter_map(|(field, errors)| Some((field, errors?)))
                .collect();
            for outcome in &mut snapshot.outcomes {
                if let Some(errors) = by_field.get(&format!("e:{}", outcome.seq))
                    && let Ok(errors) = serde_json::from_str(errors)
                {
                    outcome.errors = errors;
                }
            }
        }
        Ok(Some(snapshot))
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
        let errors_key = self.keys.job_errors(import_id.as_str());
        let snapshot = rebuilt.map(snapshot_fields).unwrap_or(Fields {
            status: Vec::new(),
            errors: Vec::new(),
        });
        let now = timestamp::format(OffsetDateTime::now_utc());
        let mut args: Vec<String> = Vec::with_capacity(
            4 + (snapshot.status.len() + snapshot.errors.len()) * 2 + outcomes.len() * 3,
        );
        args.extend([
            self.ttl.as_secs().to_string(),
            now,
            (snapshot.status.len() * 2).to_string(),
            (snapshot.errors.len() * 2).to_string(),
        ]);
        args.extend(snapshot.status.into_iter().flat_map(|(k, v)| [k, v]));
        args.extend(snapshot.errors.into_iter().flat_map(|(k, v)| [k, v]));
        for outcome in outcomes {
            let (counts, errors) = split_outcome(outcome);
            args.extend([outcome.seq.to_string(), counts, errors.unwrap_or_default()]);
        }
        let applied: i64 = self
            .redis
            .run(|mut c| {
                let mut invocation = APPLY_OUTCOMES.key(&key);
                invocation.key(&errors_key).arg(&args);
                async move { invocation.invoke_async(&mut c).await }
            })
            .await?;
        Ok(applied == 1)
    }

    /// Drops one chunk's outcome from the cache (the dead-letter re-drive; Postgres already
    /// forgot it), so the job reads `processing` until the chunk is stored.
    pub async fn forget_outcome(&self, import_id: &ImportId, seq: u32) -> RedisResult<()> {
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .hdel(self.keys.job(import_id.as_str()), format!("o:{seq}"))
            .ignore()
            .hdel(self.keys.job_errors(import_id.as_str()), format!("e:{seq}"))
            .ignore();
        self.redis.query_pipe::<()>(&pipe).await
    }

    /// Notes a new retry of the job in its cached document, if it is cached (a missing key is
    /// rebuilt from Postgres, which has it).
    pub async fn set_children(&self, import_id: &ImportId, children: &[String]) -> RedisResult<()> {
        let ids = serde_json::to_string(children).expect("ids serialize");
        self.set_if_cached(import_id, "childImportIds", &ids).await
    }

    /// Notes a notification attempt in the job's cached document, if it is cached.
    pub async fn set_notification(
        &self,
        import_id: &ImportId,
        state: &NotificationState,
    ) -> RedisResult<()> {
        let state = serde_json::to_string(state).expect("states serialize");
        self.set_if_cached(import_id, "notification", &state).await
    }

    async fn set_if_cached(
        &self,
        import_id: &ImportId,
        field: &str,
        value: &str,
    ) -> RedisResult<()> {
        self.redis
            .run(|mut c| {
                let mut invocation = SET_IF_CACHED.key(self.keys.job(import_id.as_str()));
                invocation.arg(field).arg(value);
                async move { invocation.invoke_async::<()>(&mut c).await }
            })
            .await
    }

    /// Drops the job's cached document: the next read or drain rebuilds it from Postgres
    /// (after a change Postgres decided, such as a cancel).
    pub async fn forget_job(&self, import_id: &ImportId) -> RedisResult<()> {
        let mut del = ::redis::cmd("DEL");
        del.arg(self.keys.job(import_id.as_str()))
            .arg(self.keys.job_errors(import_id.as_str()));
        self.redis.query::<i64>(&del).await.map(drop)
    }
}

impl StatusCacheReader for StatusCache {
    async fn cached(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, Unavailable> {
        Ok(self.get(import_id).await?)
    }
}

/// An outcome as its counts' JSON (errors left out) and its errors' JSON (`None` when none).
fn split_outcome(outcome: &ChunkOutcome) -> (String, Option<String>) {
    let counts = ChunkOutcome {
        errors: Vec::new(),
        ..outcome.clone()
    };
    (
        serde_json::to_string(&counts).expect("outcomes serialize"),
        (!outcome.errors.is_empty())
            .then(|| serde_json::to_string(&outcome.errors).expect("errors serialize")),
    )
}

/// The hashes' fields that hold a snapshot (see the module comment for the layout).
fn snapshot_fields(s: &JobSnapshot) -> Fields {
    let mut rejected = s.rejected.clone();
    rejected.sort_by_key(|e| e.index);
    rejected.truncate(STATUS_ERRORS);
    let mut status = vec![
        ("importId".to_owned(), s.import_id.clone()),
        ("createdBy".to_owned(), s.created_by.clone()),
        ("onExisting".to_owned(), s.on_existing.as_str().to_owned()),
        ("total".to_owned(), s.total.to_string()),
        ("chunks".to_owned(), s.chunks.to_string()),
        ("createdAt".to_owned(), timestamp::format(s.created_at)),
        ("updatedAt".to_owned(), timestamp::format(s.updated_at)),
        (
            "rejected".to_owned(),
            serde_json::to_string(&rejected).expect("errors serialize"),
        ),
        ("rejectedCount".to_owned(), s.rejected_count.to_string()),
    ];
    if let Some(started_at) = s.started_at {
        status.push(("startedAt".to_owned(), timestamp::format(started_at)));
    }
    if s.cancelled {
        status.push(("cancelled".to_owned(), "1".to_owned()));
    }
    if let Some(parent) = &s.parent_import_id {
        status.push(("parentImportId".to_owned(), parent.clone()));
    }
    if let Some(notification) = &s.notification {
        status.push((
            "notification".to_owned(),
            serde_json::to_string(notification).expect("states serialize"),
        ));
    }
    if !s.child_import_ids.is_empty() {
        status.push((
            "childImportIds".to_owned(),
            serde_json::to_string(&s.child_import_ids).expect("ids serialize"),
        ));
    }
    let mut errors = Vec::new();
    for outcome in &s.outcomes {
        let (counts, chunk_errors) = split_outcome(outcome);
        status.push((format!("o:{}", outcome.seq), counts));
        if let Some(chunk_errors) = chunk_errors {
            errors.push((format!("e:{}", outcome.seq), chunk_errors));
        }
    }
    Fields { status, errors }
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
    let rejected = serde_json::from_str::<Vec<LeadError>>(get("rejected")?).ok()?;
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
        started_at: time("startedAt"),
        // A document cached before the count was kept held every refused lead.
        rejected_count: get("rejectedCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(rejected.len() as u64),
        rejected,
        outcomes,
        cancelled: get("cancelled").is_some(),
        parent_import_id: get("parentImportId").map(str::to_owned),
        child_import_ids: get("childImportIds")
            .and_then(|ids| serde_json::from_str(ids).ok())
            .unwrap_or_default(),
        notification: get("notification").and_then(|n| serde_json::from_str(n).ok()),
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
            started_at: Some(datetime!(2024-01-01 0:00:01 UTC)),
            rejected_count: 1,
            cancelled: true,
            parent_import_id: Some("p".into()),
            child_import_ids: vec!["c1".into(), "c2".into()],
            notification: Some(NotificationState {
                attempts: 2,
                last_attempt_at: Some(datetime!(2024-01-01 0:02 UTC)),
                last_response_code: Some(500),
                delivered: false,
            }),
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
        let fields: HashMap<String, String> =
            snapshot_fields(&snapshot).status.into_iter().collect();
        assert_eq!(snapshot_from_fields(&fields), Some(snapshot));
    }

    #[test]
    fn an_empty_hash_is_no_snapshot() {
        assert_eq!(snapshot_from_fields(&HashMap::new()), None);
    }
}
