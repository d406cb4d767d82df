//! The drain: moves stream entries into Postgres, one time-bounded batch per invocation.
//!
//! Each round: claim entries other drains left idle too long (XAUTOCLAIM), or else read new
//! ones (XREADGROUP); store their leads and record their outcomes in one transaction; copy the
//! outcomes to the status cache; only then XACK. What a crash between any two steps does:
//!
//! 1. after reading, before COMMIT: nothing is in Postgres; the entries stay pending and are
//!    claimed again after `CLAIM_IDLE_MS`.
//! 2. after COMMIT, before the cache update: leads and outcomes are in Postgres; the redelivered
//!    entry finds its outcome row (`store_chunks` claims nothing), stores nothing, and copies
//!    the recorded outcome to the cache.
//! 3. after the cache update, before XACK: the same, and the cache write is a no-op (`HSETNX`
//!    per chunk).
//! 4. after XACK: done; trimming only removes entries older than the oldest pending one.
//!
//! So a lead is stored at most once (unique outcome row + unique email) and counted exactly
//! once (one outcome per chunk), and nothing is acked before its outcome is durable. Batches
//! processed side by side (`DRAIN_PARALLEL_BATCHES`) hold different entries and each goes
//! through these steps on its own, so the same holds for each of them at any crash.

use crate::config::Config;
use crate::domain::ImportId;
use crate::job::plan::QueuedChunk;
use crate::job::status::ChunkOutcome;
use crate::postgres::{EntryChunk, Outcomes, Store, StoreError};
use crate::redis::entry::Delivery;
use crate::redis::status_cache::StatusCache;
use crate::redis::stream::{Queue, entry_age};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a batch's task ended abnormally: {0}")]
    Task(String),
}

/// What one invocation did; logged and returned to the Lambda runtime.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DrainReport {
    /// Entries acknowledged, dead letters included.
    pub entries: u64,
    pub leads_stored: u64,
    pub leads_failed: u64,
    pub dead_lettered: u64,
    /// Entries deleted from the stream while pending, accounted as failed.
    pub deleted_while_pending: u64,
    pub trimmed: u64,
    /// Age of the oldest entry still pending after this run (0 when none): the backlog alarm.
    pub oldest_pending_age_ms: u64,
}

impl DrainReport {
    /// Adds one batch's counts (trimming and the backlog age are the invocation's own).
    fn add(&mut self, batch: &DrainReport) {
        self.entries += batch.entries;
        self.leads_stored += batch.leads_stored;
        self.leads_failed += batch.leads_failed;
        self.dead_lettered += batch.dead_lettered;
        self.deleted_while_pending += batch.deleted_while_pending;
    }
}

#[derive(Clone)]
pub struct Drain {
    queue: Queue,
    cache: StatusCache,
    store: Store,
    claim_idle: Duration,
    block_timeout: Duration,
    batch_delay: Duration,
    read_count: usize,
    parallel_batches: usize,
    max_deliveries: u64,
}

/// Entries fetched together and processed in one transaction.
struct Batch {
    deliveries: Vec<Delivery>,
    /// Ids XAUTOCLAIM found pending but gone from the stream.
    deleted: Vec<String>,
    /// Taken over from another consumer (so their delivery counts are checked).
    claimed: bool,
}

/// An entry that will not be stored, and why.
struct Doomed {
    delivery: Delivery,
    reason: String,
    chunk: Option<QueuedChunk>,
}

impl Drain {
    pub fn new(queue: Queue, cache: StatusCache, store: Store, config: &Config) -> Self {
        Drain {
            queue,
            cache,
            store,
            claim_idle: config.claim_idle,
            block_timeout: config.block_timeout,
            batch_delay: config.batch_delay,
            read_count: config.drain_read_count,
            parallel_batches: config.drain_parallel_batches,
            max_deliveries: config.max_deliveries,
        }
    }

    /// Logs a warning unless Redis refuses to evict keys: eviction would silently delete the
    /// stream or a job's entries. Called once per execution environment.
    pub async fn check_redis_eviction_policy(&self) {
        match self.queue.maxmemory_policy().await {
            Ok(Some(policy)) if policy == "noeviction" => {}
            Ok(policy) => tracing::warn!(
                policy = policy.as_deref().unwrap_or("unknown"),
                "Redis maxmemory-policy is not noeviction: under memory pressure Redis may delete queued imports"
            ),
            // ElastiCache disables CONFIG; its parameter group is then the place to check.
            Err(e) => {
                tracing::info!(error = %e, "could not read Redis maxmemory-policy; make sure it is noeviction")
            }
        }
    }

    /// Drains until `deadline`, or until no entry arrived within `BLOCK_TIMEOUT`.
    ///
    /// Up to `DRAIN_PARALLEL_BATCHES` batches are processed at once, each in its own task and
    /// transaction: Postgres stores one while the other's outcomes are cached and acked and
    /// the next one is read, and a database with cores to spare writes two at a time. Every
    /// batch that was read is processed, even past the deadline (the margin exists for it) or
    /// after another batch failed, so no entry waits `CLAIM_IDLE_MS` for nothing.
    pub async fn run_until(&self, deadline: Instant) -> Result<DrainReport, DrainError> {
        let mut report = DrainReport::default();
        self.queue.ensure_group().await?;
        let mut cursor = Some("0-0".to_owned());
        let mut running: JoinSet<Result<DrainReport, DrainError>> = JoinSet::new();
        let mut failure: Option<DrainError> = None;
        let mut reading = true;
        loop {
            while reading && failure.is_none() && running.len() < self.parallel_batches {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    reading = false;
                    break;
                }
                // Wait for new entries only when nothing else is left to do.
                let block = if running.is_empty() {
                    self.block_timeout.min(left)
                } else {
                    Duration::ZERO
                };
                match self.fetch(&mut cursor, block).await {
                    Ok(Some(batch)) => {
                        if let Err(e) = after_read() {
                            failure = Some(e);
                            break;
                        }
                        let drain = self.clone();
                        running.spawn(async move { drain.process(batch).await });
                    }
                    Ok(None) => {
                        reading = !running.is_empty();
                        break;
                    }
                    Err(e) => failure = Some(e),
                }
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            match done.unwrap_or_else(|e| Err(DrainError::Task(e.to_string()))) {
                Ok(batch_report) => report.add(&batch_report),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
            if !self.batch_delay.is_zero() && failure.is_none() {
                tokio::time::sleep(
                    self.batch_delay
                        .min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // One look at the pending list serves both the trim bound and the backlog alarm.
        let oldest_pending = self.queue.oldest_pending_id().await?;
        match self
            .queue
            .trim_acknowledged(oldest_pending.as_deref())
            .await
        {
            Ok(n) => report.trimmed = n,
            Err(e) => tracing::warn!(error = %e, "could not trim acknowledged entries"),
        }
        report.oldest_pending_age_ms =
            oldest_pending.map_or(0, |id| entry_age(&id).as_millis() as u64);
        Ok(report)
    }

    /// The next batch: entries left idle too long by any consumer (XAUTOCLAIM, scanning the
    /// pending list once per invocation), else new ones (XREADGROUP, waiting up to `block`).
    async fn fetch(
        &self,
        cursor: &mut Option<String>,
        block: Duration,
    ) -> Result<Option<Batch>, DrainError> {
        while let Some(from) = cursor.clone() {
            let claimed = self
                .queue
                .claim_stale(&from, self.claim_idle, self.read_count)
                .await?;
            *cursor = Some(claimed.next_cursor).filter(|next| next != "0-0");
            if !claimed.deliveries.is_empty() || !claimed.deleted_ids.is_empty() {
                return Ok(Some(Batch {
                    deliveries: claimed.deliveries,
                    deleted: claimed.deleted_ids,
                    claimed: true,
                }));
            }
        }
        let new = self.queue.read_new(self.read_count, block).await?;
        Ok((!new.is_empty()).then_some(Batch {
            deliveries: new,
            deleted: Vec::new(),
            claimed: false,
        }))
    }

    /// Stores one batch, caches its outcomes, then acks it; returns what it did.
    async fn process(self, batch: Batch) -> Result<DrainReport, DrainError> {
        let mut report = DrainReport::default();
        let Batch {
            deliveries,
            deleted,
            claimed,
        } = batch;
        let counts = match (claimed, deliveries.first(), deliveries.last()) {
            (true, Some(first), Some(last)) => {
                self.queue
                    .delivery_counts(&first.id, &last.id, deliveries.len() * 4 + 100)
                    .await?
            }
            _ => HashMap::new(),
        };
        let mut work: Vec<(Delivery, QueuedChunk)> = Vec::with_capacity(deliveries.len());
        let mut doomed: Vec<Doomed> = Vec::new();
        for delivery in deliveries {
            let deliveries_so_far = counts.get(&delivery.id).copied().unwrap_or(1);
            match delivery.decode() {
                Err(reason) => doomed.push(Doomed {
                    delivery,
                    reason: format!("undecodable entry: {reason}"),
                    chunk: None,
                }),
                Ok(chunk) if deliveries_so_far > self.max_deliveries => doomed.push(Doomed {
                    delivery,
                    reason: format!("Gave up after {deliveries_so_far} deliveries without success"),
                    chunk: Some(chunk),
                }),
                Ok(chunk) => work.push((delivery, chunk)),
            }
        }

        let chunks: Vec<&QueuedChunk> = work.iter().map(|(_, c)| c).collect();
        let mut outcomes = match self.store.store_chunks(&chunks).await {
            Ok(outcomes) => outcomes,
            Err(StoreError::Refused(e)) => {
                tracing::warn!(error = %e, "database refused a batch; storing its entries one by one");
                self.store_one_by_one(&mut work, &mut doomed).await?
            }
            Err(e) => return Err(e.into()),
        };
        fail::fail_point!("drain::after_commit", |_| Err(injected()));

        for d in &doomed {
            if let Some(chunk) = &d.chunk {
                let indexes: Vec<u32> = chunk.leads.iter().map(|l| l.index).collect();
                let outcome = self
                    .store
                    .record_dead(&chunk.import_id, chunk.seq, &indexes, &d.reason)
                    .await?;
                outcomes.insert((chunk.import_id.clone(), chunk.seq), outcome);
            }
        }
        self.update_cache(&outcomes).await?;
        fail::fail_point!("drain::after_progress", |_| Err(injected()));

        for d in &doomed {
            tracing::error!(entry = %d.delivery.id, reason = %d.reason, "dead-lettering a stream entry");
            self.queue
                .dead_letter(&d.delivery.id, &d.delivery.fields, &d.reason)
                .await?;
        }
        let ids: Vec<String> = work.iter().map(|(d, _)| d.id.clone()).collect();
        self.queue.ack(&ids).await?;

        report.entries += (ids.len() + doomed.len()) as u64;
        report.dead_lettered += doomed.len() as u64;
        for o in outcomes.values() {
            report.leads_stored += u64::from(o.successful);
            report.leads_failed += u64::from(o.failed);
        }
        self.account_deleted(&deleted, &mut report).await?;
        Ok(report)
    }

    /// A batch the database refused holds at least one entry it will always refuse: store
    /// the entries singly so that only those fail, as dead letters with the reason.
    async fn store_one_by_one(
        &self,
        work: &mut Vec<(Delivery, QueuedChunk)>,
        doomed: &mut Vec<Doomed>,
    ) -> Result<Outcomes, DrainError> {
        let mut outcomes = HashMap::new();
        let mut kept = Vec::with_capacity(work.len());
        for (delivery, chunk) in work.drain(..) {
            match self.store.store_chunks(std::slice::from_ref(&chunk)).await {
                Ok(o) => {
                    outcomes.extend(o);
                    kept.push((delivery, chunk));
                }
                Err(StoreError::Refused(e)) => {
                    let code = e
                        .as_database_error()
                        .and_then(|d| d.code())
                        .unwrap_or_default()
                        .into_owned();
                    doomed.push(Doomed {
                        delivery,
                        reason: format!("The database refused these leads (SQLSTATE {code})"),
                        chunk: Some(chunk),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        *work = kept;
        Ok(outcomes)
    }

    /// Copies outcomes into each job's status cache, rebuilding an expired key from Postgres.
    async fn update_cache(&self, outcomes: &Outcomes) -> Result<(), DrainError> {
        let mut by_job: BTreeMap<&ImportId, Vec<ChunkOutcome>> = BTreeMap::new();
        for ((import_id, _), outcome) in outcomes {
            by_job.entry(import_id).or_default().push(outcome.clone());
        }
        for (import_id, outcomes) in by_job {
            if !self.cache.apply(import_id, &outcomes, None).await?
                && let Some(snapshot) = self.store.load_job(import_id).await?
            {
                self.cache
                    .apply(import_id, &outcomes, Some(&snapshot))
                    .await?;
            }
        }
        Ok(())
    }

    /// Entries that were pending but are gone from the stream (trimmed or deleted by hand):
    /// Redis has already dropped them from the pending list, so this is the only chance to
    /// account for their leads. Each fails with a reason; the job ends `failed`.
    async fn account_deleted(
        &self,
        ids: &[String],
        report: &mut DrainReport,
    ) -> Result<(), DrainError> {
        let mut outcomes = HashMap::new();
        for id in ids {
            match self.store.chunk_of_entry(id).await? {
                Some(EntryChunk {
                    import_id,
                    seq,
                    lead_indexes,
                }) => {
                    let reason = "The stream entry was deleted from Redis before it was processed";
                    let outcome = self
                        .store
                        .record_dead(&import_id, seq, &lead_indexes, reason)
                        .await?;
                    tracing::error!(entry = %id, import_id = %import_id, seq, "pending entry was deleted from the stream");
                    report.leads_failed += u64::from(outcome.failed);
                    outcomes.insert((import_id, seq), outcome);
                }
                None => {
                    tracing::error!(entry = %id, "pending entry was deleted from the stream; no job knows it")
                }
            }
            report.deleted_while_pending += 1;
        }
        self.update_cache(&outcomes).await
    }
}

/// The crash point between reading a batch and starting to store it.
fn after_read() -> Result<(), DrainError> {
    fail::fail_point!("drain::after_read", |_| Err(injected()));
    Ok(())
}

#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
fn injected() -> DrainError {
    DrainError::Store(StoreError::Unavailable(sqlx::Error::Protocol(
        "failpoint".into(),
    )))
}
