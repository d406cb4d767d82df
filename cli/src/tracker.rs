//! `leads import`'s view of its parts: what the API answered to each, their status documents
//! read until each ends, their counts summed for the bar, the events and the summary, and the
//! exit code.

use crate::client::Client;
use crate::document::{DryRunReport, JobStatus};
use crate::events::{Counts, Event, Output};
use crate::failure::{self, Failure};
use crate::progress;
use std::time::Instant;

/// What the API said to one part.
pub enum Answer {
    /// `202`: taken now.
    Accepted { part: u32, id: String, leads: u64 },
    /// `200`: taken before (a rerun), with its status.
    Resumed {
        part: u32,
        leads: u64,
        status: JobStatus,
    },
    /// A dry run's report.
    Judged {
        part: u32,
        id: String,
        report: DryRunReport,
    },
}

/// One part as followed.
struct Followed {
    id: String,
    counts: Counts,
    /// Its final state, once it has one.
    ended: Option<String>,
}

/// The parts' counts, summed for the bar, the events and the summary.
pub struct Tracker<'a> {
    output: &'a Output,
    /// The file's leads.
    leads: u64,
    parts: u32,
    dry_run: bool,
    followed: Vec<Followed>,
    /// Leads already processed when their part was found taken by an earlier run: not this
    /// run's work, so not in its rate.
    resumed_processed: u64,
    /// Processed, successful and failed at the last `progress` event.
    last_progress: (u64, u64, u64),
    started: Instant,
}

impl<'a> Tracker<'a> {
    pub fn new(output: &'a Output, leads: u64, parts: u32, dry_run: bool) -> Self {
        Tracker {
            output,
            leads,
            parts,
            dry_run,
            followed: Vec::new(),
            resumed_processed: 0,
            last_progress: (0, 0, 0),
            started: Instant::now(),
        }
    }

    pub fn following(&self) -> bool {
        self.followed.iter().any(|p| p.ended.is_none())
    }

    pub fn answered(&mut self, answer: Answer) {
        let resumed = matches!(answer, Answer::Resumed { .. });
        match answer {
            Answer::Accepted { part, id, leads } => {
                self.accepted(part, &id, leads, false);
                self.followed.push(Followed {
                    id,
                    counts: Counts {
                        total: leads,
                        ..Counts::default()
                    },
                    ended: None,
                });
            }
            Answer::Resumed {
                part,
                leads,
                status,
            } => {
                self.accepted(part, &status.import_id, leads, true);
                self.resumed_processed += status.progress.processed;
                self.followed.push(Followed {
                    id: status.import_id.clone(),
                    counts: status.counts(),
                    ended: None,
                });
                self.observe(part as usize - 1, &status);
            }
            Answer::Judged { part, id, report } => {
                self.followed.push(Followed {
                    id,
                    counts: report.counts(),
                    ended: Some("judged".into()),
                });
                self.finished(part as usize - 1);
            }
        }
        self.progress();
        if resumed {
            // The bar's rate and ETA are about this run's work, counted from the position the
            // earlier run's leads put it at.
            self.output.bar.reset_eta();
        }
    }

    fn accepted(&self, part: u32, id: &str, leads: u64, resumed: bool) {
        self.output.event(&Event::PartAccepted {
            part,
            import_id: id,
            leads,
            resumed,
        });
    }

    /// Reads the status of every part not yet ended.
    pub async fn poll(&mut self, client: &Client) -> Result<(), Failure> {
        for index in 0..self.followed.len() {
            if self.followed[index].ended.is_some() {
                continue;
            }
            let path = format!("/leads/import/{}/status", self.followed[index].id);
            let (_, status): (_, JobStatus) =
                client.json(&client.get(client.url(&path, &[]))).await?;
            self.observe(index, &status);
        }
        self.progress();
        Ok(())
    }

    fn observe(&mut self, index: usize, status: &JobStatus) {
        self.followed[index].counts = status.counts();
        if status.is_finished() {
            self.followed[index].ended = Some(status.status.clone());
            self.finished(index);
        }
    }

    fn finished(&self, index: usize) {
        let part = &self.followed[index];
        let status = part.ended.as_deref().unwrap_or("");
        self.output.event(&Event::PartFinished {
            part: index as u32 + 1,
            import_id: &part.id,
            status,
            counts: &part.counts,
        });
        self.output.say(&format!(
            "part {}/{} {} {status}: {}",
            index + 1,
            self.parts,
            part.id,
            part.counts.outcome()
        ));
    }

    fn total(&self) -> Counts {
        let mut total = Counts::default();
        for part in &self.followed {
            total.add(&part.counts);
        }
        total
    }

    /// The bar, and a `progress` event when leads were processed since the last one.
    fn progress(&mut self) {
        let total = self.total();
        progress::update(self.output, &total, self.followed.len() as u32, self.parts);
        let now = (total.processed, total.successful, total.failed);
        if now == self.last_progress || self.dry_run {
            return;
        }
        let done_here = total.processed.saturating_sub(self.resumed_processed);
        self.output.event(&Event::Progress {
            total: self.leads,
            processed: total.processed,
            successful: total.successful,
            failed: total.failed,
            leads_per_second: (done_here as f64 / self.started.elapsed().as_secs_f64().max(1e-3))
                .round(),
        });
        self.last_progress = now;
    }

    /// The summary, said and as an event; the exit code.
    pub fn summary(&self, file: &str) -> i32 {
        let total = self.total();
        let clean = total.failed == 0
            && self
                .followed
                .iter()
                .all(|p| matches!(p.ended.as_deref(), Some("completed" | "judged")));
        let exit_code = if clean {
            failure::OK
        } else {
            failure::LEADS_FAILED
        };
        let ids: Vec<String> = self.followed.iter().map(|p| p.id.clone()).collect();
        self.output.event(&Event::Summary {
            file,
            dry_run: self.dry_run,
            parts: self.parts,
            import_ids: &ids,
            counts: &total,
            exit_code,
        });
        let outcome = match total.would_import {
            Some(_) => format!("dry run, nothing stored: {}", total.outcome()),
            None => total.outcome(),
        };
        self.output.say(&format!(
            "{file}: {} leads in {} part(s): {outcome}",
            total.total, self.parts
        ));
        for part in &self.followed {
            if part.counts.failed > 0 && part.counts.would_import.is_none() {
                self.output.say(&format!(
                    "  {} failed in {}: leads errors {} --csv {}-errors.csv",
                    part.counts.failed, part.id, part.id, part.id
                ));
            }
            if let Some(state) = part
                .ended
                .as_deref()
                .filter(|s| *s == "failed" || *s == "cancelled")
            {
                self.output.say(&format!(
                    "  {} ended {state}: leads status {}",
                    part.id, part.id
                ));
            }
        }
        exit_code
    }
}
