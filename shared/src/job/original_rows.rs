//! What a lead carried, field by field, as the errors report shows it beside the lead's error:
//! a refused lead's text as sent (kept with its job at import, since the payload holds only
//! valid leads), a valid lead's fields as stored (from the durable payload). Kept as JSON
//! `[[index, [fullName, email, phone, status, source]], ...]`, a `null` for a field absent or
//! not text.

use crate::job::plan::IndexedLead;
use serde::{Deserialize, Serialize};

/// The report's columns for a lead's fields, in the order of [`OriginalRow::values`].
pub const FIELD_COLUMNS: [&str; 5] = ["fullName", "email", "phone", "status", "source"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalRow {
    pub index: u32,
    pub values: [Option<String>; 5],
}

impl OriginalRow {
    pub fn of_input(index: u32, input: &crate::domain::LeadInput) -> Self {
        OriginalRow {
            index,
            values: input.texts().map(|t| t.map(str::to_owned)),
        }
    }

    pub fn of_lead(lead: &IndexedLead) -> Self {
        let l = &lead.lead;
        OriginalRow {
            index: lead.index,
            values: [
                Some(l.full_name.as_str().to_owned()),
                Some(l.email.as_str().to_owned()),
                l.phone.as_ref().map(|p| p.as_str().to_owned()),
                Some(l.status.as_str().to_owned()),
                Some(l.source.as_str().to_owned()),
            ],
        }
    }
}

pub fn encode(rows: &[OriginalRow]) -> String {
    let wire: Vec<(u32, &[Option<String>; 5])> =
        rows.iter().map(|r| (r.index, &r.values)).collect();
    serde_json::to_string(&wire).expect("rows serialize")
}

/// Rows back from [`encode`]'s JSON; `Err` names no value.
pub fn decode(text: &str) -> Result<Vec<OriginalRow>, String> {
    let wire: Vec<(u32, [Option<String>; 5])> = serde_json::from_str(text)
        .map_err(|e| format!("rows: {:?} error at column {}", e.classify(), e.column()))?;
    Ok(wire
        .into_iter()
        .map(|(index, values)| OriginalRow { index, values })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let rows = vec![
            OriginalRow {
                index: 3,
                values: [
                    Some("A, \"B\"".into()),
                    Some("not-an-email".into()),
                    None,
                    None,
                    None,
                ],
            },
            OriginalRow {
                index: 9,
                values: [
                    None,
                    Some("x@y.io".into()),
                    Some("+1".into()),
                    Some("new".into()),
                    Some("s".into()),
                ],
            },
        ];
        assert_eq!(decode(&encode(&rows)).unwrap(), rows);
        assert!(decode("[[1]]").is_err());
    }
}
