//! What the import and status use cases need from the stores, as narrow traits.
//!
//! `postgres::Store`, `redis::Queue` and `redis::StatusCache` implement them; the use cases'
//! unit tests implement them in memory, so each decision table (202, 200, 409, 503, ...) is
//! tested without servers. The integration tests run the same use cases on real servers.

use crate::domain::ImportId;
use crate::job::plan::ImportPlan;
use crate::job::status::JobSnapshot;
use std::collections::HashSet;
use std::future::Future;
use time::OffsetDateTime;

/// A store could not be reached or gave up; the caller may retry later. Its text is for logs
/// and never carries a URL or a lead's data.
pub type Unavailable = Box<dyn std::error::Error + Send + Sync>;

/// What recording a job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobInsert {
    Created,
    /// A job with this id exists already.
    Existing {
        payload_hash: String,
        queued: bool,
    },
}

/// What queueing a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The job's document and entries were written now; the entry ids, in `seq` order.
    Queued(Vec<String>),
    /// The job was in the queue already (a retry); nothing was written. The entry ids it was
    /// queued with, when Redis still has them.
    AlreadyQueued(Option<Vec<String>>),
}

/// The durable record of jobs (Postgres).
pub trait JobRecords: Sync {
    /// Records a new job, or reports the one that already has this id.
    fn insert_job(
        &self,
        plan: &ImportPlan,
        created_at: OffsetDateTime,
    ) -> impl Future<Output = Result<JobInsert, Unavailable>> + Send;

    /// Notes that the job's entries are in the stream, with their ids in `seq` order.
    fn mark_queued(
        &self,
        import_id: &ImportId,
        entry_ids: &[String],
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// Everything recorded of a job, or `None` for an unknown id.
    fn load_job(
        &self,
        import_id: &ImportId,
    ) -> impl Future<Output = Result<Option<JobSnapshot>, Unavailable>> + Send;

    /// How many of the job's chunks have a recorded outcome: one cheap look, to tell whether
    /// a cached document is behind.
    fn decided_chunks(
        &self,
        import_id: &ImportId,
    ) -> impl Future<Output = Result<u32, Unavailable>> + Send;

    /// Which of `emails` the `leads` table holds already: one query, for a dry run.
    fn existing_emails(
        &self,
        emails: &[&str],
    ) -> impl Future<Output = Result<HashSet<String>, Unavailable>> + Send;
}

/// The stream the drains read (Redis).
pub trait JobQueue: Sync {
    /// Writes the job's status document and one entry per chunk, all or nothing.
    fn enqueue(
        &self,
        plan: &ImportPlan,
        snapshot: &JobSnapshot,
    ) -> impl Future<Output = Result<Enqueued, Unavailable>> + Send;
}

/// Starting a drain once a job is queued, so its leads move at once. Never fails: a drain not
/// started is started by the schedule.
pub trait DrainKicker: Sync {
    fn kick(&self) -> impl Future<Output = ()> + Send;
}

/// The status documents clients poll (Redis): a cache of what Postgres records.
pub trait StatusCacheReader: Sync {
    /// The cached snapshot, or `None` when the key does not exist (never set, or expired).
    fn cached(
        &self,
        import_id: &ImportId,
    ) -> impl Future<Output = Result<Option<JobSnapshot>, Unavailable>> + Send;
}

/// In-memory stand-ins for the use cases' unit tests: the decision tables, not the stores'
/// behaviour, are under test there (the integration tests run the real servers).
#[cfg(test)]
pub(crate) mod fakes {
    use super::*;
    use crate::job::status::LeadError;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use time::macros::datetime;

    fn down() -> Unavailable {
        "the fake store is down".into()
    }

    /// A job snapshot whose one rejected lead's text tells where it was read from.
    pub fn snapshot(import_id: &str, created_by: &str, marker: &str) -> JobSnapshot {
        JobSnapshot {
            import_id: import_id.into(),
            created_by: created_by.into(),
            on_existing: crate::domain::OnExisting::Fail,
            total: 1,
            chunks: 0,
            created_at: datetime!(2024-01-01 0:00 UTC),
            updated_at: datetime!(2024-01-01 0:00 UTC),
            started_at: None,
            rejected: vec![LeadError::dead_letter(0, marker)],
            rejected_count: 1,
            outcomes: vec![],
            cancelled: false,
            parent_import_id: None,
            child_import_ids: vec![],
            notification: None,
        }
    }

    #[derive(Default)]
    struct Job {
        payload_hash: String,
        entry_ids: Option<Vec<String>>,
        snapshot: Option<JobSnapshot>,
    }

    #[derive(Clone, Default)]
    pub struct FakeRecords {
        jobs: Arc<Mutex<HashMap<String, Job>>>,
        down: Arc<Mutex<bool>>,
        emails: Arc<Mutex<HashSet<String>>>,
    }

    impl FakeRecords {
        pub fn put(&self, snapshot: JobSnapshot) {
            let id = snapshot.import_id.clone();
            self.jobs.lock().unwrap().insert(
                id,
                Job {
                    snapshot: Some(snapshot),
                    entry_ids: Some(vec![]),
                    ..Job::default()
                },
            );
        }

        pub fn fail(&self) {
            *self.down.lock().unwrap() = true;
        }

        /// An email the `leads` table holds.
        pub fn store_email(&self, email: &str) {
            self.emails.lock().unwrap().insert(email.to_owned());
        }

        pub fn queued_ids(&self, import_id: &str) -> Option<Vec<String>> {
            self.jobs.lock().unwrap().get(import_id)?.entry_ids.clone()
        }

        fn check(&self) -> Result<(), Unavailable> {
            if *self.down.lock().unwrap() {
                Err(down())
            } else {
                Ok(())
            }
        }
    }

    impl JobRecords for FakeRecords {
        async fn insert_job(
            &self,
            plan: &ImportPlan,
            created_at: OffsetDateTime,
        ) -> Result<JobInsert, Unavailable> {
            self.check()?;
            let mut jobs = self.jobs.lock().unwrap();
            if let Some(job) = jobs.get(plan.import_id.as_str()) {
                return Ok(JobInsert::Existing {
                    payload_hash: job.payload_hash.clone(),
                    queued: job.entry_ids.is_some(),
                });
            }
            let snapshot = JobSnapshot::accepted(plan, created_at);
            jobs.insert(
                plan.import_id.to_string(),
                Job {
                    payload_hash: plan.payload_hash.clone(),
                    entry_ids: None,
                    snapshot: Some(snapshot),
                },
            );
            Ok(JobInsert::Created)
        }

        async fn mark_queued(
            &self,
            import_id: &ImportId,
            entry_ids: &[String],
        ) -> Result<(), Unavailable> {
            self.check()?;
            if let Some(job) = self.jobs.lock().unwrap().get_mut(import_id.as_str()) {
                job.entry_ids.get_or_insert_with(|| entry_ids.to_vec());
            }
            Ok(())
        }

        async fn load_job(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, Unavailable> {
            self.check()?;
            let jobs = self.jobs.lock().unwrap();
            Ok(jobs
                .get(import_id.as_str())
                .and_then(|j| j.snapshot.clone()))
        }

        async fn decided_chunks(&self, import_id: &ImportId) -> Result<u32, Unavailable> {
            Ok(self
                .load_job(import_id)
                .await?
                .map_or(0, |s| s.outcomes.len() as u32))
        }

        async fn existing_emails(&self, emails: &[&str]) -> Result<HashSet<String>, Unavailable> {
            self.check()?;
            let stored = self.emails.lock().unwrap();
            Ok(emails
                .iter()
                .filter(|e| stored.contains(**e))
                .map(|e| (*e).to_owned())
                .collect())
        }
    }

    #[derive(Clone, Default)]
    pub struct FakeQueue {
        state: Arc<Mutex<(HashMap<String, usize>, bool)>>,
    }

    impl FakeQueue {
        pub fn fail(&self, down: bool) {
            self.state.lock().unwrap().1 = down;
        }

        /// Entries queued, over all jobs.
        pub fn entries(&self) -> usize {
            self.state.lock().unwrap().0.values().sum()
        }
    }

    impl JobQueue for FakeQueue {
        async fn enqueue(
            &self,
            plan: &ImportPlan,
            _: &JobSnapshot,
        ) -> Result<Enqueued, Unavailable> {
            let mut state = self.state.lock().unwrap();
            if state.1 {
                return Err(down());
            }
            if let Some(&n) = state.0.get(plan.import_id.as_str()) {
                return Ok(Enqueued::AlreadyQueued(Some(
                    (0..n).map(|i| format!("e{i}")).collect(),
                )));
            }
            state
                .0
                .insert(plan.import_id.to_string(), plan.chunks.len());
            Ok(Enqueued::Queued(
                (0..plan.chunks.len()).map(|i| format!("e{i}")).collect(),
            ))
        }
    }

    /// Counts kicks.
    #[derive(Clone, Default)]
    pub struct FakeKicker {
        kicks: Arc<Mutex<u32>>,
    }

    impl FakeKicker {
        pub fn kicks(&self) -> u32 {
            *self.kicks.lock().unwrap()
        }
    }

    impl DrainKicker for FakeKicker {
        async fn kick(&self) {
            *self.kicks.lock().unwrap() += 1;
        }
    }

    #[derive(Clone, Default)]
    pub struct FakeCache {
        state: Arc<Mutex<(HashMap<String, JobSnapshot>, bool)>>,
    }

    impl FakeCache {
        pub fn put(&self, snapshot: JobSnapshot) {
            let id = snapshot.import_id.clone();
            self.state.lock().unwrap().0.insert(id, snapshot);
        }

        pub fn fail(&self) {
            self.state.lock().unwrap().1 = true;
        }
    }

    impl StatusCacheReader for FakeCache {
        async fn cached(&self, import_id: &ImportId) -> Result<Option<JobSnapshot>, Unavailable> {
            let state = self.state.lock().unwrap();
            if state.1 {
                return Err(down());
            }
            Ok(state.0.get(import_id.as_str()).cloned())
        }
    }
}
