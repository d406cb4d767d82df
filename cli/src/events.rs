//! What the commands tell the person or the script running them. On a terminal: a progress
//! bar on standard error and sentences; otherwise (or with `--json`) one JSON object per line
//! on standard output, an `event` field naming it (docs/cli.md lists them).

use indicatif::ProgressBar;
use serde::Serialize;
use std::io::Write as _;

/// The events of `leads import` (and the retries of any command), as JSON lines.
#[derive(Debug, Serialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event<'a> {
    /// The file is read and cut: how many leads, in how many parts, under which ids.
    Started {
        file: &'a str,
        format: &'a str,
        leads: u64,
        parts: u32,
        id_prefix: &'a str,
        dry_run: bool,
    },
    /// The API took a part: `resumed` when it had taken it before (a rerun).
    PartAccepted {
        part: u32,
        import_id: &'a str,
        leads: u64,
        resumed: bool,
    },
    /// The whole file's counts, from the parts' status documents.
    Progress {
        total: u64,
        processed: u64,
        successful: u64,
        failed: u64,
        leads_per_second: f64,
    },
    /// A part ended (`completed`, `failed` or `cancelled`), or a dry run's part was judged.
    PartFinished {
        part: u32,
        import_id: &'a str,
        status: &'a str,
        #[serde(flatten)]
        counts: &'a Counts,
    },
    /// A request is sent again after a network error or a busy answer.
    Retry {
        attempt: u32,
        of: u32,
        delay_seconds: f64,
        reason: &'a str,
    },
    /// The end of `leads import`.
    Summary {
        file: &'a str,
        dry_run: bool,
        parts: u32,
        import_ids: &'a [String],
        #[serde(flatten)]
        counts: &'a Counts,
        exit_code: i32,
    },
    /// `leads errors --csv`: the report is in `file`.
    ReportWritten { file: &'a str, bytes: u64 },
    /// What made a command stop (an API refusal, a bad file, an unreachable API).
    Error { title: &'a str, detail: &'a str },
}

/// Leads by outcome, for a part or the whole file. `successful` is created + updated (the
/// status document's meaning); a dry run fills `wouldImport` instead.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub total: u64,
    pub processed: u64,
    pub successful: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_import: Option<u64>,
}

impl Counts {
    /// The counts as a line says them: what a dry run would do, or what was done.
    pub fn outcome(&self) -> String {
        match self.would_import {
            Some(would) => format!(
                "would import {would}, would skip {}, would fail {}",
                self.skipped, self.failed
            ),
            None => format!(
                "created {} · updated {} · skipped {} · failed {}",
                self.created, self.updated, self.skipped, self.failed
            ),
        }
    }

    pub fn add(&mut self, other: &Counts) {
        self.total += other.total;
        self.processed += other.processed;
        self.successful += other.successful;
        self.created += other.created;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.failed += other.failed;
        if let Some(n) = other.would_import {
            *self.would_import.get_or_insert(0) += n;
        }
    }
}

/// Where a command's output goes. Cloned into the HTTP client, so that a retry notice does not
/// tear the bar.
#[derive(Clone)]
pub struct Output {
    json: bool,
    /// Hidden until `leads import` shows it; sentences go around it (`suspend`).
    pub bar: ProgressBar,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            bar: ProgressBar::hidden(),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// One JSON line, in JSON mode only.
    pub fn event(&self, event: &Event<'_>) {
        if self.json {
            self.line(&serde_json::to_string(event).expect("events serialize"));
        }
    }

    /// Any JSON value as one line (a status document, a page's item), in JSON mode only.
    pub fn value(&self, value: &serde_json::Value) {
        if self.json {
            self.line(&value.to_string());
        }
    }

    /// A sentence for a person on standard output (human mode only).
    pub fn say(&self, text: &str) {
        if !self.json {
            self.bar.suspend(|| println!("{text}"));
        }
    }

    /// A notice: a sentence on standard error for a person, `event` for a script.
    pub fn notice(&self, text: &str, event: &Event<'_>) {
        if self.json {
            self.event(event);
        } else {
            self.bar.suspend(|| eprintln!("{text}"));
        }
    }

    fn line(&self, line: &str) {
        // A closed pipe (`leads import … | head`) is no reason to stop an import.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
}
