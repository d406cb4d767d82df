//! `leads import FILE`: the file read once to know its parts and its digest, then again to
//! send them, one import per part, while the parts already sent are followed on their status
//! documents. Each part's id is `<16 hex of the digest>-p<number>`, the digest covering the
//! file's bytes and every option that shapes the parts or their leads: the same command on the
//! same file sends the same requests, and the API answers `200` for a part it already took, so
//! a second run after an interruption resumes where the first stopped and imports nothing twice.

use crate::args::ImportArgs;
use crate::client::{Client, Repeat, Request};
use crate::creator;
use crate::document::{Accepted, DryRunReport, JobStatus};
use crate::events::{Counts, Event, Output};
use crate::failure::{self, Failure, bad_input};
use crate::progress;
use crate::split::{self, Format, Limits, Part, Split};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The API's body limit (4 MiB, `shared::api::MAX_BODY_BYTES`), less room for a JSON part's
/// wrapper (`importId`, `createdBy`, `onExisting`).
const MAX_PART_BYTES: usize = 4 * 1024 * 1024 - 4096;
/// How often the unfinished parts' status documents are read.
const POLL: Duration = Duration::from_millis(500);

/// What a part's request carries besides its leads.
#[derive(Clone)]
struct Options {
    format: Format,
    created_by: Option<String>,
    on_existing: Option<&'static str>,
    /// The server's form: `Header:field` pairs, comma-separated.
    mapping: Option<String>,
    dry_run: bool,
    /// A CSV part's `Content-Type`: UTF-8, or Windows-1252 for a file that is not UTF-8.
    csv_type: &'static str,
}

pub async fn run(client: Client, output: Output, args: ImportArgs) -> Result<i32, Failure> {
    let format = Format::of(&args.file);
    let mut options = Options {
        format,
        created_by: created_by(args.created_by, client.auth().names_the_caller())?,
        on_existing: args.on_existing.map(|o| o.as_str()),
        mapping: mapping(&args.mapping, format)?,
        dry_run: args.dry_run,
        csv_type: "text/csv; charset=utf-8",
    };
    let limits = Limits {
        leads: u64::from(args.part_size),
        bytes: MAX_PART_BYTES,
    };
    let path = args.file;
    let file = path.display().to_string();

    progress::reading(&output, &file);
    let plan = read(path.clone(), format, limits, |_| Ok(())).await?;
    if !plan.utf8 {
        options.csv_type = "text/csv; charset=windows-1252";
    }
    let prefix = id_prefix(&plan, &options, args.part_size);
    let leads: u64 = plan.parts.iter().sum();
    let parts = plan.parts.len() as u32;
    output.event(&Event::Started {
        file: &file,
        format: format.name(),
        leads,
        parts,
        id_prefix: &prefix,
        dry_run: options.dry_run,
    });
    progress::start(&output, leads);

    // The second read feeds the uploads one part at a time; the channel holds one more, so at
    // most three parts are in memory (being read, waiting, being sent).
    let (parts_tx, mut parts_rx) = mpsc::channel::<Part>(1);
    let reader = tokio::spawn(read(path, format, limits, move |part| {
        parts_tx
            .blocking_send(part)
            .map_err(|_| bad_input("the import stopped"))
    }));
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let mut uploader = {
        let client = client.clone();
        let options = options.clone();
        let prefix = prefix.clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            while let Some(part) = parts_rx.recv().await {
                if plan.parts.get(part.number as usize - 1) != Some(&part.leads) {
                    return Err(changed());
                }
                let answer = send_part(&client, &options, &prefix, part).await?;
                if answers_tx.send(answer).is_err() {
                    break;
                }
            }
            drop(parts_rx);
            match reader.await {
                Ok(Ok(second)) if second == plan => Ok(()),
                Ok(Ok(_)) => Err(changed()),
                Ok(Err(failure)) => Err(failure),
                Err(e) => Err(bad_input(format!("reading the file stopped: {e}"))),
            }
        })
    };

    // Ctrl-C from here on is said, rather than a silent death: the rerun that resumes is the
    // way on. One listener for the whole loop (a signal between two listeners would be lost).
    let mut interrupted = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: Ctrl-C keeps its default, it ends the process.
            std::future::pending::<()>().await;
        }
    });
    let mut tracker = Tracker::new(&output, leads, parts, options.dry_run);
    let mut ticker = tokio::time::interval(POLL);
    let mut sending = true;
    while sending || tracker.following() {
        tokio::select! {
            answer = answers.recv(), if sending => match answer {
                Some(answer) => tracker.answered(answer),
                None => {
                    sending = false;
                    match (&mut uploader).await {
                        Ok(Ok(())) => {}
                        Ok(Err(failure)) => return Err(failure),
                        Err(e) => return Err(bad_input(format!("the upload stopped: {e}"))),
                    }
                }
            },
            _ = ticker.tick(), if tracker.following() => tracker.poll(&client).await?,
            _ = &mut interrupted => return Err(Failure::Interrupted),
        }
    }
    progress::finish(&output);
    Ok(tracker.summary(&file))
}

/// Reads the file on a blocking thread.
async fn read(
    path: PathBuf,
    format: Format,
    limits: Limits,
    sink: impl FnMut(Part) -> Result<(), Failure> + Send + 'static,
) -> Result<Split, Failure> {
    tokio::task::spawn_blocking(move || split::split(&path, format, limits, sink))
        .await
        .map_err(|e| bad_input(format!("reading the file stopped: {e}")))?
}

fn changed() -> Failure {
    bad_input("the file changed while it was imported; run the command again on the new file")
}

/// The import's `createdBy`: none only behind an authorizer (the API takes the caller's).
fn created_by(given: Option<String>, names_the_caller: bool) -> Result<Option<String>, Failure> {
    match creator::creator(given, names_the_caller) {
        None if !names_the_caller => Err(bad_input(
            "who creates the import? Use --created-by or LEADS_CREATED_BY",
        )),
        who => Ok(who),
    }
}

/// `--mapping Header=field …` as the API's `Header:field,…`.
fn mapping(pairs: &[String], format: Format) -> Result<Option<String>, Failure> {
    if pairs.is_empty() {
        return Ok(None);
    }
    if format != Format::Csv {
        return Err(bad_input("--mapping names CSV columns; this file is JSON"));
    }
    let mut out = Vec::new();
    for pair in pairs {
        let Some((header, field)) = pair.rsplit_once('=') else {
            return Err(bad_input(format!(
                "--mapping {pair:?}: write it as Header=field"
            )));
        };
        let (header, field) = (header.trim(), field.trim());
        if header.is_empty() || field.is_empty() || header.contains(',') {
            return Err(bad_input(format!(
                "--mapping {pair:?}: a header (without a comma) and a field are needed"
            )));
        }
        out.push(format!("{header}:{field}"));
    }
    Ok(Some(out.join(",")))
}

/// 16 hex digits of the digest of the file and of everything that shapes the requests: the
/// same prefix means the same parts with the same leads, so the API's `200` for a part it
/// already took is a true "already done".
fn id_prefix(plan: &Split, options: &Options, part_size: u32) -> String {
    let mut sha = Sha256::new();
    for field in [
        "leads-cli/1",
        options.format.name(),
        &part_size.to_string(),
        options.created_by.as_deref().unwrap_or(""),
        options.on_existing.unwrap_or(""),
        options.mapping.as_deref().unwrap_or(""),
        &hex::encode(plan.sha256),
    ] {
        sha.update(field.as_bytes());
        sha.update([0]);
    }
    hex::encode(&sha.finalize()[..8])
}

fn import_id(prefix: &str, part: u32) -> String {
    format!("{prefix}-p{part:04}")
}

/// What the API said to one part.
enum Answer {
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

async fn send_part(
    client: &Client,
    options: &Options,
    prefix: &str,
    part: Part,
) -> Result<Answer, Failure> {
    let id = import_id(prefix, part.number);
    let mut query: Vec<(&str, &str)> = Vec::new();
    if options.dry_run {
        query.push(("dryRun", "true"));
    }
    let (content_type, body) = match options.format {
        Format::Csv => {
            query.push(("importId", &id));
            if let Some(created_by) = &options.created_by {
                query.push(("createdBy", created_by));
            }
            query.push(("delimiter", ","));
            if let Some(on_existing) = options.on_existing {
                query.push(("onExisting", on_existing));
            }
            if let Some(mapping) = &options.mapping {
                query.push(("mapping", mapping));
            }
            (options.csv_type.to_owned(), part.body)
        }
        Format::Json => (
            "application/json".to_owned(),
            json_body(&id, options, part.body),
        ),
    };
    let request = Request {
        method: Method::POST,
        url: client.url("/leads/import", &query),
        accept: "application/json",
        content_type: Some(content_type),
        body: body.into(),
        repeat: Repeat::Safe,
    };
    let (part_no, leads) = (part.number, part.leads);
    let (status, value): (StatusCode, serde_json::Value) =
        client
            .json(&request)
            .await
            .map_err(|failure| match failure {
                // The deployment takes fewer leads per import than the parts hold.
                Failure::Refused(mut problem) if problem.status == 413 => {
                    problem.detail.push_str(" (a smaller --part-size fits)");
                    Failure::Refused(problem)
                }
                other => other,
            })?;
    let unexpected = |e: serde_json::Error| {
        Failure::Unreachable(format!(
            "the API's answer to part {part_no} is not the contract's: {e}"
        ))
    };
    Ok(match status {
        _ if options.dry_run => Answer::Judged {
            part: part_no,
            id,
            report: serde_json::from_value(value).map_err(unexpected)?,
        },
        StatusCode::ACCEPTED => {
            let accepted: Accepted = serde_json::from_value(value).map_err(unexpected)?;
            Answer::Accepted {
                part: part_no,
                id: accepted.import_id,
                leads,
            }
        }
        _ => Answer::Resumed {
            part: part_no,
            leads,
            status: serde_json::from_value(value).map_err(unexpected)?,
        },
    })
}

/// A JSON part's body: the request's fields, then its leads as the file has them.
fn json_body(id: &str, options: &Options, leads: Vec<u8>) -> Vec<u8> {
    let mut head = serde_json::Map::new();
    head.insert("importId".into(), id.into());
    if let Some(created_by) = &options.created_by {
        head.insert("createdBy".into(), created_by.as_str().into());
    }
    if let Some(on_existing) = options.on_existing {
        head.insert("onExisting".into(), on_existing.into());
    }
    let mut body = serde_json::to_vec(&head).expect("a map serializes");
    body.pop(); // the closing brace: the leads go in before it
    if !head.is_empty() {
        body.push(b',');
    }
    body.extend_from_slice(br#""leads":"#);
    body.extend_from_slice(&leads);
    body.push(b'}');
    body
}

/// One part as followed.
struct Followed {
    id: String,
    counts: Counts,
    /// Its final state, once it has one.
    ended: Option<String>,
}

/// The parts' counts, summed for the bar, the events and the summary.
struct Tracker<'a> {
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
    fn new(output: &'a Output, leads: u64, parts: u32, dry_run: bool) -> Self {
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

    fn following(&self) -> bool {
        self.followed.iter().any(|p| p.ended.is_none())
    }

    fn answered(&mut self, answer: Answer) {
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
                // The bar's rate and ETA are about this run's work.
                self.output.bar.reset_eta();
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
    async fn poll(&mut self, client: &Client) -> Result<(), Failure> {
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
        let c = &part.counts;
        let counts = match c.would_import {
            Some(would) => format!(
                "would import {would}, would skip {}, would fail {}",
                c.skipped, c.failed
            ),
            None => format!(
                "created {} · updated {} · skipped {} · failed {}",
                c.created, c.updated, c.skipped, c.failed
            ),
        };
        self.output.say(&format!(
            "part {}/{} {} {status}: {counts}",
            index + 1,
            self.parts,
            part.id
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
    fn summary(&self, file: &str) -> i32 {
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
            Some(would) => format!(
                "dry run, nothing stored: would import {would}, would skip {}, would fail {}",
                total.skipped, total.failed
            ),
            None => format!(
                "created {} · updated {} · skipped {} · failed {}",
                total.created, total.updated, total.skipped, total.failed
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_take_the_servers_form() {
        let pairs = [
            "Work Mail=email".to_owned(),
            " Contact = fullName".to_owned(),
        ];
        assert_eq!(
            mapping(&pairs, Format::Csv).unwrap().as_deref(),
            Some("Work Mail:email,Contact:fullName")
        );
        assert!(mapping(&["nofield".to_owned()], Format::Csv).is_err());
        assert!(mapping(&["a,b=email".to_owned()], Format::Csv).is_err());
        assert!(mapping(&pairs, Format::Json).is_err());
    }

    #[test]
    fn a_json_part_carries_the_requests_fields_then_the_leads() {
        let options = Options {
            format: Format::Json,
            created_by: Some("ann".into()),
            on_existing: Some("skip"),
            mapping: None,
            dry_run: false,
            csv_type: "text/csv",
        };
        let body = json_body("abc-p0001", &options, br#"[{"email":"a@x.io"}]"#.to_vec());
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"importId":"abc-p0001","createdBy":"ann","onExisting":"skip","leads":[{"email":"a@x.io"}]})
        );
    }

    #[test]
    fn the_ids_change_with_what_shapes_the_requests() {
        let plan = Split {
            sha256: [7; 32],
            utf8: true,
            parts: vec![1],
        };
        let options = Options {
            format: Format::Csv,
            created_by: Some("ann".into()),
            on_existing: None,
            mapping: None,
            dry_run: false,
            csv_type: "text/csv",
        };
        let base = id_prefix(&plan, &options, 10);
        assert_eq!(base.len(), 16);
        assert_eq!(
            base,
            id_prefix(
                &plan,
                &Options {
                    dry_run: true,
                    ..options.clone()
                },
                10
            )
        );
        assert_ne!(base, id_prefix(&plan, &options, 11));
        assert_ne!(
            base,
            id_prefix(
                &plan,
                &Options {
                    on_existing: Some("skip"),
                    ..options.clone()
                },
                10
            )
        );
        assert_eq!(import_id(&base, 3), format!("{base}-p0003"));
    }
}
