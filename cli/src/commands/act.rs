//! `leads cancel ID` and `leads retry ID [--all]`: the two POSTs that change an import.

use crate::client::{Client, Repeat, Request};
use crate::document::{JobStatus, check_import_id};
use crate::events::Output;
use crate::failure::{self, Failure};
use reqwest::Method;

/// Cancel is idempotent: sent again freely.
pub async fn cancel(client: &Client, output: &Output, id: &str) -> Result<i32, Failure> {
    let path = format!("/leads/import/{}/cancel", check_import_id(id)?);
    let value = post(client, client.url(&path, &[]), Repeat::Safe).await?;
    output.value(&value);
    match serde_json::from_value::<JobStatus>(value) {
        Ok(status) => output.say(&format!("cancelling {}", status.describe())),
        Err(_) => output.say(&format!("{id}: cancel requested")),
    }
    Ok(failure::OK)
}

/// Each retry starts a child import, so it is sent again only when the first surely did
/// nothing.
pub async fn retry(client: &Client, output: &Output, id: &str, all: bool) -> Result<i32, Failure> {
    let path = format!("/leads/import/{}/retry", check_import_id(id)?);
    let query: &[(&str, &str)] = if all { &[("all", "true")] } else { &[] };
    let value = post(client, client.url(&path, query), Repeat::OnlyIfNotDone).await?;
    output.value(&value);
    let child = value
        .get("importId")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let total = value
        .get("total")
        .or_else(|| value.pointer("/progress/total"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    output.say(&format!(
        "retrying {total} lead(s) of {id} as {child}; follow it with: leads status {child} --watch"
    ));
    Ok(failure::OK)
}

async fn post(
    client: &Client,
    url: reqwest::Url,
    repeat: Repeat,
) -> Result<serde_json::Value, Failure> {
    let request = Request {
        method: Method::POST,
        url,
        accept: "application/json",
        content_type: None,
        body: Default::default(),
        repeat,
    };
    Ok(client.json(&request).await?.1)
}
