//! A job's progress and the status document clients read (the seed's shape; `openapi.yaml`
//! describes it).
//!
//! Both the Redis cache and Postgres produce a [`JobSnapshot`]; the document, including the
//! `pending → processing → completed | failed | cancelled` state, is derived from it in one
//! place. The document carries at most [`STATUS_ERRORS`] errors (the first by index) and the
//! URL of the full report, so a poll stays small however many leads failed.

use crate::domain::{FieldError, OnExisting};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How many errors the status document carries; the rest are in the errors report.
pub const STATUS_ERRORS: usize = 100;

const DEAD_LETTER_CODE: &str = "dead_letter";
const CANCELLED_CODE: &str = "cancelled";

/// Why one lead of an import was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadError {
    /// Position of the lead in the request's `leads` array.
    pub index: u32,
    /// A sentence for people (the seed's field).
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// A stable, machine-readable reason.
    pub code: String,
    /// A CSV import's line where the lead's record starts (the header is line 1); absent for
    /// JSON.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u32>,
}

/// Every reason a lead can fail, in one place: the text users read and the code machines match.
impl LeadError {
    /// The same error at a CSV `line` (none for JSON).
    pub fn at_line(self, line: Option<u32>) -> Self {
        LeadError { line, ..self }
    }

    /// The lead broke a field's rule.
    pub fn invalid(index: u32, e: FieldError) -> Self {
        LeadError {
            index,
            error: e.message,
            field: Some(e.field.to_owned()).filter(|f| !f.is_empty()),
            code: e.code.to_owned(),
            line: None,
        }
    }

    /// An earlier lead of the same import has the same email.
    pub fn duplicate_in_import(index: u32, first: u32) -> Self {
        LeadError {
            index,
            error: format!("Duplicate email in this import: same as lead {first}"),
            field: Some("email".into()),
            code: "duplicate_in_import".into(),
            line: None,
        }
    }

    /// The `leads` table already holds the email.
    pub fn email_exists(index: u32) -> Self {
        LeadError {
            index,
            error: "Email already exists".into(),
            field: Some("email".into()),
            code: "email_exists".into(),
            line: None,
        }
    }

    /// The import was cancelled before the lead's chunk was stored.
    pub fn cancelled(index: u32) -> Self {
        LeadError {
            index,
            error: "The import was cancelled before this lead was stored".into(),
            field: None,
            code: CANCELLED_CODE.into(),
            line: None,
        }
    }

    /// A failure that may pass when tried again (the lead itself broke no rule): what a retry
    /// of the failures takes by default.
    pub fn is_transient(&self) -> bool {
        self.code == DEAD_LETTER_CODE || self.code == CANCELLED_CODE
    }

    /// The lead's stream entry was given up on, for `reason`.
    pub fn dead_letter(index: u32, reason: &str) -> Self {
        LeadError {
            index,
            error: reason.to_owned(),
            field: None,
            code: DEAD_LETTER_CODE.into(),
            line: None,
        }
    }
}

/// What became of one stream entry (chunk) of a job; recorded once, in Postgres, in the same
/// transaction as its leads, and copied into the status cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOutcome {
    pub seq: u32,
    /// Stored: created, or updated (`onExisting=update`); the seed's count.
    pub successful: u32,
    /// Of `successful`, how many updated a stored lead (absent in outcomes recorded before).
    #[serde(default)]
    pub updated: u32,
    /// Already stored and left alone (`onExisting=skip`, or an update a later-accepted import
    /// had already overtaken).
    #[serde(default)]
    pub skipped: u32,
    pub failed: u32,
    /// Given up on (dead-lettered); makes the finished job `failed`.
    #[serde(default)]
    pub dead: bool,
    pub errors: Vec<LeadError>,
}

/// Everything known of one job: its plan and the outcome of each chunk recorded so far.
/// Redis and Postgres both hold this; the status document is derived from it in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSnapshot {
    pub import_id: String,
    pub created_by: String,
    pub on_existing: OnExisting,
    pub total: u64,
    /// Stream entries the job was split into.
    pub chunks: u32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the first chunk's outcome was recorded; `None` before.
    pub started_at: Option<OffsetDateTime>,
    /// Leads refused at import, before queueing: the first [`STATUS_ERRORS`] by index (all a
    /// status document can show; the errors report has every one).
    pub rejected: Vec<LeadError>,
    /// How many leads were refused at import (`rejected` may hold fewer).
    pub rejected_count: u64,
    /// One per chunk with a recorded outcome, at most one per `seq`. Their counts are
    /// complete; their `errors` may be left empty by a reader that needs only the first.
    pub outcomes: Vec<ChunkOutcome>,
    /// Cancelled by its creator: the chunks not stored by then were decided as cancelled.
    pub cancelled: bool,
    /// The import whose failures this one retries, if it is a retry.
    pub parent_import_id: Option<String>,
    /// The retries of this import's failures, oldest first.
    pub child_import_ids: Vec<String>,
    /// Its end's notification, once one was owed.
    pub notification: Option<NotificationState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

/// The document of `GET /leads/import/{importId}/status`, and (without `progress.errors`)
/// an item of `GET /leads/imports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub import_id: String,
    pub status: JobState,
    /// What the import does with leads already stored: `fail`, `skip` or `update`.
    pub on_existing: OnExisting,
    pub progress: Progress,
    /// Every failed lead, `progress.errors` holding the first [`STATUS_ERRORS`].
    pub error_count: u64,
    /// The full errors report (JSON pages or CSV).
    pub errors_url: String,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
    #[serde(
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub completed_at: Option<OffsetDateTime>,
    /// Leads decided per second between `startedAt` and the last recorded outcome; absent
    /// until two moments are known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub leads_per_second: Option<f64>,
    /// Seconds until every lead is decided at that rate; absent with it and once finished.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub eta_seconds: Option<u64>,
    /// The import whose failures this one retries.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_import_id: Option<String>,
    /// The retries of this import's failures, oldest first; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub child_import_ids: Vec<String>,
    /// The notification of its end: the last attempt and its answer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification: Option<NotificationState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub total: u64,
    /// `successful + skipped + failed`: leads decided so far.
    pub processed: u64,
    /// `created + updated`: the leads the import stored.
    pub successful: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The first [`STATUS_ERRORS`] errors by index; absent in a list of imports.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errors: Option<Vec<LeadError>>,
}

impl JobState {
    /// `completed`, `failed` or `cancelled`: nothing will change any more.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// The state's name in the contract (`?state=`).
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// The errors report of an import, relative to the API's root.
pub fn errors_url(import_id: &str) -> String {
    format!("/leads/import/{import_id}/errors")
}

/// Where an import's notification stands, as its status document shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationState {
    pub attempts: u32,
    #[serde(
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_response_code: Option<u16>,
    pub delivered: bool,
}

/// What the chunks' outcomes add up to: all the state and the counts need, whether summed
/// from a snapshot's outcomes or by the database for a list of imports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub decided_chunks: u32,
    pub successful: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub any_dead: bool,
}

impl Tally {
    pub fn of(outcomes: &[ChunkOutcome]) -> Self {
        Tally {
            decided_chunks: outcomes.len() as u32,
            successful: outcomes.iter().map(|o| u64::from(o.successful)).sum(),
            updated: outcomes.iter().map(|o| u64::from(o.updated)).sum(),
            skipped: outcomes.iter().map(|o| u64::from(o.skipped)).sum(),
            failed: outcomes.iter().map(|o| u64::from(o.failed)).sum(),
            any_dead: outcomes.iter().any(|o| o.dead),
        }
    }
}

/// A job's facts without its errors: what its document is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    pub import_id: String,
    pub on_existing: OnExisting,
    pub total: u64,
    pub chunks: u32,
    pub rejected_count: u64,
    pub tally: Tally,
    pub cancelled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub parent_import_id: Option<String>,
    pub child_import_ids: Vec<String>,
    pub notification: Option<NotificationState>,
}

impl JobFacts {
    pub fn state(&self) -> JobState {
        let t = &self.tally;
        if t.decided_chunks >= self.chunks {
            if self.cancelled {
                JobState::Cancelled
            } else if t.any_dead {
                JobState::Failed
            } else {
                JobState::Completed
            }
        } else if t.decided_chunks > 0 {
            JobState::Processing
        } else {
            JobState::Pending
        }
    }

    /// The document, with `errors` (the first [`STATUS_ERRORS`]) or without (a list's item).
    pub fn into_status(self, errors: Option<Vec<LeadError>>) -> JobStatus {
        let status = self.state();
        let (successful, updated, skipped) = (
            self.tally.successful,
            self.tally.updated,
            self.tally.skipped,
        );
        let failed = self.rejected_count + self.tally.failed;
        let processed = successful + skipped + failed;
        let finished = status.is_finished();
        let leads_per_second = self.started_at.and_then(|started| {
            let seconds = (self.updated_at - started).as_seconds_f64();
            let drained = processed - self.rejected_count;
            (seconds > 0.0 && drained > 0).then(|| drained as f64 / seconds)
        });
        let eta_seconds = leads_per_second
            .filter(|_| !finished)
            .map(|rate| (self.total.saturating_sub(processed) as f64 / rate).ceil() as u64);
        JobStatus {
            errors_url: errors_url(&self.import_id),
            import_id: self.import_id,
            status,
            on_existing: self.on_existing,
            progress: Progress {
                total: self.total,
                processed,
                successful,
                created: successful - updated,
                updated,
                skipped,
                failed,
                errors,
            },
            error_count: failed,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            completed_at: finished.then_some(self.updated_at),
            leads_per_second: leads_per_second.map(|r| (r * 10.0).round() / 10.0),
            eta_seconds,
            parent_import_id: self.parent_import_id,
            child_import_ids: self.child_import_ids,
            notification: self.notification,
        }
    }
}

impl JobSnapshot {
    /// A job just accepted: nothing decided yet.
    pub fn accepted(plan: &crate::job::plan::ImportPlan, now: OffsetDateTime) -> Self {
        JobSnapshot {
            import_id: plan.import_id.to_string(),
            created_by: plan.created_by.as_str().to_owned(),
            on_existing: plan.on_existing,
            total: plan.total,
            chunks: plan.chunks.len() as u32,
            created_at: now,
            updated_at: now,
            started_at: None,
            rejected_count: plan.rejected.len() as u64,
            rejected: plan.rejected.clone(),
            outcomes: Vec::new(),
            cancelled: false,
            parent_import_id: plan.parent_import_id.as_ref().map(|p| p.to_string()),
            child_import_ids: Vec::new(),
            notification: None,
        }
    }

    pub fn facts(&self) -> JobFacts {
        JobFacts {
            import_id: self.import_id.clone(),
            on_existing: self.on_existing,
            total: self.total,
            chunks: self.chunks,
            rejected_count: self.rejected_count,
            tally: Tally::of(&self.outcomes),
            cancelled: self.cancelled,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            parent_import_id: self.parent_import_id.clone(),
            child_import_ids: self.child_import_ids.clone(),
            notification: self.notification.clone(),
        }
    }

    pub fn state(&self) -> JobState {
        self.facts().state()
    }

    /// The status document: the counts of every outcome, and the first [`STATUS_ERRORS`]
    /// errors by index.
    pub fn into_status(self) -> JobStatus {
        let facts = self.facts();
        let mut errors = self.rejected;
        errors.extend(self.outcomes.into_iter().flat_map(|o| o.errors));
        errors.sort_by_key(|e| e.index);
        errors.truncate(STATUS_ERRORS);
        facts.into_status(Some(errors))
    }
}

/// `2024-01-01T00:00:00.000Z`: UTC with milliseconds, as the seed's documents show.
pub mod timestamp {
    use super::*;
    use serde::{Deserializer, Serializer};
    use time::macros::format_description;

    pub fn format(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .expect("a UTC time always formats")
    }

    pub fn parse(text: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok()
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }

    /// The same for an optional time (absent fields are skipped by the caller).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    parse(&text)
                        .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn error(index: u32, text: &str) -> LeadError {
        LeadError {
            index,
            error: text.into(),
            field: Some("email".into()),
            code: "c".into(),
            line: None,
        }
    }

    fn outcome(seq: u32, successful: u32, errors: Vec<LeadError>, dead: bool) -> ChunkOutcome {
        ChunkOutcome {
            seq,
            successful,
            failed: errors.len() as u32,
            dead,
            errors,
            ..ChunkOutcome::default()
        }
    }

    fn snapshot(chunks: u32, outcomes: Vec<ChunkOutcome>) -> JobSnapshot {
        JobSnapshot {
            import_id: "j".into(),
            created_by: "u".into(),
            on_existing: OnExisting::Fail,
            total: 100,
            chunks,
            created_at: datetime!(2024-01-01 0:00 UTC),
            updated_at: datetime!(2024-01-01 0:01 UTC),
            started_at: Some(datetime!(2024-01-01 0:00:30 UTC)),
            rejected: vec![error(30, "email is not a valid address")],
            rejected_count: 1,
            outcomes,
            cancelled: false,
            parent_import_id: None,
            child_import_ids: vec![],
            notification: None,
        }
    }

    #[test]
    fn state_follows_the_chunks() {
        let done = || outcome(0, 1, vec![], false);
        assert_eq!(snapshot(2, vec![]).state(), JobState::Pending);
        assert_eq!(snapshot(2, vec![done()]).state(), JobState::Processing);
        assert_eq!(
            snapshot(2, vec![done(), outcome(1, 0, vec![], false)]).state(),
            JobState::Completed
        );
        assert_eq!(
            snapshot(2, vec![done(), outcome(1, 0, vec![error(1, "x")], true)]).state(),
            JobState::Failed
        );
        assert_eq!(
            snapshot(0, vec![]).state(),
            JobState::Completed,
            "every lead refused at import"
        );
    }

    #[test]
    fn created_updated_and_skipped_add_up() {
        let mut s = snapshot(2, vec![]);
        s.outcomes = vec![
            ChunkOutcome {
                seq: 0,
                successful: 40,
                updated: 15,
                skipped: 8,
                failed: 2,
                ..ChunkOutcome::default()
            },
            ChunkOutcome {
                seq: 1,
                successful: 10,
                updated: 10,
                ..ChunkOutcome::default()
            },
        ];
        let progress = s.into_status().progress;
        assert_eq!(
            (progress.created, progress.updated, progress.skipped),
            (25, 25, 8)
        );
        assert_eq!((progress.successful, progress.failed), (50, 3));
        assert_eq!(progress.processed, 61);
    }

    #[test]
    fn document_has_the_seed_shape_and_sums() {
        let s = snapshot(
            4,
            vec![outcome(
                0,
                48,
                vec![error(25, "Email already exists")],
                false,
            )],
        );
        let doc = serde_json::to_value(s.into_status()).unwrap();
        assert_eq!(doc["importId"], "j");
        assert_eq!(doc["status"], "processing");
        assert_eq!(doc["progress"]["total"], 100);
        assert_eq!(doc["progress"]["processed"], 50);
        assert_eq!(doc["progress"]["successful"], 48);
        assert_eq!(doc["progress"]["failed"], 2);
        assert_eq!(
            doc["progress"]["errors"][0]["index"], 25,
            "errors ordered by index"
        );
        assert_eq!(
            doc["progress"]["errors"][0]["error"],
            "Email already exists"
        );
        assert_eq!(doc["progress"]["errors"][1]["index"], 30);
        assert_eq!(doc["onExisting"], "fail");
        assert_eq!(
            (
                doc["progress"]["created"].clone(),
                doc["progress"]["updated"].clone()
            ),
            (48.into(), 0.into())
        );
        assert_eq!(doc["createdAt"], "2024-01-01T00:00:00.000Z");
        assert_eq!(doc["updatedAt"], "2024-01-01T00:01:00.000Z");
        assert_eq!(doc["errorCount"], 2);
        assert_eq!(doc["errorsUrl"], "/leads/import/j/errors");
        // 49 leads decided by the drain in the 30 s since the first outcome.
        assert_eq!(doc["startedAt"], "2024-01-01T00:00:30.000Z");
        assert_eq!(doc["leadsPerSecond"], 1.6);
        assert_eq!(doc["etaSeconds"], 31, "50 leads left at 49/30 per second");
        assert!(doc.get("completedAt").is_none());
    }

    #[test]
    fn the_document_bounds_its_errors_and_says_how_many_there_are() {
        let errors: Vec<LeadError> = (0..250).map(|i| error(i * 2, "x")).collect();
        let mut s = snapshot(1, vec![outcome(0, 0, errors, false)]);
        s.total = 600;
        let status = s.into_status();
        let shown = status.progress.errors.unwrap();
        assert_eq!(shown.len(), STATUS_ERRORS);
        assert_eq!(
            shown.iter().map(|e| e.index).take(17).collect::<Vec<_>>(),
            [
                0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 30
            ],
            "by index, the rejected lead 30 among them"
        );
        assert_eq!(status.error_count, 251);
        assert_eq!(status.status, JobState::Completed);
        assert_eq!(status.completed_at, Some(datetime!(2024-01-01 0:01 UTC)));
        assert_eq!(status.eta_seconds, None, "finished");
    }

    #[test]
    fn a_cancelled_job_is_cancelled_once_every_chunk_is_decided() {
        let mut s = snapshot(2, vec![outcome(0, 1, vec![], false)]);
        s.cancelled = true;
        assert_eq!(s.state(), JobState::Processing);
        s.outcomes
            .push(outcome(1, 0, vec![LeadError::cancelled(1)], true));
        assert_eq!(s.state(), JobState::Cancelled);
        assert!(JobState::Cancelled.is_finished());
        assert_eq!(JobState::parse("cancelled"), Some(JobState::Cancelled));
        assert_eq!(JobState::parse("Cancelled"), None);
        assert!(LeadError::cancelled(3).is_transient());
        assert!(!LeadError::email_exists(3).is_transient());
    }
}
