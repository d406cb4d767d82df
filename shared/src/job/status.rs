//! A job's progress and the status document clients read (the seed's shape; `openapi.yaml`
//! describes it).
//!
//! Both the Redis cache and Postgres produce a [`JobSnapshot`]; the document, including the
//! `pending → processing → completed | failed` state, is derived from it in one place.

use crate::domain::{FieldError, OnExisting};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

    /// The lead's stream entry was given up on, for `reason`.
    pub fn dead_letter(index: u32, reason: &str) -> Self {
        LeadError {
            index,
            error: reason.to_owned(),
            field: None,
            code: "dead_letter".into(),
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
    /// Leads refused at import, before queueing.
    pub rejected: Vec<LeadError>,
    /// One per chunk with a recorded outcome, at most one per `seq`.
    pub outcomes: Vec<ChunkOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Processing,
    Completed,
    Failed,
}

/// The document of `GET /leads/import/{importId}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub import_id: String,
    pub status: JobState,
    /// What the import does with leads already stored: `fail`, `skip` or `update`.
    #[serde(with = "on_existing_name")]
    pub on_existing: OnExisting,
    pub progress: Progress,
    #[serde(with = "timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "timestamp")]
    pub updated_at: OffsetDateTime,
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
    pub errors: Vec<LeadError>,
}

impl JobState {
    /// `completed` or `failed`: nothing will change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

impl JobSnapshot {
    pub fn state(&self) -> JobState {
        if self.outcomes.len() >= self.chunks as usize {
            if self.outcomes.iter().any(|o| o.dead) {
                JobState::Failed
            } else {
                JobState::Completed
            }
        } else if !self.outcomes.is_empty() {
            JobState::Processing
        } else {
            JobState::Pending
        }
    }

    pub fn into_status(self) -> JobStatus {
        let status = self.state();
        let sum = |count: fn(&ChunkOutcome) -> u32| -> u64 {
            self.outcomes.iter().map(|o| u64::from(count(o))).sum()
        };
        let (successful, updated, skipped) = (
            sum(|o| o.successful),
            sum(|o| o.updated),
            sum(|o| o.skipped),
        );
        let failed = self.rejected.len() as u64
            + self
                .outcomes
                .iter()
                .map(|o| u64::from(o.failed))
                .sum::<u64>();
        let mut errors = self.rejected;
        errors.extend(self.outcomes.into_iter().flat_map(|o| o.errors));
        errors.sort_by_key(|e| e.index);
        JobStatus {
            import_id: self.import_id,
            status,
            on_existing: self.on_existing,
            progress: Progress {
                total: self.total,
                processed: successful + skipped + failed,
                successful,
                created: successful - updated,
                updated,
                skipped,
                failed,
                errors,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// [`OnExisting`] by its name in documents.
mod on_existing_name {
    use super::OnExisting;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &OnExisting, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OnExisting, D::Error> {
        OnExisting::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
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
            rejected: vec![error(30, "email is not a valid address")],
            outcomes,
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
    }
}
