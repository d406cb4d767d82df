//! `leads list [--state S] [--created-by WHO]`: the caller's imports, newest first, every page.

use crate::client::Client;
use crate::document::JobStatus;
use crate::events::Output;
use crate::failure::{self, Failure};

pub async fn run(
    client: &Client,
    output: &Output,
    state: Option<&str>,
    created_by: Option<&str>,
) -> Result<i32, Failure> {
    let query: Vec<(&str, &str)> = [("state", state), ("createdBy", created_by)]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    let mut count = 0u64;
    super::pages(client, "/leads/imports", &query, "imports", |item| {
        count += 1;
        output.value(item);
        match serde_json::from_value::<JobStatus>(item.clone()) {
            Ok(status) => output.say(&format!(
                "{}  {}",
                status.created_at.as_deref().unwrap_or(""),
                status.describe()
            )),
            Err(_) => output.say(&item.to_string()),
        }
    })
    .await?;
    if count == 0 {
        output.say("no imports");
    }
    Ok(failure::OK)
}
