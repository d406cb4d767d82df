//! `leads import FILE`: the file read once to know its parts and its digest, then again to
//! send them, one import per part, while the parts already sent are followed on their status
//! documents. Each part's id is `<16 hex of the digest>-p<number>`, the digest covering the
//! file's bytes and every option that shapes the parts or their leads: the same command on the
//! same file sends the same requests, and the API answers `200` for a part it already took, so
//! a second run after an interruption resumes where the first stopped and imports nothing twice.

use crate::args::ImportArgs;
use crate::client::{Client, Repeat, Request};
use crate::creator;
use crate::document::Accepted;
use crate::events::{Event, Output};
use crate::failure::{Failure, bad_input};
use crate::progress;
use crate::split::{self, Format, Limits, Part, Split};
use crate::tracker::{Answer, Tracker};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::time::Duration;
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
