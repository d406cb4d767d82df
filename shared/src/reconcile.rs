//! Use case: bring Redis back in line with Postgres, which holds what was accepted.
//!
//! Redis is the fast path, not the record: an import is accepted once Postgres holds the job
//! and its leads (the payload), and Redis may lose any of it afterwards (a `FLUSHALL`, an
//! eviction, a single node replaced, a replica promoted before it received the last writes).
//! The reconciler runs inside drain-fn's invocations (and the local run's), bounded to
//! `RECONCILE_JOBS` jobs per call, and for each unfinished job at least `RECONCILE_AFTER_MS`
//! old (visited again at most that often, oldest visit first):
//!
//! * never queued (Redis was down when it was accepted): queues it, from the payload;
//! * queued, but an undecided chunk's entry is no longer in the stream: queues that chunk
//!   again, from the payload, and records the new entry id;
//! * every chunk decided: owes its notification (a job whose every lead was refused at import
//!   has no chunk for a drain to finish), then notes the job finished, so it is not visited
//!   again;
//! * its cached status document is behind Postgres: adds the missing outcomes.
//!
//! Queuing a chunk that was decided meanwhile is harmless: the drain finds its outcome row and
//! stores nothing (see `drain`). What it did is in the drain's log line (`jobs_queued_late`,
//! `chunks_requeued`): the template alarms on them, since each means Redis lost a write.

use crate::domain::ImportId;
use crate::drain::DrainError;
use crate::job::leads_json;
use crate::ports::Enqueued;
use crate::postgres::{DueJob, Store};
use crate::redis::status_cache::StatusCache;
use crate::redis::stream::Queue;
use crate::webhook::Notifications;
use serde::Serialize;
use std::time::Duration;

/// What one reconciliation did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub jobs_checked: u64,
    /// Jobs queued now because Redis could not take them when they were accepted.
    pub jobs_queued_late: u64,
    /// Chunks queued again because their entry was gone from the stream.
    pub chunks_requeued: u64,
    /// Status documents brought up to date with the outcomes Postgres recorded.
    pub caches_repaired: u64,
    pub jobs_finished: u64,
}

impl ReconcileReport {
    pub fn add(&mut self, other: &ReconcileReport) {
        self.jobs_checked += other.jobs_checked;
        self.jobs_queued_late += other.jobs_queued_late;
        self.chunks_requeued += other.chunks_requeued;
        self.caches_repaired += other.caches_repaired;
        self.jobs_finished += other.jobs_finished;
    }
}

#[derive(Clone)]
pub struct Reconciler {
    queue: Queue,
    cache: StatusCache,
    store: Store,
    /// `RECONCILE_AFTER_MS`.
    quiet: Duration,
    /// `RECONCILE_JOBS`.
    jobs: usize,
    notifications: Notifications,
}

impl Reconciler {
    pub fn new(
        queue: Queue,
        cache: StatusCache,
        store: Store,
        quiet: Duration,
        jobs: usize,
        notifications: Notifications,
    ) -> Self {
        Reconciler {
            queue,
            cache,
            store,
            quiet,
            jobs,
            notifications,
        }
    }

    /// Looks at up to `RECONCILE_JOBS` jobs that are due.
    pub async fn run_once(&self) -> Result<ReconcileReport, DrainError> {
        let mut report = ReconcileReport::default();
        for job in self.store.jobs_due(self.quiet, self.jobs).await? {
            report.jobs_checked += 1;
            self.reconcile(&job, &mut report).await?;
        }
        Ok(report)
    }

    async fn reconcile(
        &self,
        job: &DueJob,
        report: &mut ReconcileReport,
    ) -> Result<(), DrainError> {
        let id = &job.import_id;
        let Some(snapshot) = self.store.load_job(id).await? else {
            return Ok(());
        };
        if job.decided.len() >= job.chunk_count as usize {
            self.notifications.owe(&self.store, &[id.as_str()]).await?;
            self.store.mark_finished(id).await?;
            report.jobs_finished += 1;
        } else {
            match &job.entry_ids {
                None => {
                    let Some(chunks) = self.store.load_chunks(id, None).await? else {
                        tracing::error!(import_id = %id, "job never queued and it has no payload to queue");
                        return Ok(());
                    };
                    let chunks_json: Vec<String> = chunks
                        .iter()
                        .map(|c| leads_json::encode(&c.leads))
                        .collect();
                    let entry_ids = match self
                        .queue
                        .enqueue(&snapshot, chunks_json.iter().map(String::as_str))
                        .await?
                    {
                        Enqueued::Queued(ids) | Enqueued::AlreadyQueued(Some(ids)) => ids,
                        // Queued, but Redis lost the ids: the next visit finds its entries by
                        // their absence and queues them again, which is harmless.
                        Enqueued::AlreadyQueued(None) => Vec::new(),
                    };
                    self.store.mark_queued(id, &entry_ids).await?;
                    tracing::warn!(import_id = %id, chunks = chunks.len(), "queued a job Redis could not take when it was accepted");
                    report.jobs_queued_late += 1;
                }
                Some(entry_ids) => {
                    report.chunks_requeued += self.requeue_lost(job, entry_ids).await?;
                }
            }
        }
        if let Ok(Some(cached)) = self.cache.get(id).await
            && cached.outcomes.len() < snapshot.outcomes.len()
        {
            self.cache.apply(id, &snapshot.outcomes, None).await?;
            report.caches_repaired += 1;
        }
        Ok(())
    }

    /// Queues again the undecided chunks whose entry the stream no longer holds.
    async fn requeue_lost(&self, job: &DueJob, entry_ids: &[String]) -> Result<u64, DrainError> {
        let undecided: Vec<u32> = (0..job.chunk_count)
            .filter(|seq| !job.decided.contains(seq))
            .collect();
        let wanted: Vec<(&str, &ImportId, u32)> = undecided
            .iter()
            .filter_map(|&seq| Some((entry_ids.get(seq as usize)?.as_str(), &job.import_id, seq)))
            .collect();
        let present = self.queue.entries_present(&wanted).await?;
        let kept: Vec<u32> = wanted
            .iter()
            .zip(present)
            .filter(|(_, present)| *present)
            .map(|((_, _, seq), _)| *seq)
            .collect();
        let lost: Vec<u32> = undecided
            .into_iter()
            .filter(|s| !kept.contains(s))
            .collect();
        if lost.is_empty() {
            return Ok(0);
        }
        let Some(chunks) = self.store.load_chunks(&job.import_id, Some(&lost)).await? else {
            tracing::error!(import_id = %job.import_id, chunks = lost.len(), "entries lost from the stream and the job has no payload to queue them again");
            return Ok(0);
        };
        let ids = self.queue.add_entries(&chunks).await?;
        let recorded: Vec<(u32, String)> = chunks.iter().map(|c| c.seq).zip(ids).collect();
        self.store.set_entry_ids(&job.import_id, &recorded).await?;
        tracing::warn!(import_id = %job.import_id, chunks = recorded.len(), "queued chunks again that Redis lost");
        Ok(recorded.len() as u64)
    }
}
