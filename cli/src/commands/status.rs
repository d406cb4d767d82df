//! `leads status ID [--watch]`: the status document, once or until the import ends.

use crate::client::Client;
use crate::document::{JobStatus, check_import_id};
use crate::events::Output;
use crate::failure::{self, Failure};
use std::time::Duration;

const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Exit code: 0 once read; with `--watch`, that of the import's end (0 only when every lead
/// was created, updated or skipped).
pub async fn run(client: &Client, output: &Output, id: &str, watch: bool) -> Result<i32, Failure> {
    let url = client.url(
        &format!("/leads/import/{}/status", check_import_id(id)?),
        &[],
    );
    let mut last = None;
    loop {
        let (_, value): (_, serde_json::Value) = client.json(&client.get(url.clone())).await?;
        let status: JobStatus = serde_json::from_value(value.clone()).map_err(|e| {
            Failure::Unreachable(format!("the status document is not the contract's: {e}"))
        })?;
        if last.as_ref() != Some(&value) {
            output.value(&value);
            output.say(&status.describe());
            last = Some(value);
        }
        if !watch {
            return Ok(failure::OK);
        }
        if status.is_finished() {
            return Ok(if status.is_clean() {
                failure::OK
            } else {
                failure::LEADS_FAILED
            });
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}
