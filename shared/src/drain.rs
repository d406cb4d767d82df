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
//!
//! And what the crash proof leaves to others: a lead is stored at least once even when Redis
//! loses the entry, because Postgres keeps every accepted job's leads and the reconciler (run
//! before each drain) queues lost chunks again (`reconcile`); a batch that fails with an error
//! (a store unavailable) gives its deliveries back, so outages never count toward
//! `MAX_DELIVERIES`; entries XAUTOCLAIM reports deleted are queued again from Postgres before
//! the rest of their batch is tried.

use crate::config::Config;
use crate::domain::ImportId;
use crate::job::plan::QueuedChunk;
use crate::job::status::ChunkOutcome;
use crate::postgres::{EntryChunk, Outcomes, Store, StoreError};
use crate::reconcile::ReconcileReport;
use crate::redis::entry::Delivery;
use crate::redis::status_cache::StatusCache;
use crate::redis::stream::{Queue, entry_age};
use crate::webhook::Notifications;
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
    /// Chunks queued again from their job's durable payload, because their entry was deleted
    /// from the stream or could not be decoded.
    pub requeued: u64,
    pub trimmed: u64,
    pub dead_letters_expired: u64,
    pub idle_consumers_removed: u64,
    /// Age of the oldest entry still pending after this run (0 when none): the backlog alarm.
    pub oldest_pending_age_ms: u64,
    /// What the reconciliation before the drain did (drain-fn's handler fills it in).
    pub reconciled: ReconcileReport,
    /// Drains this one started, for the backlog (drain-fn's handler fills it in).
    pub drains_started: u64,
    /// Notifications of ended imports sent after the drain (drain-fn's handler fills it in).
    pub notifications: crate::webhook::DeliveryReport,
}

impl DrainReport {
    /// Adds the counts of another batch or invocation (the backlog's age is not a count and
    /// is left alone).
    pub fn add(&mut self, batch: &DrainReport) {
        self.reconciled.add(&batch.reconciled);
        self.trimmed += batch.trimmed;
        self.dead_letters_expired += batch.dead_letters_expired;
        self.idle_consumers_removed += batch.idle_consumers_removed;
        self.drains_started += batch.drains_started;
        self.notifications.delivered += batch.notifications.delivered;
        self.notifications.failed += batch.notifications.failed;
        self.entries += batch.entries;
        self.leads_stored += batch.leads_stored;
        self.leads_failed += batch.leads_failed;
        self.dead_lettered += batch.dead_lettered;
        self.deleted_while_pending += batch.deleted_while_pending;
        self.requeued += batch.requeued;
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
    dead_letter_retention: Duration,
    idle_consumer: Duration,
    notifications: Notifications,
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
            dead_letter_retention: config.dead_letter_retention,
            idle_consumer: config.idle_consumer,
            notifications: Notifications::from_config(config),
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
        // One script trims and reports the oldest pending entry (the backlog alarm's input).
        let trimmed = self.queue.trim_acknowledged().await?;
        report.trimmed = trimmed.entries;
        report.oldest_pending_age_ms = trimmed
            .oldest_pending
            .map_or(0, |id| entry_age(&id).as_millis() as u64);
        self.keep_tidy(&mut report).await;
        Ok(report)
    }

    /// Retention: dead letters past their age go (they hold personal data), and so do the
    /// consumers of execution environments long gone. Best effort: a failure is only logged.
    async fn keep_tidy(&self, report: &mut DrainReport) {
        match self
            .queue
            .trim_dead_letters(self.dead_letter_retention)
            .await
        {
            Ok(n) => report.dead_letters_expired = n,
            Err(e) => tracing::warn!(error = %e, "could not trim expired dead letters"),
        }
        match self.queue.remove_idle_consumers(self.idle_consumer).await {
            Ok(n) => report.idle_consumers_removed = n,
            Err(e) => tracing::warn!(error = %e, "could not remove idle consumers"),
        }
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

    /// Stores one batch, caches its outcomes, then acks it; returns what it did. When the
    /// batch fails because Redis or Postgres is unavailable, its deliveries are given back
    /// (see [`Queue::give_back`]), so an outage never turns healthy entries into dead letters.
    async fn process(self, batch: Batch) -> Result<DrainReport, DrainError> {
        let mut report = DrainReport::default();
        let counts = match (
            batch.claimed,
            batch.deliveries.first(),
            batch.deliveries.last(),
        ) {
            (true, Some(first), Some(last)) => {
                self.queue
                    .delivery_counts(&first.id, &last.id, batch.deliveries.len() * 4 + 100)
                    .await?
            }
            _ => HashMap::new(),
        };
        let delivered: Vec<(String, u64)> = batch
            .deliveries
            .iter()
            .map(|d| (d.id.clone(), counts.get(&d.id).copied().unwrap_or(1)))
            .collect();
        let stored = async {
            // Entries XAUTOCLAIM found deleted are out of the pending list already: queue them
            // again first, so that nothing failing later in this batch can make them forgotten
            // (and should this fail, the reconciler finds them missing and queues them).
            self.requeue_deleted(&batch.deleted, &mut report).await?;
            self.store_batch(batch.deliveries, &counts, &mut report)
                .await
        };
        match stored.await {
            Ok(()) => Ok(report),
            Err(e) => {
                match self.queue.give_back(&delivered).await {
                    Ok(()) => {
                        tracing::warn!(error = %e, entries = delivered.len(), "batch failed; its deliveries were given back")
                    }
                    Err(give_back) => {
                        tracing::warn!(error = %e, give_back = %give_back, "batch failed; its deliveries could not be given back")
                    }
                }
                Err(e)
            }
        }
    }

    async fn store_batch(
        &self,
        deliveries: Vec<Delivery>,
        counts: &HashMap<String, u64>,
        report: &mut DrainReport,
    ) -> Result<(), DrainError> {
        let mut work: Vec<(Delivery, QueuedChunk)> = Vec::with_capacity(deliveries.len());
        let mut doomed: Vec<Doomed> = Vec::new();
        let mut undecodable: Vec<(Delivery, String)> = Vec::new();
        for delivery in deliveries {
            let deliveries_so_far = counts.get(&delivery.id).copied().unwrap_or(1);
            match delivery.decode() {
                Err(reason) => undecodable.push((delivery, reason)),
                Ok(chunk) if deliveries_so_far > self.max_deliveries => doomed.push(Doomed {
                    delivery,
                    reason: format!("Gave up after {deliveries_so_far} deliveries without success"),
                    chunk: Some(chunk),
                }),
                Ok(chunk) => work.push((delivery, chunk)),
            }
        }
        let mut outcomes = self
            .settle_undecodable(undecodable, &mut doomed, report)
            .await?;

        let chunks: Vec<&QueuedChunk> = work.iter().map(|(_, c)| c).collect();
        outcomes.extend(match self.store.store_chunks(&chunks).await {
            Ok(outcomes) => outcomes,
            Err(StoreError::Refused(e)) => {
                tracing::warn!(error = %e, "database refused a batch; storing its entries one by one");
                self.store_one_by_one(&mut work, &mut doomed).await?
            }
            Err(e) => return Err(e.into()),
        });
        fail::fail_point!("drain::after_commit", |_| Err(injected()));

        for d in &doomed {
            if let Some(chunk) = &d.chunk {
                let leads: Vec<(u32, Option<u32>)> =
                    chunk.leads.iter().map(|l| (l.index, l.line)).collect();
                let outcome = self
                    .store
                    .record_dead(&chunk.import_id, chunk.seq, &leads, &d.reason)
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
        Ok(())
    }

    /// Entries whose fields do not decode (a changed format, a hand-written entry). One that
    /// still names a job's chunk is replaced by a fresh entry built from the job's durable
    /// payload, so the job finishes; when the payload cannot be read either, the chunk's leads
    /// fail with the reason. Either way the bad entry becomes a dead letter for inspection.
    async fn settle_undecodable(
        &self,
        undecodable: Vec<(Delivery, String)>,
        doomed: &mut Vec<Doomed>,
        report: &mut DrainReport,
    ) -> Result<Outcomes, DrainError> {
        let mut outcomes = Outcomes::new();
        for (delivery, reason) in undecodable {
            let reason = format!("undecodable entry: {reason}");
            if let Some((import_id, seq)) = delivery.key() {
                match self.store.load_chunks(&import_id, Some(&[seq])).await {
                    Ok(Some(chunks)) if !chunks.is_empty() => {
                        let ids = self.queue.add_entries(&chunks).await?;
                        self.store
                            .set_entry_ids(&import_id, &[(seq, ids[0].clone())])
                            .await?;
                        report.requeued += 1;
                    }
                    Ok(_) | Err(StoreError::Payload(_)) => {
                        if let Some(indexes) =
                            self.store.chunk_lead_indexes(&import_id, seq).await?
                        {
                            let outcome = self
                                .store
                                .record_dead(&import_id, seq, &without_lines(&indexes), &reason)
                                .await?;
                            outcomes.insert((import_id, seq), outcome);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            doomed.push(Doomed {
                delivery,
                reason,
                chunk: None,
            });
        }
        Ok(outcomes)
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

    /// Copies outcomes into each job's status cache, rebuilding an expired key from Postgres;
    /// then owes the notification of every job these outcomes finished (before the entries
    /// are acked, so a crash leaves a replay that owes it again).
    async fn update_cache(&self, outcomes: &Outcomes) -> Result<(), DrainError> {
        let mut by_job: BTreeMap<&ImportId, Vec<ChunkOutcome>> = BTreeMap::new();
        for ((import_id, _), outcome) in outcomes {
            by_job.entry(import_id).or_default().push(outcome.clone());
        }
        let jobs: Vec<&str> = by_job.keys().map(|id| id.as_str()).collect();
        self.notifications.owe(&self.store, &jobs).await?;
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

    /// Entries that were pending but are gone from the stream (trimmed or deleted by hand, or
    /// lost by Redis): Redis has already dropped them from the pending list, so they are
    /// queued again now, from their job's durable payload. A job accepted before payloads were
    /// kept cannot be: its chunk's leads fail with a reason, so the job still finishes.
    async fn requeue_deleted(
        &self,
        ids: &[String],
        report: &mut DrainReport,
    ) -> Result<(), DrainError> {
        let mut outcomes = Outcomes::new();
        for id in ids {
            report.deleted_while_pending += 1;
            let Some(EntryChunk {
                import_id,
                seq,
                lead_indexes,
            }) = self.store.chunk_of_entry(id).await?
            else {
                tracing::error!(entry = %id, "pending entry was deleted from the stream; no job knows it");
                continue;
            };
            if let Some(chunks) = self.store.load_chunks(&import_id, Some(&[seq])).await?
                && !chunks.is_empty()
            {
                let ids = self.queue.add_entries(&chunks).await?;
                self.store
                    .set_entry_ids(&import_id, &[(seq, ids[0].clone())])
                    .await?;
                tracing::warn!(entry = %id, import_id = %import_id, seq, "pending entry was deleted from the stream; queued again from Postgres");
                report.requeued += 1;
                continue;
            }
            let reason = "The stream entry was deleted from Redis before it was processed";
            let outcome = self
                .store
                .record_dead(&import_id, seq, &without_lines(&lead_indexes), reason)
                .await?;
            tracing::error!(entry = %id, import_id = %import_id, seq, "pending entry was deleted from the stream");
            report.leads_failed += u64::from(outcome.failed);
            outcomes.insert((import_id, seq), outcome);
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

/// Leads known by index only (their entry could not be read, nor their payload): their lines,
/// which travel with the leads, are lost with them, and their errors name no line.
fn without_lines(indexes: &[u32]) -> Vec<(u32, Option<u32>)> {
    indexes.iter().map(|&index| (index, None)).collect()
}
