//! Use case: a caller's imports, newest first, a page at a time, optionally of one state, each
//! with its counts and progress (the status document without its errors).
//!
//! A verified caller sees only the imports it created (naming another `createdBy` is
//! refused); without an authorizer nobody vouches for the caller, and `createdBy` is the
//! filter it asks for, as everywhere else (see [`crate::job::caller`]).

use crate::domain::CreatedBy;
use crate::job::caller::{Caller, UnusableIdentity};
use crate::job::status::{JobState, JobStatus};
use crate::postgres::{ImportsAfter, Store, StoreError};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("state must be one of pending, processing, completed, failed, cancelled")]
    InvalidState,
    #[error("the cursor is not one this API returned")]
    InvalidCursor,
    #[error("createdBy: {0}")]
    InvalidCreatedBy(String),
    #[error("createdBy names someone other than the authenticated caller")]
    NotTheCaller,
    #[error(transparent)]
    Identity(#[from] UnusableIdentity),
    #[error("could not list the imports: {0}")]
    Unavailable(#[source] StoreError),
}

/// What the caller asked for, as the query carried it.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub created_by: Option<String>,
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One page of `GET /leads/imports`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportsPage {
    pub imports: Vec<JobStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub async fn list_imports(
    store: &Store,
    caller: &Caller,
    query: &ListQuery,
) -> Result<ImportsPage, ListError> {
    let state = query
        .state
        .as_deref()
        .map(|s| JobState::parse(s).ok_or(ListError::InvalidState))
        .transpose()?;
    let mut after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let asked = query
        .created_by
        .as_deref()
        .map(|c| CreatedBy::parse(c).map_err(|e| ListError::InvalidCreatedBy(e.message)))
        .transpose()?;
    let created_by = match (caller.created_by()?, asked) {
        (Some(me), Some(asked)) if me != asked => return Err(ListError::NotTheCaller),
        (Some(me), _) => Some(me),
        (None, asked) => asked,
    };
    // The state is derived from the outcomes (`JobFacts::state`, the one place that knows
    // how), so a filtered page reads on until it has its items or the imports run out.
    let mut imports = Vec::with_capacity(query.limit + 1);
    let scan = (query.limit + 1).max(100);
    loop {
        let facts = store
            .imports_page(
                created_by.as_ref().map(|c| c.as_str()),
                after.as_ref(),
                scan,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not list imports");
                ListError::Unavailable(e)
            })?;
        let exhausted = facts.len() < scan;
        for f in facts {
            after = Some(ImportsAfter {
                created_at: f.created_at,
                import_id: f.import_id.clone(),
            });
            if state.is_none_or(|s| f.state() == s) {
                imports.push(f.into_status(None));
                if imports.len() > query.limit {
                    break;
                }
            }
        }
        if exhausted || imports.len() > query.limit {
            break;
        }
    }
    let next_cursor = (imports.len() > query.limit).then(|| {
        imports.truncate(query.limit);
        let last = &imports[query.limit - 1];
        format_cursor(last.created_at, &last.import_id)
    });
    Ok(ImportsPage {
        imports,
        next_cursor,
    })
}

/// `{microseconds since the epoch}.{importId}` of the last import of a page (an import id
/// may hold dots; the time never does).
fn format_cursor(created_at: OffsetDateTime, import_id: &str) -> String {
    format!("{}.{import_id}", created_at.unix_timestamp_nanos() / 1_000)
}

fn parse_cursor(cursor: &str) -> Result<ImportsAfter, ListError> {
    let (micros, import_id) = cursor.split_once('.').ok_or(ListError::InvalidCursor)?;
    let micros: i128 = micros.parse().map_err(|_| ListError::InvalidCursor)?;
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000)
        .map_err(|_| ListError::InvalidCursor)?;
    let import_id = crate::domain::ImportId::parse(import_id)
        .map_err(|_| ListError::InvalidCursor)?
        .to_string();
    Ok(ImportsAfter {
        created_at,
        import_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let t = datetime!(2026-12-04 10:11:12.123456 UTC);
        let cursor = format_cursor(t, "import.2024-01-01:batch_7");
        assert_eq!(
            parse_cursor(&cursor).unwrap(),
            ImportsAfter {
                created_at: t,
                import_id: "import.2024-01-01:batch_7".into()
            }
        );
        for bad in ["", "x.y", "12", "12.", "99999999999999999999999.a", "1.a b"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
