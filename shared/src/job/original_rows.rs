//! What a lead carried, field by field, as the errors report shows it beside the lead's error:
//! a refused lead's text as sent (kept with its job at import, since the payload holds only
//! valid leads), a valid lead's fields as stored (from the durable payload). Kept as JSON
//! `[[index, [fullName, email, phone, status, source], {attributes}?], ...]`, a `null` for a
//! field absent or not text; the attributes (as sent, or as stored) only when there are some,
//! so that a retry of the lead keeps them.

use crate::job::plan::IndexedLead;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The report's columns for a lead's fields, in the order of [`OriginalRow::values`].
pub const FIELD_COLUMNS: [&str; 5] = ["fullName", "email", "phone", "status", "source"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalRow {
    pub index: u32,
    pub values: [Option<String>; 5],
    /// The lead's custom attributes, by name.
    pub attributes: BTreeMap<String, String>,
}

impl OriginalRow {
    pub fn of_input(index: u32, input: &crate::domain::LeadInput) -> Self {
        OriginalRow {
            index,
            values: input.texts().map(|t| t.map(str::to_owned)),
            attributes: input
                .attribute_texts()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
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
            attributes: l.attributes.as_map().clone(),
        }
    }
}

/// One row in the JSON: with its attributes, or (none) without.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireRow {
    WithAttributes(u32, [Option<String>; 5], BTreeMap<String, String>),
    Fields(u32, [Option<String>; 5]),
}

pub fn encode(rows: &[OriginalRow]) -> String {
    let wire: Vec<WireRow> = rows
        .iter()
        .map(|r| match r.attributes.is_empty() {
            true => WireRow::Fields(r.index, r.values.clone()),
            false => WireRow::WithAttributes(r.index, r.values.clone(), r.attributes.clone()),
        })
        .collect();
    serde_json::to_string(&wire).expect("rows serialize")
}

/// Rows back from [`encode`]'s JSON; `Err` names no value.
pub fn decode(text: &str) -> Result<Vec<OriginalRow>, String> {
    let wire: Vec<WireRow> = serde_json::from_str(text)
        .map_err(|e| format!("rows: {:?} error at column {}", e.classify(), e.column()))?;
    Ok(wire
        .into_iter()
        .map(|row| match row {
            WireRow::Fields(index, values) => OriginalRow {
                index,
                values,
                attributes: BTreeMap::new(),
            },
            WireRow::WithAttributes(index, values, attributes) => OriginalRow {
                index,
                values,
                attributes,
            },
        })
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
                attributes: BTreeMap::new(),
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
                attributes: [("Company".to_owned(), "Acme".to_owned())].into(),
            },
        ];
        assert_eq!(decode(&encode(&rows)).unwrap(), rows);
        assert!(decode("[[1]]").is_err());
    }
}
