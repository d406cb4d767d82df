//! `leads errors ID [--csv FILE]`: an import's failed leads, page after page; or the CSV
//! report (the original row's values plus `line`, `code` and `error`) written to FILE as it
//! arrives.

use crate::client::Client;
use crate::document::check_import_id;
use crate::events::{Event, Output};
use crate::failure::{self, Failure, bad_input};
use futures_util::StreamExt as _;
use std::io::Write as _;
use std::path::Path;

pub async fn run(
    client: &Client,
    output: &Output,
    id: &str,
    csv: Option<&Path>,
) -> Result<i32, Failure> {
    let path = format!("/leads/import/{}/errors", check_import_id(id)?);
    let Some(file) = csv else {
        super::pages(client, &path, &[], "errors", |error| {
            output.value(error);
            output.say(&describe(error));
        })
        .await?;
        return Ok(failure::OK);
    };
    let mut request = client.get(client.url(&path, &[]));
    request.accept = "text/csv";
    let answer = client.send(&request).await?;
    let cannot_write =
        |e: std::io::Error| bad_input(format!("cannot write {}: {e}", file.display()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(cannot_write)?);
    let mut bytes = 0u64;
    let mut rows = 0u64;
    let mut body = answer.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Failure::Unreachable(format!("the report stopped: {e}")))?;
        bytes += chunk.len() as u64;
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        out.write_all(&chunk).map_err(cannot_write)?;
    }
    out.flush().map_err(cannot_write)?;
    let name = file.display().to_string();
    output.notice(
        &format!(
            "wrote the errors of {id} to {name} ({bytes} bytes, about {} rows)",
            rows.saturating_sub(1)
        ),
        &Event::ReportWritten { file: &name, bytes },
    );
    Ok(failure::OK)
}

/// `line 7 · index 5 · invalid_email: email is not a valid address`
fn describe(error: &serde_json::Value) -> String {
    let text = |key: &str| {
        error
            .get(key)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    };
    let mut parts = Vec::new();
    if let Some(line) = text("line") {
        parts.push(format!("line {line}"));
    }
    if let Some(index) = text("index") {
        parts.push(format!("index {index}"));
    }
    let reason = text("error").unwrap_or_default();
    match text("code") {
        Some(code) => parts.push(format!("{code}: {reason}")),
        None => parts.push(reason),
    }
    parts.join(" · ")
}
