//! Use case: read a job's status document.
//!
//! The document comes from the Redis cache, or is rebuilt from Postgres when the cache has
//! expired or Redis is unreachable, so status keeps working through a Redis outage. When the
//! two disagree Postgres decides: a cached document that says unfinished is checked against
//! the number of outcomes Postgres recorded (one indexed count), and Postgres's document is
//! served when the cache is behind (an outcome write lost in a failover, say). The cache can
//! lag but never lead: outcomes reach it only after their transaction committed.
//!
//! Another caller's job answers exactly like an unknown one (see [`crate::job::caller`]).

use crate::domain::ImportId;
use crate::job::caller::Caller;
use crate::job::status::{JobSnapshot, JobStatus};
use crate::ports::{JobRecords, StatusCacheReader, Unavailable};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    InvalidId(String),
    #[error("no import with id {0}")]
    NotFound(ImportId),
    #[error("could not load the job: {0}")]
    Unavailable(#[source] Unavailable),
}

/// The document of job `raw_id` as `caller` may see it.
pub async fn read_status(
    cache: &impl StatusCacheReader,
    records: &impl JobRecords,
    caller: &Caller,
    raw_id: &str,
) -> Result<JobStatus, StatusError> {
    let import_id = ImportId::parse(raw_id).map_err(StatusError::InvalidId)?;
    current_snapshot(cache, records, &import_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not load the job");
            StatusError::Unavailable(e)
        })?
        .filter(|job| caller.may_see(&job.created_by))
        .map(JobSnapshot::into_status)
        .ok_or(StatusError::NotFound(import_id))
}

/// The job's snapshot: cached, or from Postgres when the cache has none or cannot be reached.
pub(crate) async fn current_snapshot(
    cache: &impl StatusCacheReader,
    records: &impl JobRecords,
    import_id: &ImportId,
) -> Result<Option<JobSnapshot>, Unavailable> {
    match cache.cached(import_id).await {
        Ok(Some(cached)) if cached.state().is_finished() => return Ok(Some(cached)),
        Ok(Some(cached)) => match records.decided_chunks(import_id).await {
            Ok(decided) if decided as usize <= cached.outcomes.len() => return Ok(Some(cached)),
            Ok(_) => {}
            // Postgres is down: the cache is the best there is.
            Err(e) => {
                tracing::warn!(error = %e, import_id = %import_id, "could not check the cached status against Postgres");
                return Ok(Some(cached));
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, import_id = %import_id, "status cache unreachable; reading Postgres")
        }
    }
    records.load_job(import_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fakes::{FakeCache, FakeRecords, snapshot};

    #[tokio::test]
    async fn the_cache_answers_first_and_postgres_when_it_cannot() {
        let records = FakeRecords::default();
        records.put(snapshot("j", "u1", "from-postgres"));
        let cache = FakeCache::default();
        let read = |cache: &FakeCache| {
            let cache = cache.clone();
            let records = records.clone();
            async move {
                read_status(&cache, &records, &Caller::Unverified, "j")
                    .await
                    .map(|s| s.progress.errors.unwrap()[0].error.clone())
            }
        };
        assert_eq!(read(&cache).await.unwrap(), "from-postgres", "cache empty");
        cache.put(snapshot("j", "u1", "from-cache"));
        assert_eq!(read(&cache).await.unwrap(), "from-cache");
        cache.fail();
        assert_eq!(read(&cache).await.unwrap(), "from-postgres", "cache down");
        records.fail();
        assert!(matches!(
            read(&cache).await,
            Err(StatusError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn postgres_decides_when_the_cache_is_behind() {
        let outcome = |seq| crate::job::status::ChunkOutcome {
            seq,
            successful: 1,
            ..Default::default()
        };
        let mut behind = snapshot("j", "u1", "from-cache");
        behind.chunks = 2;
        behind.outcomes = vec![outcome(0)];
        let mut ahead = behind.clone();
        ahead.outcomes.push(outcome(1));
        ahead.rejected[0].error = "from-postgres".into();
        let (cache, records) = (FakeCache::default(), FakeRecords::default());
        cache.put(behind.clone());
        records.put(ahead);
        let status = read_status(&cache, &records, &Caller::Unverified, "j")
            .await
            .unwrap();
        assert_eq!(
            status.progress.errors.as_ref().unwrap()[0].error,
            "from-postgres"
        );
        assert!(status.status.is_finished());
        records.put(behind);
        let status = read_status(&cache, &records, &Caller::Unverified, "j")
            .await
            .unwrap();
        assert_eq!(
            status.progress.errors.as_ref().unwrap()[0].error,
            "from-cache",
            "as far as Postgres"
        );
    }

    #[tokio::test]
    async fn another_callers_job_is_not_found_like_an_unknown_one() {
        let records = FakeRecords::default();
        records.put(snapshot("j", "u1", "x"));
        let cache = FakeCache::default();
        let other = Caller::Verified("u2".into());
        assert!(matches!(
            read_status(&cache, &records, &other, "j").await,
            Err(StatusError::NotFound(_))
        ));
        assert!(matches!(
            read_status(&cache, &records, &other, "nope").await,
            Err(StatusError::NotFound(_))
        ));
        let owner = Caller::Verified("u1".into());
        assert!(read_status(&cache, &records, &owner, "j").await.is_ok());
        assert!(matches!(
            read_status(&cache, &records, &owner, "bad id").await,
            Err(StatusError::InvalidId(_))
        ));
    }
}
