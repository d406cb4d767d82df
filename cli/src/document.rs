//! The API's answers the CLI reads: the status document (`GET /leads/import/{id}/status`,
//! and the `200` of an import already accepted), the `202`, and a dry run's report. Only the
//! fields the CLI uses; the counts of later servers (`created`, `updated`, `skipped`,
//! `etaSeconds`) are optional so that older ones are read too.

use crate::events::Counts;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub import_id: String,
    pub status: String,
    pub progress: Progress,
    #[serde(default)]
    pub eta_seconds: Option<f64>,
    #[serde(default)]
    pub parent_import_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub total: u64,
    pub processed: u64,
    pub successful: u64,
    pub failed: u64,
    #[serde(default)]
    pub created: Option<u64>,
    #[serde(default)]
    pub updated: Option<u64>,
    #[serde(default)]
    pub skipped: Option<u64>,
}

impl JobStatus {
    /// `completed`, `failed` and `cancelled` are final.
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }

    /// Every lead created, updated or skipped.
    pub fn is_clean(&self) -> bool {
        self.status == "completed" && self.progress.failed == 0
    }

    pub fn counts(&self) -> Counts {
        let p = &self.progress;
        Counts {
            total: p.total,
            processed: p.processed,
            successful: p.successful,
            // Before `onExisting` a stored lead was always a created one.
            created: p.created.unwrap_or(p.successful),
            updated: p.updated.unwrap_or(0),
            skipped: p.skipped.unwrap_or(0),
            failed: p.failed,
            would_import: None,
        }
    }

    /// One line for a person.
    pub fn describe(&self) -> String {
        let c = self.counts();
        let mut line = format!(
            "{}: {} · {}/{} processed · created {} · updated {} · skipped {} · failed {}",
            self.import_id,
            self.status,
            c.processed,
            c.total,
            c.created,
            c.updated,
            c.skipped,
            c.failed
        );
        if let Some(eta) = self.eta_seconds.filter(|_| !self.is_finished()) {
            line.push_str(&format!(" · ETA {eta:.0}s"));
        }
        if let Some(parent) = &self.parent_import_id {
            line.push_str(&format!(" · retry of {parent}"));
        }
        line
    }
}

/// The `202` of a new import.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub import_id: String,
}

/// The `200` of `dryRun=true`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunReport {
    pub total: u64,
    pub would_import: u64,
    /// Leads already stored that `onExisting=skip` would leave alone (newer servers).
    #[serde(default)]
    pub would_skip: u64,
    pub failed: u64,
}

impl DryRunReport {
    pub fn counts(&self) -> Counts {
        Counts {
            total: self.total,
            processed: self.total,
            skipped: self.would_skip,
            failed: self.failed,
            would_import: Some(self.would_import),
            ..Counts::default()
        }
    }
}

/// An import id as the API takes it (`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`): checked before
/// it goes into a URL's path.
pub fn check_import_id(id: &str) -> Result<&str, crate::failure::Failure> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(crate::failure::bad_input(format!(
            "{id:?} is not an import id (1 to 128 of A-Z a-z 0-9 . _ : -, starting with a letter or digit)"
        )))
    }
}
