//! Use case: an import's errors report, every failed lead with its reason, by index. As JSON
//! pages (`?cursor=`, `?limit=`), or whole as CSV with what each lead carried, ready to fix
//! in a spreadsheet and import again. Read from Postgres, which holds every error (the status
//! document shows only the first).
//!
//! Another caller's job answers exactly like an unknown one, as for status.

use crate::domain::ImportId;
use crate::job::caller::Caller;
use crate::job::original_rows::{FIELD_COLUMNS, OriginalRow};
use crate::job::status::LeadError;
use crate::postgres::{Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ErrorsReportError {
    #[error("{0}")]
    InvalidId(String),
    #[error("the cursor is not one this API returned")]
    InvalidCursor,
    #[error("no import with id {0}")]
    NotFound(ImportId),
    #[error("could not read the errors: {0}")]
    Unavailable(#[source] StoreError),
}

/// One page of `GET /leads/import/{importId}/errors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorsPage {
    pub errors: Vec<LeadError>,
    /// Where the next page starts; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Up to `limit` errors after `cursor` (from the start without one).
pub async fn errors_page(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<ErrorsPage, ErrorsReportError> {
    // The cursor is the index of the last error of the previous page.
    let after = cursor
        .map(|c| {
            c.parse::<u32>()
                .map_err(|_| ErrorsReportError::InvalidCursor)
        })
        .transpose()?;
    let import_id = visible_job(store, caller, raw_id).await?;
    let mut errors = store
        .errors_after(&import_id, after, limit + 1)
        .await
        .map_err(unavailable)?;
    let next_cursor = (errors.len() > limit).then(|| {
        errors.truncate(limit);
        errors[limit - 1].index.to_string()
    });
    Ok(ErrorsPage {
        errors,
        next_cursor,
    })
}

/// The whole report as CSV: the lead's fields, then `index`, `line`, `code` and `error`.
pub async fn errors_csv(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
) -> Result<Vec<u8>, ErrorsReportError> {
    let import_id = visible_job(store, caller, raw_id).await?;
    let errors = store
        .errors_after(&import_id, None, u32::MAX as usize)
        .await
        .map_err(unavailable)?;
    let rows = store.original_rows(&import_id).await.map_err(unavailable)?;
    Ok(report_csv(&errors, &rows))
}

/// The job, if `caller` may see it.
async fn visible_job(
    store: &Store,
    caller: &Caller,
    raw_id: &str,
) -> Result<ImportId, ErrorsReportError> {
    let import_id = ImportId::parse(raw_id).map_err(ErrorsReportError::InvalidId)?;
    match store.job_owner(&import_id).await.map_err(unavailable)? {
        Some(owner) if caller.may_see(&owner) => Ok(import_id),
        _ => Err(ErrorsReportError::NotFound(import_id)),
    }
}

fn unavailable(e: StoreError) -> ErrorsReportError {
    tracing::error!(error = %e, "could not read an errors report");
    ErrorsReportError::Unavailable(e)
}

fn report_csv(errors: &[LeadError], rows: &HashMap<u32, OriginalRow>) -> Vec<u8> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let header = FIELD_COLUMNS
        .iter()
        .chain(&["index", "line", "code", "error"]);
    csv.write_record(header)
        .expect("writing to memory cannot fail");
    let none: [Option<String>; 5] = Default::default();
    for e in errors {
        let values = rows.get(&e.index).map_or(&none, |r| &r.values);
        let record = values.iter().map(|v| v.clone().unwrap_or_default()).chain([
            e.index.to_string(),
            e.line.map(|l| l.to_string()).unwrap_or_default(),
            e.code.clone(),
            e.error.clone(),
        ]);
        csv.write_record(record)
            .expect("writing to memory cannot fail");
    }
    csv.into_inner().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_has_each_leads_values_beside_its_error() {
        let errors = vec![
            LeadError::email_exists(0).at_line(Some(2)),
            LeadError::dead_letter(4, "gone, \"really\""),
        ];
        let rows = HashMap::from([(
            0,
            OriginalRow {
                index: 0,
                values: [
                    Some("Ada, L".into()),
                    Some("ada@x.io".into()),
                    None,
                    Some("new".into()),
                    Some("web".into()),
                ],
                attributes: Default::default(),
            },
        )]);
        let csv = String::from_utf8(report_csv(&errors, &rows)).unwrap();
        assert_eq!(
            csv,
            "fullName,email,phone,status,source,index,line,code,error\n\
             \"Ada, L\",ada@x.io,,new,web,0,2,email_exists,Email already exists\n\
             ,,,,,4,,dead_letter,\"gone, \"\"really\"\"\"\n"
        );
    }
}
