//! The commands that follow imports through #15's endpoints, one file each; `leads import`
//! is `crate::import`.

pub mod act;
pub mod errors;
pub mod list;
pub mod status;

use crate::client::Client;
use crate::failure::Failure;
use serde::Deserialize;

/// One page of a paged list (`imports` or `errors`): its items under `key`, and the cursor of
/// the next page (absent on the last).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(flatten)]
    items: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// Every item of a paged list at `path`, page after page, handed to `each` as they come.
async fn pages(
    client: &Client,
    path: &str,
    query: &[(&str, &str)],
    key: &str,
    mut each: impl FnMut(&serde_json::Value),
) -> Result<(), Failure> {
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let (_, mut page): (_, Page) = client.json(&client.get(client.url(path, &q))).await?;
        let items = match page.items.remove(key) {
            Some(serde_json::Value::Array(items)) => items,
            _ => {
                return Err(Failure::Unreachable(format!(
                    "the API's page of {path} has no {key} list"
                )));
            }
        };
        items.iter().for_each(&mut each);
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(()),
        }
    }
}
